package store

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// Small values are sealed under a data key (see migration 0005): the
// layout is
//
//	"stx1" | key id (4 bytes, big endian) | nonce (24 bytes) | ciphertext
//
// with the first 8 bytes as additional data, so a value cannot be moved to
// another key id. Values written before data keys existed are age files,
// and open still reads them.
var envelopeMagic = []byte("stx1")

const envelopeHeader = 4 + 4 + chacha20poly1305.NonceSizeX

// dataKeys holds the opened data keys, the newest of which seals: small
// values (seal, below) and the file keys of message parts (datakey.go).
// It is also the age.Identity that opens parts (see Unwrap). It does not
// change once loaded.
type dataKeys struct {
	newest uint32
	aeads  map[uint32]cipher.AEAD
	// recipient wraps new parts' file keys with the newest data key.
	recipient *dataKeyRecipient
}

// loadDataKeys opens every data key with the key file's identities. The
// newest data key must be sealed to the key file's first identity: when
// there is no data key yet, or the first identity has changed since the
// newest was made (a key rotation), it makes a new one. So whatever the
// gateway seals after a rotation rests on the new identity alone, and
// Rekey moves what was sealed before onto it.
func (db *DB) loadDataKeys(ctx context.Context) error {
	for tries := 0; ; tries++ {
		dk, current, err := db.readDataKeys(ctx)
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
// sealed to the key file's first identity.
func (db *DB) readDataKeys(ctx context.Context) (dk *dataKeys, current bool, err error) {
	dk = &dataKeys{aeads: make(map[uint32]cipher.AEAD)}
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
		key, err := db.keys.open(sealed)
		if err != nil {
			return nil, false, fmt.Errorf("data key %d: %w (is this the key file the database was made with?)", id, err)
		}
		aead, err := chacha20poly1305.NewX(key)
		if err != nil {
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

// addDataKey makes a new data key sealed to the key file's first identity,
// unless another process added one since newest was the newest: then the
// caller reads the keys again and judges that one.
func (db *DB) addDataKey(ctx context.Context, newest uint32) error {
	key := make([]byte, chacha20poly1305.KeySize)
	rand.Read(key)
	sealed, err := db.keys.seal(key)
	if err != nil {
		return err
	}
	return db.update(ctx, func(tx *sql.Tx) error {
		var last int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM data_keys`).Scan(&last); err != nil || last != int64(newest) {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO data_keys (sealed, created) VALUES (?, ?)`, sealed, nanos(db.Now()))
		return err
	})
}

// seal encrypts a small value (a manifest, a job payload) under the newest
// data key.
func (db *DB) seal(plaintext []byte) ([]byte, error) {
	aead := db.data.aeads[db.data.newest]
	out := make([]byte, envelopeHeader, envelopeHeader+len(plaintext)+aead.Overhead())
	copy(out, envelopeMagic)
	binary.BigEndian.PutUint32(out[4:8], db.data.newest)
	rand.Read(out[8:envelopeHeader])
	return aead.Seal(out, out[8:envelopeHeader], plaintext, out[:8]), nil
}

// open decrypts a value made by seal, or an age file written before data
// keys existed.
func (db *DB) open(sealed []byte) ([]byte, error) {
	if !bytes.HasPrefix(sealed, envelopeMagic) {
		return db.keys.open(sealed)
	}
	if len(sealed) < envelopeHeader {
		return nil, errors.New("sealed value too short")
	}
	aead, ok := db.data.aeads[binary.BigEndian.Uint32(sealed[4:8])]
	if !ok {
		return nil, fmt.Errorf("sealed value: no data key %d", binary.BigEndian.Uint32(sealed[4:8]))
	}
	return aead.Open(nil, sealed[8:envelopeHeader], sealed[envelopeHeader:], sealed[:8])
}

// fileKeys remembers the file keys of parts sealed to the key file's
// identities, by the hash of their header, so that reading such a part
// again (each page view, each Range request of a download) costs a
// symmetric decryption, not a post-quantum key decapsulation. Parts written
// since data keys wrap them (datakey.go) need no cache: unwrapping is one
// AEAD operation. The older ones stay in databases that were never rekeyed,
// for as long as they are kept. The keys are secrets like the identity the
// process already holds; the cache is bounded and lives in memory only.
type fileKeys struct {
	mu   sync.Mutex
	keys map[[32]byte][]byte
}

const maxFileKeys = 4096

// keyFileIdentities returns the identity that opens an age file sealed to
// the key file (a part from before data keys), whose header is given: its
// cached file key, or the file key unwrapped by the key file's identities,
// which is then cached.
func (db *DB) keyFileIdentities(header []byte) ([]age.Identity, error) {
	h := sha256.Sum256(header)
	c := &db.fileKeys
	c.mu.Lock()
	key, ok := c.keys[h]
	c.mu.Unlock()
	if !ok {
		var err error
		if key, err = age.DecryptHeader(header, db.keys.identities...); err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.keys == nil || len(c.keys) >= maxFileKeys {
			c.keys = make(map[[32]byte][]byte)
		}
		c.keys[h] = key
		c.mu.Unlock()
	}
	return []age.Identity{age.NewInjectedFileKeyIdentity(key)}, nil
}
