package store

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"fmt"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// Small values are sealed under a data key (see migration 0005), bound to
// their place (place.go): the layout is
//
//	"stx2" | key id (4 bytes, big endian) | n (1 byte) | place (n bytes) | nonce (24 bytes) | ciphertext
//
// with everything before the nonce as additional data, so that a value
// can be moved neither to another key id nor to another row. The place is
// written out so that a value found in the wrong row can be told from a
// damaged one. Values written before migration 0006 ("stx1", without the
// place; before that, age files sealed to the key file) are re-sealed in
// this form when the store is opened (bind.go).
var envelopeMagic = []byte("stx2")

// envelopeFixed is the size of the layout's fixed fields, before the
// place: magic, key id and place length.
const envelopeFixed = 4 + 4 + 1

// dataKeys holds the opened data keys, the newest of which seals: small
// values (seal, below) and the file keys of message parts (datakey.go).
// It is also the age.Identity that opens parts (see Unwrap). It does not
// change once loaded.
type dataKeys struct {
	newest uint32
	aeads  map[uint32]cipher.AEAD
	// recipient wraps parts' file keys with the newest data key.
	recipient *dataKeyRecipient
	// fingerprints holds, for each data key, the key of the API's
	// idempotency fingerprints (fingerprint.go), derived from it.
	fingerprints map[uint32][]byte
}

// loadDataKeys opens every data key with the key file's identities. The
// newest data key must be sealed to the key file's first identity: when
// there is no data key yet, or the first identity has changed since the
// newest was made (a key rotation), it makes a new one. So whatever the
// gateway seals after a rotation rests on the new identity alone, and
// Rekey moves what was sealed before onto it.
//
// A data key is sealed with its place: the plaintext is the 32-byte key
// followed by the encoding of its row in data_keys, so that a data key
// copied over another is refused here rather than sealing new values
// under a key its id does not name. Data keys from before migration 0006
// (the bare key) are accepted while that migration runs (unbound).
func (db *DB) loadDataKeys(ctx context.Context, unbound bool) error {
	for tries := 0; ; tries++ {
		dk, current, err := db.readDataKeys(ctx, unbound)
		if err != nil {
			return fmt.Errorf("store: data keys: %w", err)
		}
		// Another process, with another first identity, may keep adding
		// keys of its own (see addDataKey): give up after two turns and
		// seal with a key that, at least, this keyring opens.
		if current || (tries == 2 && len(dk.aeads) > 0) {
			_, hybrid := db.keys.identities[0].(*age.HybridIdentity)
			dk.recipient = &dataKeyRecipient{id: dk.newest, aead: dk.aeads[dk.newest], postQuantum: hybrid && current}
			db.data = dk
			return nil
		}
		if err := db.addDataKey(ctx, dk.newest); err != nil {
			return fmt.Errorf("store: data keys: %w", err)
		}
	}
}

// readDataKeys opens every data key, and reports whether the newest is
// sealed to the key file's first identity. unbound accepts data keys
// sealed without their place.
func (db *DB) readDataKeys(ctx context.Context, unbound bool) (dk *dataKeys, current bool, err error) {
	dk = &dataKeys{aeads: make(map[uint32]cipher.AEAD), fingerprints: make(map[uint32][]byte)}
	rows, err := db.write.QueryContext(ctx, `SELECT id, sealed FROM data_keys ORDER BY id`)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	var newest []byte
	for rows.Next() {
		var id int64
		var sealed []byte
		if err := rows.Scan(&id, &sealed); err != nil {
			return nil, false, err
		}
		key, _, err := db.openDataKey(id, sealed, unbound)
		if err != nil {
			return nil, false, fmt.Errorf("data key %d: %w", id, err)
		}
		aead, err := chacha20poly1305.NewX(key)
		if err != nil {
			return nil, false, fmt.Errorf("data key %d: %w", id, err)
		}
		if dk.fingerprints[uint32(id)], err = fingerprintKey(key); err != nil {
			return nil, false, fmt.Errorf("data key %d: %w", id, err)
		}
		dk.aeads[uint32(id)] = aead
		dk.newest, newest = uint32(id), sealed
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	return dk, newest != nil && db.keys.sealedToFirst(newest), nil
}

// openDataKey opens data key id, sealed as it was read from its row, and
// reports whether it was sealed with its place. unbound accepts a bare key.
func (db *DB) openDataKey(id int64, sealed []byte, unbound bool) (key []byte, bound bool, err error) {
	plain, err := db.keys.open(sealed)
	if err != nil {
		return nil, false, fmt.Errorf("%w (is this the key file the database was made with?)", err)
	}
	if len(plain) < chacha20poly1305.KeySize {
		return nil, false, errForged
	}
	key, at := plain[:chacha20poly1305.KeySize], plain[chacha20poly1305.KeySize:]
	p := dataKeyPlace(id)
	switch {
	case len(at) == 0 && unbound:
		return key, false, nil
	case len(at) == 0:
		return nil, false, errUnbound
	case !bytes.Equal(at, p.appendTo(nil)):
		return nil, false, misplaced(at, p)
	}
	return key, true, nil
}

// sealDataKey seals data key id to the key file's first identity, with
// its place.
func (db *DB) sealDataKey(id int64, key []byte) ([]byte, error) {
	return db.keys.seal(dataKeyPlace(id).appendTo(bytes.Clone(key)))
}

// addDataKey makes a new data key sealed to the key file's first identity,
// unless another process added one since newest was the newest: then the
// caller reads the keys again and judges that one.
func (db *DB) addDataKey(ctx context.Context, newest uint32) error {
	key := make([]byte, chacha20poly1305.KeySize)
	rand.Read(key)
	id := int64(newest) + 1
	sealed, err := db.sealDataKey(id, key)
	if err != nil {
		return err
	}
	return db.update(ctx, func(tx *sql.Tx) error {
		var last int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM data_keys`).Scan(&last); err != nil || last != int64(newest) {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO data_keys (id, sealed, created) VALUES (?, ?, ?)`, id, sealed, nanos(db.Now()))
		return err
	})
}

// seal encrypts a small value (a manifest, a job payload, a recovery
// address) under the newest data key, for place p.
func (db *DB) seal(plaintext []byte, p place) []byte {
	aead := db.data.aeads[db.data.newest]
	head := envelopeFixed + p.encodedLen()
	nonceEnd := head + chacha20poly1305.NonceSizeX
	out := make([]byte, head, nonceEnd+len(plaintext)+aead.Overhead())
	copy(out, envelopeMagic)
	binary.BigEndian.PutUint32(out[4:8], db.data.newest)
	out[8] = byte(p.encodedLen())
	out = p.appendTo(out[:envelopeFixed])
	out = out[:nonceEnd]
	rand.Read(out[head:])
	return aead.Seal(out, out[head:], plaintext, out[:head])
}

// open decrypts a value made by seal for place p. A value sealed for
// another place is an errMisplaced error, one in a form from before
// places were bound an errUnbound error.
func (db *DB) open(sealed []byte, p place) ([]byte, error) {
	if !bytes.HasPrefix(sealed, envelopeMagic) {
		return nil, errUnbound
	}
	if len(sealed) < envelopeFixed {
		return nil, errForged
	}
	head := envelopeFixed + int(sealed[8])
	if len(sealed) < head+chacha20poly1305.NonceSizeX {
		return nil, errForged
	}
	var buf [64]byte
	if at := sealed[envelopeFixed:head]; !bytes.Equal(at, p.appendTo(buf[:0])) {
		return nil, misplaced(at, p)
	}
	id := binary.BigEndian.Uint32(sealed[4:8])
	aead, ok := db.data.aeads[id]
	if !ok {
		return nil, fmt.Errorf("sealed value: no data key %d", id)
	}
	nonceEnd := head + chacha20poly1305.NonceSizeX
	plain, err := aead.Open(nil, sealed[head:nonceEnd], sealed[nonceEnd:], sealed[:head])
	if err != nil {
		return nil, errForged
	}
	return plain, nil
}
