package store

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The REST API fingerprints a request by what it asks for (portal: a
// SHA-256 over the recipients, the subject, and a digest of each text and
// file), so that a retry with the same Idempotency-Key can be told from
// another message sent with it. Kept as it is, that digest would let
// anyone holding a copy of the database confirm a guess of a message's
// content: hash the guess, compare. So the store keeps only an HMAC of it,
//
//	HMAC-SHA-256(K, len(sender) | sender | SHA-256(Idempotency-Key) | fingerprint)
//
// under K = HKDF-SHA-256(data key, "securetextd api idempotency
// fingerprint v1"), derived from the newest data key when the record is
// written, whose id the record keeps (api_idempotency.key_id). The sender
// and key are in it so that a record copied to another row matches
// nothing.
//
// Data keys are never deleted, and a rotation re-wraps them rather than
// replacing them (rekey.go), so a record made before a restart, a rotation
// or a rekey still matches after it, even once the old identity is gone
// from the key file. A record that names a data key the store does not
// hold (or is still a bare SHA-256, key_id 0, which migration 0006 turns
// into an HMAC at open) is an error, never a miss: a miss would send the
// message a second time, which is worse than refusing the retry.
//
// Records answer retries for IdempotencyWindow; Purge deletes them after
// it, whatever the retention of content.

// fingerprintLabel is HKDF's info for the fingerprint key.
const fingerprintLabel = "securetextd api idempotency fingerprint v1"

// fingerprintKey derives the fingerprint key from a data key.
func fingerprintKey(dataKey []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, dataKey, nil, fingerprintLabel, sha256.Size)
}

// fingerprintMAC returns what is kept of fingerprint fp of sender's
// request with Idempotency-Key hash keyHash, under fingerprint key key.
func fingerprintMAC(key []byte, sender string, keyHash, fp []byte) []byte {
	m := hmac.New(sha256.New, key)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(sender)))
	m.Write(n[:])
	m.Write([]byte(sender))
	m.Write(keyHash)
	m.Write(fp)
	return m.Sum(nil)
}

// IdempotentRecord is the answer kept for an Idempotency-Key.
type IdempotentRecord struct {
	Status int
	Body   []byte

	// What Matches needs to recompute the kept HMAC.
	mac, key, keyHash []byte
	sender            string
}

// Matches reports whether the record was made by a request with
// fingerprint f.
func (r *IdempotentRecord) Matches(f [32]byte) bool {
	return hmac.Equal(r.mac, fingerprintMAC(r.key, r.sender, r.keyHash, f[:]))
}

func idempotencyHash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// lookupIdempotency returns the record of sender's Idempotency-Key key
// within IdempotencyWindow of now, or nil.
func (db *DB) lookupIdempotency(ctx context.Context, q queryer, sender, key string, now time.Time) (*IdempotentRecord, error) {
	rec := &IdempotentRecord{sender: sender, keyHash: idempotencyHash(key)}
	var keyID int64
	err := q.QueryRowContext(ctx, `
		SELECT fingerprint, key_id, status, response FROM api_idempotency
		WHERE sender = ? AND key_hash = ? AND created > ?`,
		sender, rec.keyHash, nanos(now.Add(-IdempotencyWindow))).Scan(&rec.mac, &keyID, &rec.Status, &rec.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if rec.key = db.data.fingerprints[uint32(keyID)]; rec.key == nil || keyID <= 0 {
		return nil, fmt.Errorf("idempotency record: its fingerprint is kept under no data key of this database (%d)", keyID)
	}
	return rec, nil
}

// keepIdempotency stores the answer to sender's request with idem, made in
// transaction tx at now, and deletes the records past the window.
func (db *DB) keepIdempotency(ctx context.Context, tx *sql.Tx, sender string, idem *Idempotency, status int, body []byte, now time.Time) error {
	if _, err := tx.ExecContext(ctx,
		`DELETE FROM api_idempotency WHERE created <= ?`, nanos(now.Add(-IdempotencyWindow))); err != nil {
		return err
	}
	keyHash := idempotencyHash(idem.Key)
	id := db.data.newest
	_, err := tx.ExecContext(ctx, `
		INSERT INTO api_idempotency (sender, key_hash, fingerprint, key_id, status, response, created)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		sender, keyHash, fingerprintMAC(db.data.fingerprints[id], sender, keyHash, idem.Fingerprint[:]), id, status, body, nanos(now))
	return err
}

// purgeFingerprints deletes the idempotency records past the window, and
// returns how many.
func (db *DB) purgeFingerprints(ctx context.Context) (int, error) {
	var n int64
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM api_idempotency WHERE created <= ?`, nanos(db.Now().Add(-IdempotencyWindow)))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
