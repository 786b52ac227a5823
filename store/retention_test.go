package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// TestPurgeShredsChunks: after the retention period the content of a
// message is gone from the tables and, on SQLite, from the database file
// and its WAL too; what the audit trail needs stays.
func TestPurgeShredsChunks(t *testing.T) {
	db, clk := lifecycleDB(t, Policy{Retention: 720 * time.Hour, AccessExpiry: 72 * time.Hour})
	ctx := t.Context()
	parts := []testPart{
		{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, []byte("Your results are normal.")},
		{securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/pdf", Filename: "results.pdf"}, randomBytes(7, 700<<10)},
	}
	old := commitTest(t, db, &securetextd.Message{Sender: drWho, Subject: "old", Auth: "smtp-auth"}, parts, patient)
	clk.advance(700 * time.Hour)
	young := commitTest(t, db, &securetextd.Message{Sender: drWho, Subject: "young", Auth: "smtp-auth"}, parts[:1], patient)

	// The ciphertext of the old message, as the database holds it: its
	// chunks, and its headers (the only wrapped copy of each file key).
	var chunks [][]byte
	rows, err := db.read.Query(`
		SELECT c.data FROM chunks c JOIN parts p ON p.blob_id = c.blob_id WHERE p.message_id = ?
		UNION ALL SELECT b.header FROM blobs b JOIN parts p ON p.blob_id = b.id WHERE p.message_id = ?`, old.MessageID, old.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var b []byte
		rows.Scan(&b)
		chunks = append(chunks, b)
	}
	rows.Close()
	if len(chunks) < 5 {
		t.Fatalf("%d chunks; want a file of several", len(chunks))
	}
	var manifest []byte
	db.read.QueryRow(`SELECT manifest FROM messages WHERE id = ?`, old.MessageID).Scan(&manifest)
	samples := [][]byte{manifest[len(manifest)-48:]}
	for _, c := range chunks {
		if len(c) <= 64 {
			samples = append(samples, c)
			continue
		}
		for _, off := range []int{0, len(c) / 2, len(c) - 64} {
			samples = append(samples, c[off:off+64])
		}
	}
	// The tables, as any reader sees them, and on SQLite the database
	// file and its WAL, byte for byte. PostgreSQL keeps a deleted row in
	// its files until VACUUM reuses the space, and does not zero it:
	// there the promise is the tables'.
	found := func(blobs [][]byte) (n int) {
		for _, b := range blobs {
			for _, s := range samples {
				if bytes.Contains(b, s) {
					n++
				}
			}
		}
		return n
	}
	inTables := func(db *DB) int {
		t.Helper()
		var rows [][]byte
		q, err := db.read.Query(`SELECT data FROM chunks UNION ALL SELECT header FROM blobs WHERE header IS NOT NULL
			UNION ALL SELECT manifest FROM messages`)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		for q.Next() {
			var b []byte
			if err := q.Scan(&b); err != nil {
				t.Fatal(err)
			}
			rows = append(rows, b)
		}
		if err := q.Err(); err != nil {
			t.Fatal(err)
		}
		return found(rows)
	}
	inFiles := func() int {
		t.Helper()
		if db.Engine() != SQLite {
			return 0
		}
		files, _ := filepath.Glob(db.path + "*")
		var contents [][]byte
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			contents = append(contents, b)
		}
		return found(contents)
	}
	if inTables(db) == 0 || (db.Engine() == SQLite && inFiles() == 0) {
		t.Fatal("the ciphertext is not in the database before the purge: the scan proves nothing")
	}

	clk.advance(21 * time.Hour) // 721h after the old message, 21h after the young one
	res, err := db.Purge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != 1 || !res.Checkpointed {
		t.Fatalf("purge: %+v", res)
	}
	if n := inTables(db); n != 0 {
		t.Errorf("%d pieces of the purged ciphertext are still in the tables", n)
	}
	if n := inFiles(); n != 0 {
		t.Errorf("%d pieces of the purged ciphertext are still in the database files", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := inFiles(); n != 0 {
		t.Errorf("after close: %d pieces of the purged ciphertext are in the files", n)
	}
	db, err = OpenWith(ctx, optionsOf(db), db.keys)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := inTables(db); n != 0 {
		t.Errorf("after reopening: %d pieces of the purged ciphertext are in the tables", n)
	}
	db.Now, db.Policy = clk.now, Policy{Retention: 720 * time.Hour}

	m, err := db.Message(ctx, old.MessageID)
	if err != nil {
		t.Fatalf("the purged message's row: %v", err)
	}
	if m.Subject != "" || len(m.Parts) != 0 || m.Sender != drWho {
		t.Errorf("purged message %+v", m)
	}
	if _, _, err := db.OpenPart(ctx, old.MessageID, 1); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("OpenPart of a purged part: %v", err)
	}
	if m, err := db.Message(ctx, young.MessageID); err != nil || m.Subject != "young" || len(m.Parts) != 1 {
		t.Errorf("the young message was touched: %+v %v", m, err)
	}
	if n := countEvent(t, db, securetextd.AuditPurged); n != 1 {
		t.Errorf("%d purge events", n)
	}
	sent, _ := db.SentMessages(ctx, "", time.Time{})
	if len(sent) != 2 || sent[0].State != securetextd.StatePurged {
		t.Errorf("report after purge: %+v", sent)
	}
	if res, _ := db.Purge(ctx); res.Messages != 0 {
		t.Errorf("a second purge purged %d", res.Messages)
	}
}

// TestPurgeKeeps: a zero retention keeps everything.
func TestPurgeKeeps(t *testing.T) {
	db, clk := lifecycleDB(t, Policy{})
	commitTest(t, db, &securetextd.Message{Sender: drWho, Subject: "kept"}, []testPart{{securetextd.Part{Kind: securetextd.PartText}, []byte("x")}}, patient)
	clk.advance(100 * 365 * 24 * time.Hour)
	if res, err := db.Purge(t.Context()); err != nil || res.Messages != 0 {
		t.Errorf("purge with no retention: %+v %v", res, err)
	}
}
