package store

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/pgtest"
)

// TestNothingInClear commits a message whose every secret carries a marker,
// and looks for the markers in the raw bytes of the database files, while
// open and after Close.
func TestNothingInClear(t *testing.T) {
	opts := testOptions(t)
	db, err := OpenWith(t.Context(), opts, testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	files := storeFiles(t, db)
	markers := []string{
		"SUBJECT-MARKER-4b1d",
		"BODY-MARKER-77aa",
		"HTML-MARKER-9e0f",
		"FILENAME-MARKER-c3c3.pdf",
		"ATTACHMENT-MARKER-5151",
		"DISPLAY-NAME-MARKER-0d0d",
		"MESSAGE-ID-MARKER-e1e1",
		"CONTENT-ID-MARKER-f2f2",
	}
	attachment := bytes.Repeat([]byte("ATTACHMENT-MARKER-5151 "), 40000) // about 900 KiB
	commitTest(t, db, &securetextd.Message{
		Sender:     "a@example.org",
		SenderName: "DISPLAY-NAME-MARKER-0d0d",
		Subject:    "SUBJECT-MARKER-4b1d",
		MessageID:  "MESSAGE-ID-MARKER-e1e1",
	}, []testPart{
		{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, []byte("Hello BODY-MARKER-77aa")},
		{securetextd.Part{Kind: securetextd.PartHTML, ContentType: "text/html"}, []byte("<b>HTML-MARKER-9e0f</b>")},
		{securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/pdf", Filename: "FILENAME-MARKER-c3c3.pdf"}, attachment},
		{securetextd.Part{Kind: securetextd.PartInline, ContentType: "image/png", ContentID: "CONTENT-ID-MARKER-f2f2"}, []byte("png")},
	}, "+12125550123")
	// A big one too, through the pending path, then discarded.
	d := db.NewDraft()
	w, _ := d.CreatePart(securetextd.Part{Kind: securetextd.PartAttachment})
	w.Write(bytes.Repeat(attachment, 3))
	w.Close()
	d.Discard()

	ctx := t.Context()
	j, err := db.NextJob(ctx, db.Now(), securetextd.JobKindText)
	if err != nil {
		t.Fatal(err)
	}
	var tj securetextd.TextJob
	if err := json.Unmarshal(j.Payload, &tj); err != nil {
		t.Fatal(err)
	}
	markers = append(markers, tj.Token)
	if err := db.CreateSender(ctx, "b@example.org", "PASSWORD-MARKER-1234"); err != nil {
		t.Fatal(err)
	}
	markers = append(markers, "PASSWORD-MARKER-1234")

	// The recipient's side: the account with its recovery address, a
	// reset email, a session, and a reply with a file.
	const phone = securetextd.Phone("+12125550123")
	if err := db.CreateRecipient(ctx, phone, "RECIPIENT-PASSWORD-MARKER-42", "RECOVERY-MARKER-8a8a@example.org"); err != nil {
		t.Fatal(err)
	}
	// Its confirmation, a new address waiting for its own, and a sign-in.
	for _, m := range mailJobs(t, db, securetextd.JobKindConfirm) {
		markers = append(markers, m.Token)
		if _, err := db.ConfirmRecoveryAddress(ctx, m.Token); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SetRecoveryAddress(ctx, phone, "PENDING-MARKER-5e5e@example.org"); err != nil {
		t.Fatal(err)
	}
	for _, m := range mailJobs(t, db, securetextd.JobKindConfirm) {
		markers = append(markers, m.Token)
	}
	if err := db.RecordSignIn(ctx, phone, securetextd.SignIn{Device: "DEVICE-MARKER-7f7f", Network: "NETWORK-MARKER-9a9a"}); err != nil {
		t.Fatal(err)
	}
	markers = append(markers, "PENDING-MARKER-5e5e", "DEVICE-MARKER-7f7f", "NETWORK-MARKER-9a9a")
	if err := db.RequestPasswordReset(ctx, phone, time.Hour); err != nil {
		t.Fatal(err)
	}
	j, err = db.NextJob(ctx, db.Now(), securetextd.JobKindReset)
	if err != nil {
		t.Fatal(err)
	}
	var mj securetextd.MailJob
	if err := json.Unmarshal(j.Payload, &mj); err != nil {
		t.Fatal(err)
	}
	session, err := db.CreateSession(ctx, phone)
	if err != nil {
		t.Fatal(err)
	}
	c, err := db.ConversationByToken(ctx, tj.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SaveReply(ctx, c.ID, replyParts(
		textPart("REPLY-MARKER-3c3c"),
		replyPart{securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "image/jpeg", Filename: "REPLY-FILENAME-MARKER.jpg"},
			bytes.NewReader(bytes.Repeat([]byte("REPLY-FILE-MARKER-6d6d "), 60000))}, // about 1.3 MiB: written out early
	)); err != nil {
		t.Fatal(err)
	}
	markers = append(markers, "RECIPIENT-PASSWORD-MARKER-42", "RECOVERY-MARKER-8a8a", mj.Token, session,
		"REPLY-MARKER-3c3c", "REPLY-FILENAME-MARKER", "REPLY-FILE-MARKER-6d6d")

	scan := func(when string) {
		t.Helper()
		plain := false
		paths := files()
		if len(paths) == 0 {
			t.Fatalf("%s: no database file", when)
		}
		for _, path := range paths {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range markers {
				if bytes.Contains(raw, []byte(m)) {
					t.Errorf("%s: %s contains %q in clear", when, path, m)
				}
			}
			// The sender's address is kept in clear; make sure the
			// scan would have found something.
			plain = plain || bytes.Contains(raw, []byte("a@example.org"))
		}
		if !plain && when == "after Close" {
			t.Errorf("%s: the scan does not see plain columns", when)
		}
	}
	scan("while open")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	scan("after Close")
}

// storeFiles returns a function that lists the files holding db's store
// as it is then: SQLite's database file and its WAL; on PostgreSQL, the
// database's own directory and the server's WAL, once a checkpoint has
// written out what the server held in memory. (PostgreSQL compresses a
// long text value that compresses well, which would hide it from a scan;
// the store's sealed values don't compress, and its chunks are stored
// uncompressed.)
func storeFiles(t *testing.T, db *DB) func() []string {
	t.Helper()
	if db.Engine() == SQLite {
		return func() []string {
			paths, _ := filepath.Glob(db.path + "*")
			return paths
		}
	}
	var oid int64
	if err := db.read.QueryRow(`SELECT oid FROM pg_database WHERE datname = current_database()`).Scan(&oid); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(pgtest.Shared(t).Dir, "data")
	return func() []string {
		tamper(t, db, `CHECKPOINT`)
		base, _ := filepath.Glob(filepath.Join(data, "base", strconv.FormatInt(oid, 10), "*"))
		wal, _ := filepath.Glob(filepath.Join(data, "pg_wal", "0*"))
		return append(base, wal...)
	}
}
