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
	"io"
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

// dataKeys holds the opened data keys, the newest of which seals.
type dataKeys struct {
	newest uint32
	aeads  map[uint32]cipher.AEAD
}

// loadDataKeys opens every data key with the key file's identities, making
// the first one when there is none yet.
func (db *DB) loadDataKeys(ctx context.Context) error {
	dk := &dataKeys{aeads: make(map[uint32]cipher.AEAD)}
	load := func() error {
		rows, err := db.write.QueryContext(ctx, `SELECT id, sealed FROM data_keys ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var sealed []byte
			if err := rows.Scan(&id, &sealed); err != nil {
				return err
			}
			key, err := db.keys.open(sealed)
			if err != nil {
				return fmt.Errorf("data key %d: %w (is this the key file the database was made with?)", id, err)
			}
			aead, err := chacha20poly1305.NewX(key)
			if err != nil {
				return fmt.Errorf("data key %d: %w", id, err)
			}
			dk.aeads[uint32(id)] = aead
			dk.newest = uint32(id)
		}
		return rows.Err()
	}
	if err := load(); err != nil {
		return fmt.Errorf("store: data keys: %w", err)
	}
	if len(dk.aeads) == 0 {
		key := make([]byte, chacha20poly1305.KeySize)
		rand.Read(key)
		sealed, err := db.keys.seal(key)
		if err != nil {
			return fmt.Errorf("store: data keys: %w", err)
		}
		err = db.update(ctx, func(tx *sql.Tx) error {
			// Another process may have made one meanwhile: keep the first.
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM data_keys`).Scan(&n); err != nil || n > 0 {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO data_keys (sealed, created) VALUES (?, ?)`, sealed, nanos(db.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("store: data keys: %w", err)
		}
		if err := load(); err != nil {
			return fmt.Errorf("store: data keys: %w", err)
		}
	}
	db.data = dk
	return nil
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

// fileKeys remembers the file keys of age files the store has opened, by
// the hash of their header, so that reading a part again (each page view,
// each Range request of a download) costs a symmetric decryption, not a
// post-quantum key decapsulation. The keys are secrets like the identity
// the process already holds; the cache is bounded and lives in memory only.
type fileKeys struct {
	mu   sync.Mutex
	keys map[[32]byte][]byte
}

const maxFileKeys = 4096

// identitiesFor returns the identities that open the age file whose header
// is read from src: the cached file key, or the key file's identities
// (whose result is then cached).
func (db *DB) identitiesFor(src io.Reader) ([]age.Identity, error) {
	header, err := age.ExtractHeader(src)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(header)
	c := &db.fileKeys
	c.mu.Lock()
	key, ok := c.keys[h]
	c.mu.Unlock()
	if !ok {
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
