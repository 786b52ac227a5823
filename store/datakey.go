package store

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// Message parts are age files whose file key is wrapped by a data key.
//
// Each part is a standard age file: a header, then the content encrypted
// with a random file key in age's STREAM format. What wraps the file key is
// a recipient stanza. Wrapping it to the key file's hybrid identity costs
// an ML-KEM-768 and an X25519 encapsulation per part (and a decapsulation
// each time a part is opened), which was most of the gateway's cryptography
// on small messages. So a part's file key is wrapped instead by the newest
// data key (envelope.go: a random XChaCha20-Poly1305 key, itself an age
// file sealed to the key file's first identity), in a stanza of our own:
//
//	-> securetextd-dk 3
//	base64(nonce (24 bytes) | XChaCha20-Poly1305(data key 3, nonce, file key, "securetextd-dk 3"))
//
// The additional data is the stanza's type and argument as written, so a
// stanza cannot be moved to another data key, nor read as a small value
// sealed under the same key (those bind "stx1" and the key id instead). The
// rest of the file is unchanged age: the header MAC, keyed by the file key,
// and the payload. age.Encrypt writes such a file given a dataKeyRecipient,
// and age.Decrypt and DecryptReaderAt open it given the loaded data keys as
// the identity.
//
// Wrapping and unwrapping are one AEAD operation each, so an opened part's
// file key is not worth caching (the cache in envelope.go serves parts
// written before data keys wrapped them, which open as before with the key
// file's identities).
//
// Crypto-shredding still holds: the stanza in a part's header is the only
// wrapped copy of its file key, and it lives in the part's own rows (the
// first chunk, or blobs.header once rekeyed). Deleting those rows deletes
// it; the data key that remains opens nothing without it, and the database
// runs with secure_delete, so the freed pages are zeroed.
//
// Post-quantum: the stanza itself is symmetric, a 256-bit key that a
// quantum computer would at most halve, so a part is exactly as
// post-quantum as the seal of its data key. The newest data key is always
// one sealed to the key file's first identity (loadDataKeys makes a new one
// when that identity changes), so dataKeyRecipient carries age's
// "postquantum" label when that identity is hybrid, and none when it is
// X25519. age.Encrypt then refuses, as it would for the identity itself, to
// put a classic recipient beside it in one file.
const dataKeyStanza = "securetextd-dk"

// dataKeyBody is the size of a data-key stanza's body: the nonce, the file
// key (16 bytes in age v1) and the Poly1305 tag. Unwrap accepts no other
// size, as age's own stanzas do, so that no crafted ciphertext can be
// tried against several keys at once.
const dataKeyBody = chacha20poly1305.NonceSizeX + 16 + chacha20poly1305.Overhead

// dataKeyRecipient wraps file keys with one data key. It implements
// age.RecipientWithLabels.
type dataKeyRecipient struct {
	id          uint32
	aead        cipher.AEAD
	postQuantum bool // the data key is sealed to a hybrid identity
}

// Wrap implements age.Recipient.
func (r *dataKeyRecipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	s, _, err := r.WrapWithLabels(fileKey)
	return s, err
}

// WrapWithLabels implements age.RecipientWithLabels: one data-key stanza,
// labelled "postquantum" when the data key's seal is (see above).
func (r *dataKeyRecipient) WrapWithLabels(fileKey []byte) ([]*age.Stanza, []string, error) {
	arg := strconv.FormatUint(uint64(r.id), 10)
	body := make([]byte, chacha20poly1305.NonceSizeX, dataKeyBody)
	rand.Read(body)
	body = r.aead.Seal(body, body, fileKey, dataKeyAD(arg))
	var labels []string
	if r.postQuantum {
		labels = []string{"postquantum"}
	}
	return []*age.Stanza{{Type: dataKeyStanza, Args: []string{arg}, Body: body}}, labels, nil
}

// dataKeyAD is the additional data of the stanza naming data key arg.
func dataKeyAD(arg string) []byte { return []byte(dataKeyStanza + " " + arg) }

// Unwrap implements age.Identity: the loaded data keys open any file whose
// header holds a data-key stanza. A header without one is an
// age.ErrIncorrectIdentity, so that age goes on to other identities (the
// key file's, for parts written before data keys). A data-key stanza that
// names an unknown key, or that does not open under the key it names, is an
// error of its own: a part of this database was written that way, and no
// other identity can open it.
func (dk *dataKeys) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, s := range stanzas {
		if s.Type != dataKeyStanza {
			continue
		}
		if len(s.Args) != 1 || len(s.Body) != dataKeyBody {
			return nil, errors.New("malformed " + dataKeyStanza + " stanza")
		}
		id, err := strconv.ParseUint(s.Args[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("malformed %s stanza: key id %q", dataKeyStanza, s.Args[0])
		}
		aead, ok := dk.aeads[uint32(id)]
		if !ok {
			return nil, fmt.Errorf("%s stanza: no data key %d in this database", dataKeyStanza, id)
		}
		nonce := s.Body[:chacha20poly1305.NonceSizeX]
		fileKey, err := aead.Open(nil, nonce, s.Body[len(nonce):], dataKeyAD(s.Args[0]))
		if err != nil {
			return nil, fmt.Errorf("%s stanza: data key %d does not open it (damaged or tampered with)", dataKeyStanza, id)
		}
		return fileKey, nil
	}
	return nil, age.ErrIncorrectIdentity
}

// stanzaList is an age.Identity that opens nothing: it keeps the stanzas
// it is shown, so that age's own parser tells what wraps a header.
type stanzaList []*age.Stanza

func (l *stanzaList) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	*l = stanzas
	return nil, age.ErrIncorrectIdentity
}

// dataKeyOf returns the id of the data key that wraps header's file key,
// or 0 if header is not wrapped by a single data-key stanza (a part from
// before data keys, or not an age header). Data key ids start at 1. It does
// not check that the stanza opens.
func dataKeyOf(header []byte) uint32 {
	var l stanzaList
	age.DecryptHeader(header, &l) // fails by design; fills l
	if len(l) != 1 || l[0].Type != dataKeyStanza || len(l[0].Args) != 1 {
		return 0
	}
	id, err := strconv.ParseUint(l[0].Args[0], 10, 32)
	if err != nil {
		return 0
	}
	return uint32(id)
}
