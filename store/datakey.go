package store

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// Message parts are age files whose file key is wrapped by a data key,
// for one place.
//
// Each part is a standard age file: a header, then the content encrypted
// with a random file key in age's STREAM format. What wraps the file key is
// a recipient stanza. Wrapping it to the key file's hybrid identity costs
// an ML-KEM-768 and an X25519 encapsulation per part (and a decapsulation
// each time a part is opened), which was most of the gateway's cryptography
// on small messages. So a part's file key is wrapped instead by the newest
// data key (envelope.go: a random XChaCha20-Poly1305 key, itself an age
// file sealed to the key file's first identity), in a stanza of our own
// that names the part's place (place.go): its message, its index in the
// message, and its blob:
//
//	-> securetextd-dk 3 12 0 45
//	base64(nonce (24 bytes) | XChaCha20-Poly1305(data key 3, nonce, file key, "securetextd-dk 3 12 0 45"))
//
// for part 0 of message 12, kept in blob 45. The additional data is the
// stanza's type and arguments as written, so a stanza can be moved
// neither to another data key nor to another part: a blob copied under
// another message or index, parts of a message swapped, a header put on
// another blob all fail to open with errMisplaced; and it cannot be read as
// a small value sealed under the same key (those start with "stx2"). The
// content itself is authenticated under the file key, so chunk rows from
// another part fail as they are read. The rest of the file is unchanged
// age: the header MAC, keyed by the file key, and the payload; age's
// Decrypt and DecryptReaderAt open it given partKey as the identity.
//
// The place is only known at commit: a draft streams its parts in as
// pending blobs before the message row, or even the blob row of a small
// part, exists. So while a part streams in, age.Encrypt wraps its file key
// with a fileKeyCatcher, which keeps the file key in the draft's memory and
// wraps it nowhere; the header age writes with it is dropped (the chunks
// hold the payload alone, from its nonce on). In the commit's transaction,
// once the message's id is reserved and the blob's known, the part's real
// header is written for its place into blobs.header (see newHeader in
// rekey.go), with payload_start 0. A pending blob thus holds nothing that
// opens: a crash before the commit leaves ciphertext whose key was never
// written down. Header and chunks, read one after the other, are a
// standard age file (rawPart in the tests opens them with age.Decrypt).
//
// Wrapping and unwrapping are one AEAD operation each. What costs, when
// a page opens the same short part again and again, is age's parsing of
// the header around it; fileKeys (filekeys.go) keeps the file keys of the
// parts opened lately, in memory, each for the exact header it came from.
//
// Crypto-shredding still holds: the stanza in a part's header is the only
// wrapped copy of its file key, and it lives in the part's own blob row.
// Deleting it deletes it; the data key that remains opens nothing without
// it, and the database runs with secure_delete, so the freed pages are
// zeroed. A key kept in fileKeys opens nothing either once the row is
// gone: every open reads the header from the row first.
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

// partPlace is the place of a part's file key: part index of message
// message, kept in blob.
type partPlace struct {
	message int64
	index   int
	blob    int64
}

// args returns the stanza arguments that name p.
func (p partPlace) args() [3]string {
	return [3]string{rowID(p.message), strconv.Itoa(p.index), rowID(p.blob)}
}

// named reports whether stanza arguments args name p. It parses rather
// than formats, since it runs on every part opened; a number written
// otherwise than args writes it fails later, as the additional data then
// differs.
func (p partPlace) named(args []string) bool {
	if len(args) != 3 {
		return false
	}
	m, err1 := strconv.ParseInt(args[0], 10, 64)
	i, err2 := strconv.Atoi(args[1])
	b, err3 := strconv.ParseInt(args[2], 10, 64)
	return err1 == nil && err2 == nil && err3 == nil && m == p.message && i == p.index && b == p.blob
}

func (p partPlace) String() string { return fmt.Sprintf("part %d of message %d", p.index, p.message) }

// dataKeyRecipient wraps file keys with one data key, for one place. It
// implements age.RecipientWithLabels.
type dataKeyRecipient struct {
	id          uint32
	aead        cipher.AEAD
	postQuantum bool // the data key is sealed to a hybrid identity
	place       partPlace
}

// at returns r for the part at p.
func (r *dataKeyRecipient) at(p partPlace) *dataKeyRecipient {
	c := *r
	c.place = p
	return &c
}

// Wrap implements age.Recipient.
func (r *dataKeyRecipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	s, _, err := r.WrapWithLabels(fileKey)
	return s, err
}

// WrapWithLabels implements age.RecipientWithLabels: one data-key stanza
// for r's place, labelled "postquantum" when the data key's seal is (see
// above).
func (r *dataKeyRecipient) WrapWithLabels(fileKey []byte) ([]*age.Stanza, []string, error) {
	if r.place.message <= 0 || r.place.blob <= 0 {
		return nil, nil, errors.New("a part's file key is wrapped only for its place")
	}
	at := r.place.args()
	args := []string{strconv.FormatUint(uint64(r.id), 10), at[0], at[1], at[2]}
	body := make([]byte, chacha20poly1305.NonceSizeX, dataKeyBody)
	rand.Read(body)
	body = r.aead.Seal(body, body, fileKey, stanzaAD(args))
	var labels []string
	if r.postQuantum {
		labels = []string{"postquantum"}
	}
	return []*age.Stanza{{Type: dataKeyStanza, Args: args, Body: body}}, labels, nil
}

// stanzaAD is the additional data of a data-key stanza: its type and
// arguments, as written.
func stanzaAD(args []string) []byte {
	n := len(dataKeyStanza)
	for _, a := range args {
		n += 1 + len(a)
	}
	ad := append(make([]byte, 0, n), dataKeyStanza...)
	for _, a := range args {
		ad = append(append(ad, ' '), a...)
	}
	return ad
}

// partKey is the age.Identity that opens the part at place with the
// loaded data keys.
type partKey struct {
	dk    *dataKeys
	place partPlace
}

// part returns the identity that opens the part at p.
func (dk *dataKeys) part(p partPlace) *partKey { return &partKey{dk: dk, place: p} }

// Unwrap implements age.Identity. It opens a data-key stanza for its place
// only. A stanza for another place is errMisplaced; a header without a
// data-key stanza for a place (a part sealed before migration 0006, which
// re-wraps them all) is errUnbound; a stanza that names an unknown key, or
// that does not open under the key it names, is an error of its own: a part
// of this database was written that way, and no other identity can open it.
func (k *partKey) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, s := range stanzas {
		if s.Type != dataKeyStanza {
			continue
		}
		if len(s.Body) != dataKeyBody || (len(s.Args) != 4 && len(s.Args) != 1) {
			return nil, errors.New("malformed " + dataKeyStanza + " stanza")
		}
		if len(s.Args) == 1 {
			return nil, errUnbound
		}
		id, err := strconv.ParseUint(s.Args[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("malformed %s stanza: key id %q", dataKeyStanza, s.Args[0])
		}
		if !k.place.named(s.Args[1:]) {
			return nil, fmt.Errorf("%w (it was sealed for part %s of message %s, in blob %s)", errMisplaced, s.Args[2], s.Args[1], s.Args[3])
		}
		aead, ok := k.dk.aeads[uint32(id)]
		if !ok {
			return nil, fmt.Errorf("%s stanza: no data key %d in this database", dataKeyStanza, id)
		}
		nonce := s.Body[:chacha20poly1305.NonceSizeX]
		fileKey, err := aead.Open(nil, nonce, s.Body[len(nonce):], stanzaAD(s.Args))
		if err != nil {
			return nil, fmt.Errorf("%s stanza: data key %d does not open it (damaged or tampered with)", dataKeyStanza, id)
		}
		return fileKey, nil
	}
	return nil, errUnbound
}

// fileKeyCatcher is the recipient a part is encrypted to while it streams
// in (see above): it keeps the file key age made, and wraps it nowhere.
// The header that age writes with its stanza is dropped.
type fileKeyCatcher struct{ fileKey []byte }

// Wrap implements age.Recipient.
func (c *fileKeyCatcher) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	c.fileKey = bytes.Clone(fileKey)
	return []*age.Stanza{{Type: "securetextd-pending"}}, nil
}

// stanzaList is an age.Identity that opens nothing: it keeps the stanzas
// it is shown, so that age's own parser tells what wraps a header.
type stanzaList []*age.Stanza

func (l *stanzaList) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	*l = stanzas
	return nil, age.ErrIncorrectIdentity
}

// dataKeyStanzaOf returns the single data-key stanza that wraps header's
// file key, or nil if there is none (a part from before data keys, or not
// an age header). It does not check that the stanza opens.
func dataKeyStanzaOf(header []byte) *age.Stanza {
	var l stanzaList
	age.DecryptHeader(header, &l) // fails by design; fills l
	if len(l) != 1 || l[0].Type != dataKeyStanza || len(l[0].Args) == 0 {
		return nil
	}
	return l[0]
}

// dataKeyOf returns the id of the data key that wraps header's file key
// for a place, or 0 if header is not wrapped by a single such data-key
// stanza. Data key ids start at 1. It does not check that the stanza opens.
func dataKeyOf(header []byte) uint32 {
	s := dataKeyStanzaOf(header)
	if s == nil || len(s.Args) != 4 {
		return 0
	}
	id, err := strconv.ParseUint(s.Args[0], 10, 32)
	if err != nil {
		return 0
	}
	return uint32(id)
}
