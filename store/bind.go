package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// Migration 0006 binds every sealed value to its place (place.go). Its
// SQL adds a marker row; this code, run by Open while the marker is there,
// re-seals what was sealed before, in the forms of version 5:
//
//   - small values ("stx1" under a data key, or age files sealed to the
//     key file from before data keys) are opened and sealed anew under the
//     newest data key, for their row;
//   - parts (a data-key stanza without a place, or sealed to the key file)
//     get a new header, their file key wrapped by the newest data key for
//     their place, in blobs.header (as rekey does: the content is not
//     touched, and a header that was in the first chunk is zeroed there);
//   - data keys are sealed again with their row;
//   - idempotency fingerprints, bare SHA-256 digests, become the HMAC of
//     that same digest (fingerprint.go), so a retry across the upgrade is
//     still recognised.
//
// Each batch is a short transaction that changes a row only if it still
// holds what was read, and what is bound already is skipped: cut short, the
// migration resumes at the next Open, and running it twice changes
// nothing. When it is done the marker goes, and from then on the older
// forms are refused (errUnbound) rather than opened: a value copied from an
// old backup into a row does not open unbound. A value that no key opens
// is left as it was; it did not open before either.

// bindBatch is how many rows one transaction of the migration re-seals.
const bindBatch = 100

// bindPending reports whether migration 0006 has yet to bind the values
// sealed before it.
func (db *DB) bindPending(ctx context.Context) (bool, error) {
	var n int
	if err := db.write.QueryRowContext(ctx, `SELECT count(*) FROM bind_migration`).Scan(&n); err != nil {
		return false, fmt.Errorf("store: open: %w", err)
	}
	return n > 0, nil
}

// bindAll binds every value sealed before migration 0006 to its place, and
// then removes the migration's marker.
func (db *DB) bindAll(ctx context.Context) error {
	steps := []struct {
		what string
		run  func(context.Context) error
	}{
		{"data keys", db.bindDataKeys},
		{"manifests", func(ctx context.Context) error {
			return db.bindColumn(ctx, "messages", "id", int64(0), "manifest", func(k any) place { return manifestPlace(k.(int64)) })
		}},
		{"outbox payloads", func(ctx context.Context) error {
			return db.bindColumn(ctx, "jobs", "id", int64(0), "payload", func(k any) place { return payloadPlace(k.(int64)) })
		}},
		{"recovery addresses", func(ctx context.Context) error {
			return db.bindColumn(ctx, "recipients", "phone", "", "recovery_email", func(k any) place { return recoveryPlace(k.(string)) })
		}},
		{"parts", db.bindParts},
		{"idempotency fingerprints", db.bindFingerprints},
	}
	for _, s := range steps {
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("store: migration 0006: bind %s to their place: %w", s.what, err)
		}
	}
	return db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM bind_migration`)
		return err
	})
}

// bindDataKeys seals every data key again, with its row.
func (db *DB) bindDataKeys(ctx context.Context) error {
	type change struct {
		id       int64
		old, new []byte
	}
	var changes []change
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, sealed FROM data_keys ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c change
			if err := rows.Scan(&c.id, &c.old); err != nil {
				return err
			}
			key, bound, err := db.openDataKey(c.id, c.old, true)
			if err != nil {
				return fmt.Errorf("data key %d: %w", c.id, err)
			}
			if bound {
				continue
			}
			if c.new, err = db.sealDataKey(c.id, key); err != nil {
				return err
			}
			changes = append(changes, c)
		}
		return rows.Err()
	})
	if err != nil || len(changes) == 0 {
		return err
	}
	return db.update(ctx, func(tx *sql.Tx) error {
		for _, c := range changes {
			if _, err := tx.ExecContext(ctx,
				`UPDATE data_keys SET sealed = ? WHERE id = ? AND sealed = ?`, c.new, c.id, c.old); err != nil {
				return err
			}
		}
		return nil
	})
}

// bindColumn seals every value of column in table (rows named by key, a
// column of the table: these are constants, never input) anew for its
// place, at(key), a batch of rows per transaction, in the order of key
// from after from.
func (db *DB) bindColumn(ctx context.Context, table, key string, from any, column string, at func(key any) place) error {
	query := fmt.Sprintf(`SELECT %[1]s, %[2]s FROM %[3]s
		WHERE %[1]s > ? AND length(%[2]s) > 0 AND substr(%[2]s, 1, 4) != CAST(? AS %[5]s)
		ORDER BY %[1]s LIMIT %[4]d`, key, column, table, bindBatch, db.eng.blob)
	update := fmt.Sprintf(`UPDATE %s SET %s = ? WHERE %s = ? AND %[2]s = ?`, table, column, key)
	type change struct {
		key      any
		old, new []byte
	}
	after := from
	for {
		var changes []change
		scanned := 0
		err := db.view(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, query, after, envelopeMagic)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var c change
				if err := rows.Scan(&c.key, &c.old); err != nil {
					return err
				}
				scanned++
				after = c.key
				plain, err := db.openLegacy(c.old)
				if err != nil {
					continue // it did not open before either
				}
				c.new = db.seal(plain, at(c.key))
				changes = append(changes, c)
			}
			return rows.Err()
		})
		if err != nil {
			return err
		}
		if len(changes) > 0 {
			err := db.update(ctx, func(tx *sql.Tx) error {
				for _, c := range changes {
					if _, err := tx.ExecContext(ctx, update, c.new, c.key, c.old); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if scanned < bindBatch {
			return nil
		}
	}
}

// legacyMagic starts a small value sealed under a data key before
// migration 0006: "stx1" | key id | nonce | ciphertext, with the first 8
// bytes as additional data.
var legacyMagic = []byte("stx1")

// openLegacy opens a small value sealed before migration 0006: in the
// "stx1" form, or an age file sealed to the key file.
func (db *DB) openLegacy(sealed []byte) ([]byte, error) {
	if !bytes.HasPrefix(sealed, legacyMagic) {
		return db.keys.open(sealed)
	}
	const head = 8 + chacha20poly1305.NonceSizeX
	if len(sealed) < head {
		return nil, errForged
	}
	aead, ok := db.data.aeads[binary.BigEndian.Uint32(sealed[4:8])]
	if !ok {
		return nil, fmt.Errorf("no data key %d", binary.BigEndian.Uint32(sealed[4:8]))
	}
	return aead.Open(nil, sealed[8:head], sealed[head:], sealed[:8])
}

// bindParts gives every committed part a header for its place, a batch of
// blobs per transaction.
func (db *DB) bindParts(ctx context.Context) error {
	var last int64
	for {
		ids, err := func() ([]int64, error) {
			var ids []int64
			err := db.view(ctx, func(tx *sql.Tx) error {
				var err error
				ids, err = queryIDs(ctx, tx,
					`SELECT id FROM blobs WHERE state = 'committed' AND id > ? ORDER BY id LIMIT ?`, last, bindBatch)
				return err
			})
			return ids, err
		}()
		if err != nil || len(ids) == 0 {
			return err
		}
		var changes []*headerChange
		for _, id := range ids {
			c, err := db.headerChange(ctx, id, db.bindHeader)
			if errors.Is(err, errBadHeader) {
				continue // it did not open before either
			}
			if err != nil {
				return fmt.Errorf("blob %d: %w", id, err)
			}
			if c != nil {
				changes = append(changes, c)
			}
		}
		if len(changes) > 0 {
			err := db.update(ctx, func(tx *sql.Tx) error {
				for _, c := range changes {
					if err := c.apply(ctx, tx); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		last = ids[len(ids)-1]
	}
}

// bindHeader returns the header of the part at p for its place, or nil
// when it has one already, or when nothing opens it (it did not open
// before either).
func (db *DB) bindHeader(header []byte, p partPlace) ([]byte, error) {
	if dataKeyOf(header) != 0 {
		return nil, nil
	}
	ids := append([]age.Identity{legacyDataKeys{db.data}}, db.keys.identities...)
	fileKey, err := age.DecryptHeader(header, ids...)
	if err != nil {
		return nil, nil
	}
	return db.partHeader(fileKey, p)
}

// legacyDataKeys opens the data-key stanzas of parts sealed before
// migration 0006: "-> securetextd-dk 3", with that line's type and
// argument as additional data.
type legacyDataKeys struct{ dk *dataKeys }

func (l legacyDataKeys) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, s := range stanzas {
		if s.Type != dataKeyStanza || len(s.Args) != 1 || len(s.Body) != dataKeyBody {
			continue
		}
		id, err := strconv.ParseUint(s.Args[0], 10, 32)
		if err != nil {
			continue
		}
		aead, ok := l.dk.aeads[uint32(id)]
		if !ok {
			return nil, fmt.Errorf("%s stanza: no data key %d in this database", dataKeyStanza, id)
		}
		nonce := s.Body[:chacha20poly1305.NonceSizeX]
		return aead.Open(nil, nonce, s.Body[len(nonce):], []byte(dataKeyStanza+" "+s.Args[0]))
	}
	return nil, age.ErrIncorrectIdentity
}

// bindFingerprints turns every bare SHA-256 idempotency fingerprint into
// the HMAC of that digest under the newest data key's fingerprint key.
func (db *DB) bindFingerprints(ctx context.Context) error {
	type record struct{ sender, keyHash, fp []byte }
	var records []record
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx,
			`SELECT sender, key_hash, fingerprint FROM api_idempotency WHERE key_id = 0`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r record
			if err := rows.Scan(&r.sender, &r.keyHash, &r.fp); err != nil {
				return err
			}
			records = append(records, r)
		}
		return rows.Err()
	})
	if err != nil || len(records) == 0 {
		return err
	}
	id := db.data.newest
	key := db.data.fingerprints[id]
	if key == nil {
		return errors.New("no fingerprint key")
	}
	return db.update(ctx, func(tx *sql.Tx) error {
		for _, r := range records {
			if _, err := tx.ExecContext(ctx, `
				UPDATE api_idempotency SET fingerprint = ?, key_id = ?
				WHERE sender = ? AND key_hash = ? AND key_id = 0`,
				fingerprintMAC(key, string(r.sender), r.keyHash, r.fp), id, string(r.sender), r.keyHash); err != nil {
				return err
			}
		}
		return nil
	})
}
