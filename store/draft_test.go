package store

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// randomBytes returns n reproducible random bytes.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	r.Read(b)
	return b
}

func TestRoundTrip(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	received := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	parts := []testPart{
		{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"},
			[]byte("Your results are in.\nAll normal.\n")},
		{securetextd.Part{Kind: securetextd.PartHTML, ContentType: "text/html"},
			[]byte("<p>Your results are in.</p><p><img src=\"cid:logo@x\"></p>")},
		{securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/pdf", Filename: "résultats.pdf"},
			randomBytes(1, 3<<20+12345)},
		{securetextd.Part{Kind: securetextd.PartInline, ContentType: "image/png", ContentID: "logo@x", Damaged: true},
			nil},
	}
	m := &securetextd.Message{
		Sender:     "dr.who@clinic.example",
		SenderName: "Dr Who",
		Subject:    "Lab results",
		MessageID:  "abc@clinic.example",
		References: []string{"prev@clinic.example"},
		Received:   received,
		Auth:       "smtp-auth",
	}
	phones := []securetextd.Phone{"+12125550123", "+447911123456"}

	// Write by hand to watch the pending blobs appear.
	wake := db.Wake()
	d := db.NewDraft()
	for i, p := range parts {
		w, err := d.CreatePart(p.Part)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.CreatePart(p.Part); err == nil {
			t.Fatalf("part %d: CreatePart while a part is open worked", i)
		}
		if _, err := io.CopyBuffer(w, bytes.NewReader(p.content), make([]byte, 7777)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	var pending int
	db.read.QueryRow(`SELECT count(*) FROM blobs WHERE state = 'pending'`).Scan(&pending)
	if pending == 0 {
		t.Fatal("a 3 MiB attachment was not written out as a pending blob before Commit")
	}
	r, err := d.Commit(ctx, m, phones)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Discard(); err != nil {
		t.Fatalf("Discard after Commit: %v", err)
	}
	if _, err := d.Commit(ctx, m, phones); err == nil {
		t.Fatal("second Commit worked")
	}
	db.read.QueryRow(`SELECT count(*) FROM blobs WHERE state = 'pending'`).Scan(&pending)
	if pending != 0 {
		t.Errorf("%d blobs still pending after Commit", pending)
	}

	// What Commit filled in.
	if m.ID != r.MessageID || m.ID == 0 {
		t.Errorf("m.ID = %d, receipt %d", m.ID, r.MessageID)
	}
	if len(m.Parts) != len(parts) {
		t.Fatalf("m.Parts has %d parts", len(m.Parts))
	}
	for i, p := range parts {
		want := p.Part
		want.Size = int64(len(p.content))
		if m.Parts[i] != want {
			t.Errorf("m.Parts[%d] = %+v, want %+v", i, m.Parts[i], want)
		}
	}
	if len(r.Conversations) != 2 {
		t.Fatalf("%d conversations", len(r.Conversations))
	}
	for i, c := range r.Conversations {
		if c.Phone != phones[i] || c.Sender != m.Sender || c.ID == 0 || c.Created.IsZero() {
			t.Errorf("conversation %d: %+v", i, c)
		}
	}
	if r.Conversations[0].ID == r.Conversations[1].ID {
		t.Error("both phones share a conversation")
	}
	select {
	case <-wake:
	default:
		t.Error("Commit did not wake the outbox")
	}

	// Two jobs, one per phone, each with a token that opens its own
	// conversation.
	jobs := drainJobs(t, db)
	if len(jobs) != 2 {
		t.Fatalf("%d jobs, want 2", len(jobs))
	}
	for i, j := range jobs {
		c := r.Conversations[i]
		// The first links' ids take one byte: 17 bytes, 23 characters.
		if j.To != c.Phone || j.ConversationID != c.ID || j.MessageID != m.ID || len(j.Token) != 23 {
			t.Errorf("job %d: %+v, conversation %+v", i, j, c)
		}
		got, err := db.ConversationByToken(ctx, j.Token)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != c.ID || got.Phone != c.Phone || got.Sender != c.Sender ||
			!got.Created.Equal(c.Created) || !got.LastActivity.Equal(c.LastActivity) {
			t.Errorf("ConversationByToken = %+v, want %+v", got, c)
		}
	}

	// The message, read back.
	got, err := db.Message(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkMessage(t, got, m)
	for _, c := range r.Conversations {
		msgs, err := db.ConversationMessages(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 1 {
			t.Fatalf("conversation %d has %d messages", c.ID, len(msgs))
		}
		checkMessage(t, msgs[0], m)
	}

	// The content, byte-exact, whole and by random ranges.
	rng := rand.New(rand.NewPCG(1, 2))
	for i, p := range parts {
		ra, size, err := db.OpenPart(ctx, m.ID, i)
		if err != nil {
			t.Fatal(err)
		}
		if size != int64(len(p.content)) {
			t.Fatalf("part %d: size %d, want %d", i, size, len(p.content))
		}
		all, err := io.ReadAll(io.NewSectionReader(ra, 0, size))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(all, p.content) {
			t.Fatalf("part %d: content differs", i)
		}
		for range 50 {
			if size == 0 {
				break
			}
			off := rng.Int64N(size)
			n := rng.Int64N(min(size-off, 300<<10) + 1)
			buf := make([]byte, n)
			k, err := ra.ReadAt(buf, off)
			if k != int(n) || (err != nil && err != io.EOF) {
				t.Fatalf("part %d: ReadAt(%d bytes at %d) = %d, %v", i, n, off, k, err)
			}
			if !bytes.Equal(buf, p.content[off:off+n]) {
				t.Fatalf("part %d: ReadAt(%d bytes at %d) differs", i, n, off)
			}
		}
		// Past the end.
		if k, err := ra.ReadAt(make([]byte, 10), size); k != 0 || err != io.EOF {
			t.Errorf("part %d: ReadAt past the end = %d, %v", i, k, err)
		}
	}

	if _, _, err := db.OpenPart(ctx, m.ID, len(parts)); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("OpenPart of a missing part: %v", err)
	}
	if _, err := db.Message(ctx, m.ID+1); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("Message of a missing message: %v", err)
	}
	if _, err := db.ConversationMessages(ctx, 999); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("ConversationMessages of a missing conversation: %v", err)
	}
}

// checkMessage compares a message read back with the one committed.
func checkMessage(t *testing.T, got, want *securetextd.Message) {
	t.Helper()
	if got.ID != want.ID || got.Direction != securetextd.Inbound || got.Sender != want.Sender ||
		got.SenderName != want.SenderName || got.Subject != want.Subject ||
		got.MessageID != want.MessageID || strings.Join(got.References, " ") != strings.Join(want.References, " ") ||
		!got.Received.Equal(want.Received) || got.Auth != want.Auth {
		t.Errorf("message read back:\n%+v\nwant\n%+v", got, want)
	}
	if len(got.Parts) != len(want.Parts) {
		t.Fatalf("%d parts read back, want %d", len(got.Parts), len(want.Parts))
	}
	for i := range got.Parts {
		if got.Parts[i] != want.Parts[i] {
			t.Errorf("part %d read back: %+v, want %+v", i, got.Parts[i], want.Parts[i])
		}
	}
}

func TestConversationMessagesOrder(t *testing.T) {
	db := openTestDB(t)
	phone := securetextd.Phone("+12125550123")
	first := &securetextd.Message{Sender: "a@example.org", Subject: "first", Received: time.Unix(2000, 0)}
	r := commitTest(t, db, first, nil, phone)
	// A later message in the same conversation (as a reply will be).
	second := &securetextd.Message{Sender: "a@example.org", Subject: "second", Received: time.Unix(1000, 0)}
	commitTest(t, db, second, nil, phone)
	if _, err := db.write.Exec(`INSERT INTO conversation_messages VALUES (?, ?)`, r.Conversations[0].ID, second.ID); err != nil {
		t.Fatal(err)
	}
	msgs, err := db.ConversationMessages(t.Context(), r.Conversations[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Subject != "second" || msgs[1].Subject != "first" {
		t.Errorf("messages not oldest first: %v", msgs)
	}
	if len(msgs[0].Parts) != 0 {
		t.Errorf("a message without parts has %d parts", len(msgs[0].Parts))
	}
}

func TestCommitValidation(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	m := func() *securetextd.Message { return &securetextd.Message{Sender: "a@example.org"} }
	for _, tt := range []struct {
		name   string
		m      *securetextd.Message
		phones []securetextd.Phone
	}{
		{"no phone", m(), nil},
		{"not E.164", m(), []securetextd.Phone{"2125550123"}},
		{"letters", m(), []securetextd.Phone{"+1212555O123"}},
		{"no sender", &securetextd.Message{}, []securetextd.Phone{"+12125550123"}},
		{"bad direction", &securetextd.Message{Sender: "a@example.org", Direction: 7}, []securetextd.Phone{"+12125550123"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := db.NewDraft()
			defer d.Discard()
			_, err := d.Commit(ctx, tt.m, tt.phones)
			wantCode(t, err, securetextd.EINVALID)
		})
	}
	if n := count(t, db, "messages"); n != 0 {
		t.Errorf("%d messages stored", n)
	}

	// A phone given twice gets one conversation and one text.
	r := commitTest(t, db, m(), nil, "+12125550123", "+12125550123")
	if len(r.Conversations) != 1 || len(drainJobs(t, db)) != 1 {
		t.Errorf("repeated phone: %d conversations", len(r.Conversations))
	}

	// Commit with a part still open.
	d := db.NewDraft()
	defer d.Discard()
	if _, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartText}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Commit(ctx, m(), []securetextd.Phone{"+12125550123"}); err == nil {
		t.Error("Commit with an open part worked")
	}
	if _, err := db.NewDraft().CreatePart(securetextd.Part{}); err == nil {
		t.Error("CreatePart without a kind worked")
	}
}

// writeBig streams n random bytes into a new attachment of d, left open if
// open is set.
func writeBig(t *testing.T, d *Draft, n int, open bool) io.WriteCloser {
	t.Helper()
	w, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "video/mp4"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(randomBytes(3, n)); err != nil {
		t.Fatal(err)
	}
	if !open {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func TestDiscard(t *testing.T) {
	db := openTestDB(t)
	d := db.NewDraft()
	writeBig(t, d, 3<<20, false)
	w := writeBig(t, d, 2<<20, true) // discarded while still open
	if count(t, db, "chunks") == 0 {
		t.Fatal("nothing was written out before Discard")
	}
	if err := d.Discard(); err != nil {
		t.Fatal(err)
	}
	if err := d.Discard(); err != nil {
		t.Fatalf("second Discard: %v", err)
	}
	if n, b := count(t, db, "chunks"), count(t, db, "blobs"); n != 0 || b != 0 {
		t.Errorf("after Discard: %d chunks, %d blobs", n, b)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write to a part of a discarded draft worked")
	}
	if _, err := d.Commit(t.Context(), &securetextd.Message{Sender: "a@example.org"}, []securetextd.Phone{"+12125550123"}); err == nil {
		t.Error("Commit after Discard worked")
	}
}

// TestDraftWriterFails makes the draft's writer fail half-way through a
// large part (a trigger refuses its fourth chunk, as a full disk would):
// the failure reaches the caller, at the next batch or at Commit, nothing
// is committed, and Discard removes what was written before.
func TestDraftWriterFails(t *testing.T) {
	db := openTestDB(t)
	tamper(t, db, onEngine(db, []string{
		`CREATE TRIGGER refuse_chunk BEFORE INSERT ON chunks
		 WHEN NEW.seq >= 3 BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END`,
	}, []string{
		`CREATE FUNCTION refuse_chunk() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN
			IF NEW.seq >= 3 THEN RAISE EXCEPTION 'disk full (test)'; END IF;
			RETURN NEW;
		 END $$`,
		`CREATE TRIGGER refuse_chunk BEFORE INSERT ON chunks FOR EACH ROW EXECUTE FUNCTION refuse_chunk()`,
	})...)
	d := db.NewDraft()
	w, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "video/mp4"})
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(5, 4<<20)
	var werr error
	for off := 0; off < len(data) && werr == nil; off += 64 << 10 {
		_, werr = w.Write(data[off : off+64<<10])
	}
	if werr == nil {
		werr = w.Close()
	}
	_, cerr := d.Commit(t.Context(), &securetextd.Message{Sender: "a@example.org"}, []securetextd.Phone{"+12125550123"})
	if cerr == nil {
		t.Fatal("Commit worked although the writer failed")
	}
	for _, err := range []error{werr, cerr} {
		if err != nil && !strings.Contains(err.Error(), "disk full (test)") {
			t.Errorf("error %q does not say why", err)
		}
	}
	if n := count(t, db, "messages"); n != 0 {
		t.Errorf("%d messages stored", n)
	}
	if count(t, db, "chunks") == 0 {
		t.Error("nothing was written before the failure: the test does not test it")
	}
	if err := d.Discard(); err != nil {
		t.Fatal(err)
	}
	if n, b := count(t, db, "chunks"), count(t, db, "blobs"); n != 0 || b != 0 {
		t.Errorf("after Discard: %d chunks, %d blobs", n, b)
	}
}

func TestSweepOrphans(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return start }

	// A committed message, whose blobs were pending for a while.
	commitTest(t, db, &securetextd.Message{Sender: "a@example.org"},
		[]testPart{{securetextd.Part{Kind: securetextd.PartAttachment}, randomBytes(4, 2<<20)}}, "+12125550123")
	committed := count(t, db, "chunks")

	// A draft abandoned half-way, as by a crash: what its writer had.
	abandoned := db.NewDraft()
	writeBig(t, abandoned, 3<<20, true)
	abandoned.waitWriter()
	if count(t, db, "chunks") == committed {
		t.Fatal("nothing was written out")
	}

	if n, err := db.SweepOrphans(ctx, start); err != nil || n != 0 {
		t.Fatalf("SweepOrphans(created time) = %d, %v; want 0: only older blobs go", n, err)
	}
	n, err := db.SweepOrphans(ctx, start.Add(time.Second))
	if err != nil || n != 1 {
		t.Fatalf("SweepOrphans = %d, %v; want 1", n, err)
	}
	if got := count(t, db, "chunks"); got != committed {
		t.Errorf("%d chunks left, want the committed message's %d", got, committed)
	}
	var pending int
	db.read.QueryRow(`SELECT count(*) FROM blobs WHERE state = 'pending'`).Scan(&pending)
	if pending != 0 {
		t.Errorf("%d pending blobs left", pending)
	}

	// The abandoned draft cannot come back to life.
	abandoned.open.Close()
	if _, err := abandoned.Commit(ctx, &securetextd.Message{Sender: "a@example.org"}, []securetextd.Phone{"+12125550123"}); err == nil {
		t.Error("Commit of a swept draft worked")
	}
	abandoned.Discard()
	if got := count(t, db, "chunks"); got != committed {
		t.Errorf("%d chunks after the failed commit, want %d", got, committed)
	}
}

func TestConversationByToken(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	r := commitTest(t, db, &securetextd.Message{Sender: "a@example.org"}, nil, "+12125550123")
	jobs := drainJobs(t, db)
	token := jobs[0].Token
	c, err := db.ConversationByToken(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != r.Conversations[0].ID {
		t.Errorf("conversation %d, want %d", c.ID, r.Conversations[0].ID)
	}

	altered := []byte(token)
	altered[5] ^= 1
	for _, bad := range []string{
		"", "x", string(altered), token[:21], token + "A", strings.ToUpper(token),
		"AAAAAAAAAAAAAAAAAAAAAA", "'; DROP TABLE links; --", strings.Repeat("a", 10000),
	} {
		if bad == token {
			continue
		}
		_, err := db.ConversationByToken(ctx, bad)
		wantCode(t, err, securetextd.ENOTFOUND)
	}
}

func BenchmarkCommitSmall(b *testing.B) {
	db := openTestDB(b)
	ctx := context.Background()
	body := randomBytes(5, 1<<10)
	phones := []securetextd.Phone{"+12125550123"}
	b.ReportAllocs()
	for b.Loop() {
		d := db.NewDraft()
		w, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
		if err != nil {
			b.Fatal(err)
		}
		w.Write(body)
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		m := &securetextd.Message{Sender: "a@example.org", Subject: "Results", Auth: "smtp-auth"}
		if _, err := d.Commit(ctx, m, phones); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSmallDraftWritesNothingEarly checks that a small message costs one
// write transaction: nothing reaches the database before Commit.
func TestSmallDraftWritesNothingEarly(t *testing.T) {
	db := openTestDB(t)
	d := db.NewDraft()
	defer d.Discard()
	for _, kind := range []securetextd.PartKind{securetextd.PartText, securetextd.PartHTML, securetextd.PartAttachment} {
		w, err := d.CreatePart(securetextd.Part{Kind: kind})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(randomBytes(7, 200<<10))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, db, "blobs"); n != 0 {
		t.Errorf("%d blobs written before Commit", n)
	}
	if _, err := d.Commit(t.Context(), &securetextd.Message{Sender: "a@example.org"}, []securetextd.Phone{"+12125550123"}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "blobs"); n != 3 {
		t.Errorf("%d blobs after Commit, want 3", n)
	}
}

// TestMarkDamaged checks that a part found damaged while it was written
// (after CreatePart) is stored as damaged.
func TestMarkDamaged(t *testing.T) {
	db := openTestDB(t)
	d := db.NewDraft()
	w, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/pdf", Filename: "cut.pdf"})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "%PDF-1.7 cut sho")
	w.(interface{ MarkDamaged() }).MarkDamaged()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m := &securetextd.Message{Sender: "dr@clinic.example"}
	r, err := d.Commit(t.Context(), m, []securetextd.Phone{"+12125550123"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.Message(t.Context(), r.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Parts) != 1 || !got.Parts[0].Damaged || got.Parts[0].Size != 16 {
		t.Errorf("parts = %+v", got.Parts)
	}
}
