package store

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/clamd"
	"github.com/securetextd/securetextd/internal/clamdtest"
)

// scanningDB opens a store that scans with the clamd at addr.
func scanningDB(t *testing.T, addr string, failOpen bool) *DB {
	t.Helper()
	db := openTestDB(t)
	c, err := clamd.New(addr, 10*time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Scanner, db.ScanFailOpen = c, failOpen
	return db
}

// writePart writes content as one part of d, in 32 KiB writes, and
// returns the first error.
func writePart(d *Draft, p securetextd.Part, content io.Reader) error {
	w, err := d.CreatePart(p)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(w, content, make([]byte, 32<<10)); err != nil {
		return err
	}
	return w.Close()
}

// TestScanFinding: a message whose second part is the EICAR file, after a
// clean 3 MiB part already written out as pending blobs, fails at that
// part with a MalwareError naming the file and what was found; it cannot
// be committed, and Discard leaves no message, blob or chunk behind.
func TestScanFinding(t *testing.T) {
	db := scanningDB(t, clamdtest.Shared(t).Addr(), false)
	d := db.NewDraft()
	defer d.Discard()
	if err := writePart(d, securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/pdf", Filename: "results.pdf"},
		bytes.NewReader(randomBytes(1, 3<<20))); err != nil {
		t.Fatal(err)
	}
	err := writePart(d, securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/octet-stream", Filename: "eicar.com"},
		bytes.NewReader(clamdtest.EICAR()))
	var found *MalwareError
	if !errors.As(err, &found) {
		t.Fatalf("want a MalwareError, got %v", err)
	}
	if found.Part != 1 || found.Filename != "eicar.com" || found.Found != clamdtest.EICARName {
		t.Errorf("finding %+v", found)
	}
	if securetextd.ErrorCode(err) != securetextd.EMALWARE {
		t.Errorf("code %q", securetextd.ErrorCode(err))
	}
	if msg, want := securetextd.ErrorMessage(err), `The file "eicar.com" contains malware (`+clamdtest.EICARName+`).`; msg != want {
		t.Errorf("message %q, want %q", msg, want)
	}
	if strings.Contains(err.Error(), "eicar.com") {
		t.Errorf("the error's text, which a log may hold, names the file: %v", err)
	}
	if count(t, db, "chunks") == 0 {
		t.Fatal("the clean part was not written out before the finding: the test proves less than it says")
	}
	if _, err := d.Commit(t.Context(), &securetextd.Message{Sender: "dr@clinic.example"}, []securetextd.Phone{"+12125550123"}); securetextd.ErrorCode(err) != securetextd.EMALWARE {
		t.Fatalf("Commit after a finding: %v", err)
	}
	if err := d.Discard(); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"messages", "parts", "blobs", "chunks", "conversations", "jobs"} {
		if n := count(t, db, table); n != 0 {
			t.Errorf("%d rows in %s after a finding", n, table)
		}
	}
}

// TestScanClean: clean parts and the hash-matched sample. The sample cut
// by one byte is clean (a hash signature matches whole files only), so
// its finding proves that the scanner got every byte of the part.
func TestScanClean(t *testing.T) {
	db := scanningDB(t, clamdtest.Shared(t).Addr(), false)
	commitTest(t, db, &securetextd.Message{Sender: "dr@clinic.example"}, []testPart{
		{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, []byte("Your results are normal.")},
		{securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/octet-stream", Filename: "almost.bin"}, clamdtest.Sample()[1:]},
	}, "+12125550123")

	d := db.NewDraft()
	defer d.Discard()
	err := writePart(d, securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, bytes.NewReader(clamdtest.Sample()))
	var found *MalwareError
	if !errors.As(err, &found) || found.Found != clamdtest.SampleName || found.Filename != "" || found.What() != "the message text" {
		t.Fatalf("the sample as a body: %v", err)
	}
}

// TestScanUnavailable: with clamd stopped, a draft fails with EUNSCANNED
// and stores nothing; with ScanFailOpen it is committed, and the audit
// trail says it went unscanned.
func TestScanUnavailable(t *testing.T) {
	srv := clamdtest.Own(t)
	srv.Halt()

	db := scanningDB(t, srv.Addr(), false)
	d := db.NewDraft()
	err := writePart(d, securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, bytes.NewReader([]byte("hello")))
	if securetextd.ErrorCode(err) != securetextd.EUNSCANNED {
		t.Fatalf("want EUNSCANNED, got %v", err)
	}
	if _, err := d.Commit(t.Context(), &securetextd.Message{Sender: "dr@clinic.example"}, []securetextd.Phone{"+12125550123"}); securetextd.ErrorCode(err) != securetextd.EUNSCANNED {
		t.Fatalf("Commit: %v", err)
	}
	d.Discard()
	if n := count(t, db, "messages"); n != 0 {
		t.Fatalf("%d messages stored unscanned", n)
	}

	open := scanningDB(t, srv.Addr(), true)
	r := commitTest(t, open, &securetextd.Message{Sender: "dr@clinic.example"}, []testPart{
		{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, []byte("hello")},
		{securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/octet-stream", Filename: "eicar.com"}, clamdtest.EICAR()},
	}, "+12125550123")
	var ev *securetextd.AuditEvent
	open.AuditTrail(t.Context(), time.Time{}, func(e securetextd.AuditEvent) error {
		if e.Event == securetextd.AuditMessageUnscanned {
			ev = &e
		}
		return nil
	})
	if ev == nil || ev.MessageID != r.MessageID || ev.Detail != "2 of 2 parts stored unscanned: the malware scanner failed and scan.fail_open is on" {
		t.Fatalf("audit event %+v", ev)
	}
}
