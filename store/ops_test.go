package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// readPart returns the whole content of a part.
func readPart(t *testing.T, db *DB, msg int64, idx int) []byte {
	t.Helper()
	ra, size, err := db.OpenPart(context.Background(), msg, idx)
	if err != nil {
		t.Fatalf("open part %d of %d: %v", idx, msg, err)
	}
	b, err := io.ReadAll(io.NewSectionReader(ra, 0, size))
	if err != nil {
		t.Fatalf("read part %d of %d: %v", idx, msg, err)
	}
	return b
}

// TestRekey rotates the key: messages sealed to the old identity open
// after a new one is put first; rekey re-wraps every file key without
// touching content; then the old identity alone opens nothing, the new one
// alone opens everything, and a range read of a rekeyed blob still works.
func TestRekey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "key.txt")
	if _, err := WriteKeyFile(keyPath, false); err != nil { // an old X25519 key
		t.Fatal(err)
	}
	oldKeys, err := LoadKeyFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t)
	db, err := OpenWith(ctx, opts, oldKeys)
	if err != nil {
		t.Fatal(err)
	}
	big := randomBytes(7, 3*chunkSize+12345) // four chunk rows
	small := []byte("small body")
	var ids []int64
	for i := range 5 {
		r := commitTest(t, db, &securetextd.Message{Sender: "a@clinic.example", Subject: "subject " + string(rune('A'+i))}, []testPart{
			{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, small},
			{securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/pdf", Filename: "x.pdf"}, big},
		}, "+12125550123")
		ids = append(ids, r.MessageID)
	}
	if err := db.CreateRecipient(ctx, "+12125550123", "a long enough password", "patient@example.com"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// Rotate: a new hybrid identity first; the old one still opens.
	if _, err := AddKeyToFile(keyPath, true); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeyFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if keys.Recipient() == oldKeys.Recipient() || len(keys.identities) != 2 {
		t.Fatalf("the new identity is not first: %d identities", len(keys.identities))
	}
	db, err = OpenWith(ctx, opts, keys)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readPart(t, db, ids[0], 1), big) {
		t.Fatal("an old message does not open after rotation")
	}
	// One message sealed to the new key already: rekey skips it.
	commitTest(t, db, &securetextd.Message{Sender: "a@clinic.example"}, []testPart{
		{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, []byte("new")},
	}, "+12125550123")

	// Interrupt the first run after two blobs, as a crash would.
	cctx, cancel := context.WithCancel(ctx)
	var seen int
	_, err = db.Rekey(cctx, func(st RekeyStats) {
		if seen++; seen == 2 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted rekey: %v", err)
	}
	chunksBefore := contentDigest(t, db)
	st, err := db.Rekey(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Blobs == 0 || st.Values == 0 || st.Current == 0 {
		t.Errorf("resumed rekey: %+v", st)
	}
	// Content rows past the first chunk are untouched: nothing re-encrypted.
	chunksAfter := contentDigest(t, db)
	if chunksBefore != chunksAfter {
		t.Error("rekey rewrote content chunks")
	}
	// A second run finds nothing to do.
	if st, err := db.Rekey(ctx, nil); err != nil || st.Blobs != 0 || st.Values != 0 {
		t.Errorf("second rekey: %+v, %v", st, err)
	}
	// The old header is gone from the first chunks.
	var leftover int
	if err := db.read.QueryRow(`SELECT count(*) FROM chunks c JOIN blobs b ON b.id = c.blob_id
		WHERE c.seq = 0 AND b.header IS NOT NULL AND substr(c.data, 1, 21) = CAST('age-encryption.org/v1' AS ` + db.eng.blob + `)`).Scan(&leftover); err != nil {
		t.Fatal(err)
	}
	if leftover != 0 {
		t.Errorf("%d rekeyed first chunks still hold their old age header", leftover)
	}
	db.Close()

	// The old key alone opens nothing any more: not even the data key, so
	// the store refuses to open.
	if db, err := OpenWith(ctx, opts, oldKeys); err == nil {
		db.Close()
		t.Error("the old key alone still opens the store")
	}

	// The new key alone opens everything: parts (a range too), manifests,
	// the recovery address (a reset mails it), outbox payloads.
	newOnly, err := newKeyring(keys.identities[:1])
	if err != nil {
		t.Fatal(err)
	}
	db, err = OpenWith(ctx, opts, newOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, id := range ids {
		m, err := db.Message(ctx, id)
		if err != nil || !strings.HasPrefix(m.Subject, "subject ") {
			t.Fatalf("manifest of %d: %v %+v", id, err, m)
		}
		if !bytes.Equal(readPart(t, db, id, 0), small) || !bytes.Equal(readPart(t, db, id, 1), big) {
			t.Fatalf("message %d does not open with the new key", id)
		}
	}
	ra, _, err := db.OpenPart(ctx, ids[1], 1)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	if _, err := ra.ReadAt(buf, int64(2*chunkSize+77)); err != nil || !bytes.Equal(buf, big[2*chunkSize+77:2*chunkSize+1077]) {
		t.Errorf("range read after rekey: %v", err)
	}
	if err := db.RequestPasswordReset(ctx, "+12125550123", time.Hour); err != nil {
		t.Errorf("the recovery address does not open: %v", err)
	}
	for {
		job, err := db.NextJob(ctx, time.Now().Add(time.Hour))
		if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
			break
		}
		if err != nil {
			t.Fatalf("an outbox payload does not open: %v", err)
		}
		db.CompleteJob(ctx, job.ID)
	}
}

// contentDigest hashes every chunk row but the first of each blob.
func contentDigest(t *testing.T, db *DB) [32]byte {
	t.Helper()
	rows, err := db.read.Query(`SELECT data FROM chunks WHERE seq > 0 ORDER BY blob_id, seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	h := sha256.New()
	for rows.Next() {
		var b []byte
		rows.Scan(&b)
		h.Write(b)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// TestNewHeaderIsAge checks the header rekey writes against age's own
// parser, for both kinds of recipient and file keys of every byte.
func TestNewHeaderIsAge(t *testing.T) {
	for _, hybrid := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "k")
		if _, err := WriteKeyFile(path, hybrid); err != nil {
			t.Fatal(err)
		}
		k, err := LoadKeyFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := k.seal([]byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		other := testKeys(t)
		both, _ := newKeyring(append(other.identities, k.identities...))
		// Re-wrap from k to other: the value opens with other alone.
		hdrLen := bytes.Index(sealed, []byte("\n---")) + 1
		hdrLen += bytes.IndexByte(sealed[hdrLen:], '\n') + 1
		h, err := both.rewrap(sealed[:hdrLen])
		if err != nil || h == nil {
			t.Fatalf("rewrap: %v", err)
		}
		plain, err := other.open(append(h, sealed[hdrLen:]...))
		if err != nil || string(plain) != "hello" {
			t.Fatalf("hybrid=%v: re-wrapped value: %q, %v", hybrid, plain, err)
		}
	}
}

// TestBackupUnderLoad takes a backup while messages are being committed,
// and finds the copy consistent and openable. It uses SQLite whatever the
// tests' engine: Backup is SQLite's online backup API (a PostgreSQL store
// is backed up with the server's own tools).
func TestBackupUnderLoad(t *testing.T) {
	ctx := context.Background()
	keys := testKeys(t)
	dir := t.TempDir()
	db, err := Open(filepath.Join(dir, "db.sqlite"), keys)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stop atomic.Bool
	var wg sync.WaitGroup
	var committed atomic.Int64
	for w := range 3 {
		wg.Go(func() {
			for i := 0; !stop.Load() && i < 2000; i++ {
				d := db.NewDraft()
				pw, _ := d.CreatePart(securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/octet-stream", Filename: "f"})
				pw.Write(randomBytes(uint64(w*10000+i), 40<<10))
				pw.Close()
				if _, err := d.Commit(ctx, &securetextd.Message{Sender: "a@clinic.example"}, []securetextd.Phone{"+12125550123"}); err != nil {
					t.Error(err)
					return
				}
				committed.Add(1)
			}
		})
	}
	for committed.Load() < 30 {
		time.Sleep(5 * time.Millisecond)
	}
	out := filepath.Join(dir, "backup.db")
	info, err := Backup(ctx, filepath.Join(dir, "db.sqlite"), out)
	during := committed.Load()
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if info.Pages == 0 || info.Bytes == 0 {
		t.Errorf("backup info %+v", info)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v %v", fi, err)
	}
	if _, err := Backup(ctx, filepath.Join(dir, "db.sqlite"), out); err == nil {
		t.Error("a backup overwrote an existing file")
	}
	raw, err := sql.Open("sqlite3", "file:"+out+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := IntegrityCheck(ctx, raw); err != nil {
		t.Fatal(err)
	}
	// The copy opens with the key and holds whole messages: each one it
	// has opens to its end.
	copyDB, err := Open(out, keys)
	if err != nil {
		t.Fatal(err)
	}
	defer copyDB.Close()
	n, err := copyDB.CountMessages(ctx)
	if err != nil || n == 0 || int64(n) > committed.Load() {
		t.Fatalf("copy holds %d messages (%d committed, %d when the backup ended): %v", n, committed.Load(), during, err)
	}
	var last int64
	copyDB.read.QueryRow(`SELECT max(id) FROM messages`).Scan(&last)
	if got := readPart(t, copyDB, last, 0); len(got) != 40<<10 {
		t.Errorf("last message in the copy: %d bytes", len(got))
	}
	t.Logf("backup: %d of %d messages, %d pages", n, committed.Load(), info.Pages)
}

// TestAPIKeys makes, authenticates and revokes keys; only hashes are kept.
func TestAPIKeys(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	if _, _, err := db.CreateAPIKey(ctx, "nobody@clinic.example", ""); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("key for a missing sender: %v", err)
	}
	if err := db.CreateSender(ctx, "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	token, k, err := db.CreateAPIKey(ctx, "Dr.Who@clinic.example", "EHR")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, "stx_") || len(token) != 4+43 || k.Prefix != token[:12] {
		t.Errorf("token %q prefix %q", token, k.Prefix)
	}
	var hash []byte
	var prefix string
	if err := db.read.QueryRow(`SELECT key_hash, prefix FROM api_keys WHERE id = ?`, k.ID).Scan(&hash, &prefix); err != nil {
		t.Fatal(err)
	}
	// A hash of the key, and the characters shown of it: nothing more.
	if len(hash) != 32 || bytes.Contains(hash, []byte(token[12:28])) || prefix != token[:12] {
		t.Errorf("the key is stored in clear: hash %x, prefix %q", hash, prefix)
	}
	got, err := db.AuthenticateAPIKey(ctx, token)
	if err != nil || got.Sender != "dr.who@clinic.example" || got.LastUsed.IsZero() {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	for _, bad := range []string{"", "stx_", token + "x", strings.Replace(token, "stx_", "sty_", 1)} {
		if _, err := db.AuthenticateAPIKey(ctx, bad); securetextd.ErrorCode(err) != securetextd.EUNAUTHORIZED {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if err := db.RevokeAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AuthenticateAPIKey(ctx, token); securetextd.ErrorCode(err) != securetextd.EUNAUTHORIZED {
		t.Errorf("revoked key: %v", err)
	}
	keys, _ := db.ListAPIKeys(ctx, "dr.who@clinic.example")
	if len(keys) != 1 || keys[0].Revoked.IsZero() || keys[0].Name != "EHR" {
		t.Errorf("list: %+v", keys)
	}
}

// TestCommitAPIIdempotent commits once per Idempotency-Key: a second
// commit with the key stores nothing and returns the kept answer.
func TestCommitAPIIdempotent(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	commit := func(key string) (*Receipt, *IdempotentRecord) {
		d := db.NewDraft()
		defer d.Discard()
		w, _ := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
		w.Write([]byte("hi"))
		w.Close()
		r, rec, err := d.CommitAPI(ctx, &securetextd.Message{Sender: "a@clinic.example"}, []securetextd.Phone{"+12125550123"},
			&Idempotency{Key: key, Fingerprint: [32]byte{1}, Response: func(r *Receipt) (int, []byte, error) {
				return 201, []byte(`{"id":1}`), nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		return r, rec
	}
	if r, rec := commit("k1"); r == nil || rec != nil {
		t.Fatalf("first commit: %v %v", r, rec)
	}
	r, rec := commit("k1")
	if r != nil || rec == nil || rec.Status != 201 || string(rec.Body) != `{"id":1}` || !rec.Matches([32]byte{1}) {
		t.Fatalf("retry: %v %+v", r, rec)
	}
	if n, _ := db.CountMessages(ctx); n != 1 {
		t.Errorf("%d messages after a retry", n)
	}
	if r, _ := commit("k2"); r == nil {
		t.Error("another key did not commit")
	}
	if rec, err := db.IdempotentResponse(ctx, "A@clinic.example", "k1"); err != nil || rec.Status != 201 {
		t.Errorf("lookup: %+v %v", rec, err)
	}
}
