package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"path/filepath"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// commitIdempotent commits a one-part message from the API with
// Idempotency-Key key and fingerprint fp.
func commitIdempotent(t testing.TB, db *DB, key string, fp [32]byte) {
	t.Helper()
	d := db.NewDraft()
	defer d.Discard()
	w, _ := d.CreatePart(plainPart)
	w.Write([]byte("hi"))
	w.Close()
	r, rec, err := d.CommitAPI(context.Background(), &securetextd.Message{Sender: drWho}, []securetextd.Phone{patient},
		&Idempotency{Key: key, Fingerprint: fp, Response: func(*Receipt) (int, []byte, error) { return 201, []byte(`{}`), nil }})
	if err != nil || r == nil || rec != nil {
		t.Fatalf("commit with key %q: %v %v %v", key, r, rec, err)
	}
}

// wantMatch checks that the record kept for key matches fp, and only fp.
func wantMatch(t testing.TB, db *DB, key string, fp [32]byte) {
	t.Helper()
	rec, err := db.IdempotentResponse(context.Background(), drWho, key)
	if err != nil {
		t.Fatalf("record of %q: %v", key, err)
	}
	if !rec.Matches(fp) {
		t.Errorf("record of %q does not match its request", key)
	}
	if rec.Matches(sha256.Sum256([]byte("another request"))) {
		t.Errorf("record of %q matches another request", key)
	}
}

// TestIdempotencyFingerprintKeyed: what is kept of a request's fingerprint
// is an HMAC under a key derived from a data key, so that a stolen
// database cannot confirm a guess of a message's content; it still
// matches after a restart, a key rotation, a rekey, and with the old
// identity gone.
func TestIdempotencyFingerprintKeyed(t *testing.T) {
	keyPath, opts := filepath.Join(t.TempDir(), "key.txt"), testOptions(t)
	if _, err := WriteKeyFile(keyPath, false); err != nil {
		t.Fatal(err)
	}
	open := func(keys *Keyring) *DB {
		t.Helper()
		db, err := OpenWith(t.Context(), opts, keys)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	oldKeys, _ := LoadKeyFile(keyPath)
	db := open(oldKeys)
	// The portal's fingerprint: a SHA-256 of the request's fields.
	fp1 := sha256.Sum256([]byte("subject: results; text: all normal"))
	commitIdempotent(t, db, "k1", fp1)
	var stored []byte
	db.read.QueryRow(`SELECT fingerprint FROM api_idempotency`).Scan(&stored)
	if len(stored) != 32 || bytes.Equal(stored, fp1[:]) {
		t.Errorf("the request's bare SHA-256 is stored: %x", stored)
	}
	db.Close()

	db = open(oldKeys) // a restart
	wantMatch(t, db, "k1", fp1)
	db.Close()

	if _, err := AddKeyToFile(keyPath, true); err != nil {
		t.Fatal(err)
	}
	keys, _ := LoadKeyFile(keyPath)
	db = open(keys) // a rotation: a new data key
	wantMatch(t, db, "k1", fp1)
	fp2 := sha256.Sum256([]byte("subject: more results"))
	commitIdempotent(t, db, "k2", fp2)
	if _, err := db.Rekey(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	db.Close()

	newOnly, _ := newKeyring(keys.identities[:1])
	db = open(newOnly) // the old identity removed
	defer db.Close()
	wantMatch(t, db, "k1", fp1)
	wantMatch(t, db, "k2", fp2)

	// Copied to another key's row, a record matches nothing.
	tamper(t, db, `UPDATE api_idempotency SET fingerprint = (SELECT fingerprint FROM api_idempotency WHERE key_hash = (SELECT key_hash FROM api_idempotency ORDER BY created LIMIT 1))`)
	if rec, err := db.IdempotentResponse(t.Context(), drWho, "k2"); err != nil || rec.Matches(fp2) || rec.Matches(fp1) {
		t.Errorf("a record copied to another key: %v", err)
	}
}

// TestPurgeFingerprints: the sweep deletes idempotency records once the
// API's window has passed (they answer no retry after it), whether or not
// content is kept, and keeps the younger ones.
func TestPurgeFingerprints(t *testing.T) {
	for _, p := range []Policy{{}, {Retention: 720 * time.Hour}} {
		db, clk := lifecycleDB(t, p)
		commitIdempotent(t, db, "old", [32]byte{1})
		clk.advance(IdempotencyWindow - time.Minute)
		commitIdempotent(t, db, "young", [32]byte{2})
		clk.advance(2 * time.Minute)
		res, err := db.Purge(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var keys int
		db.read.QueryRow(`SELECT count(*) FROM api_idempotency`).Scan(&keys)
		if keys != 1 || res.Fingerprints != 1 {
			t.Errorf("retention %v: %d records left, %d purged; want 1 and 1", p.Retention, keys, res.Fingerprints)
		}
		wantMatch(t, db, "young", [32]byte{2})
	}
}
