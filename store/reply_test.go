package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// replyPart is a part of a reply, with the reader of its content.
type replyPart struct {
	securetextd.Part
	r io.Reader
}

// replyParts yields parts as the portal would from a multipart form.
func replyParts(parts ...replyPart) iter.Seq2[securetextd.Part, io.Reader] {
	return func(yield func(securetextd.Part, io.Reader) bool) {
		for _, p := range parts {
			if !yield(p.Part, p.r) {
				return
			}
		}
	}
}

// textPart is a text/plain part holding s.
func textPart(s string) replyPart {
	return replyPart{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, strings.NewReader(s)}
}

// watchReader calls atEOF once, when r is read to its end.
type watchReader struct {
	r     io.Reader
	atEOF func()
}

func (w *watchReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err == io.EOF && w.atEOF != nil {
		w.atEOF()
		w.atEOF = nil
	}
	return n, err
}

// failingReader returns n bytes, then err.
type failingReader struct {
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	k := min(len(p), f.n)
	clear(p[:k])
	f.n -= k
	return k, nil
}

func TestSaveReply(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	now := t0
	db.Now = func() time.Time { return now }
	const phone = securetextd.Phone("+12125550123")
	r := commitTest(t, db, &securetextd.Message{Sender: "dr@clinic.example", Subject: "Results"}, nil, phone)
	drainJobs(t, db)
	conv := r.Conversations[0]

	now = t0.Add(time.Hour)
	text := "Thanks, see you on Tuesday."
	photo := randomBytes(8, 3<<20)
	pendingWhileStreaming := -1
	wake := db.Wake()
	m, err := db.SaveReply(ctx, conv.ID, replyParts(
		textPart(text),
		replyPart{
			securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "image/jpeg", Filename: "photo.jpg"},
			&watchReader{r: bytes.NewReader(photo), atEOF: func() {
				db.read.QueryRow(`SELECT count(*) FROM blobs WHERE state = 'pending'`).Scan(&pendingWhileStreaming)
			}},
		},
	))
	if err != nil {
		t.Fatal(err)
	}
	if pendingWhileStreaming < 1 {
		t.Errorf("%d pending blobs once the 3 MiB photo was read: it was not streamed out", pendingWhileStreaming)
	}
	select {
	case <-wake:
	default:
		t.Error("SaveReply did not wake the outbox")
	}

	if m.ID == 0 || m.Direction != securetextd.Reply || m.Sender != string(phone) || m.Auth != "portal" || !m.Received.Equal(now) {
		t.Errorf("reply %+v", m)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}@securetextd\.invalid$`).MatchString(m.MessageID) {
		t.Errorf("Message-ID %q", m.MessageID)
	}
	want := []securetextd.Part{
		{Kind: securetextd.PartText, ContentType: "text/plain", Size: int64(len(text))},
		{Kind: securetextd.PartAttachment, ContentType: "image/jpeg", Filename: "photo.jpg", Size: int64(len(photo))},
	}
	got, err := db.Message(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Direction != securetextd.Reply || got.Sender != string(phone) || got.MessageID != m.MessageID ||
		got.Auth != "portal" || len(got.Parts) != 2 || got.Parts[0] != want[0] || got.Parts[1] != want[1] {
		t.Errorf("reply read back: %+v", got)
	}
	ra, size, err := db.OpenPart(ctx, m.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(io.NewSectionReader(ra, 0, size))
	if err != nil || !bytes.Equal(back, photo) {
		t.Errorf("photo read back differs (%v)", err)
	}

	msgs, err := db.ConversationMessages(ctx, conv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[1].ID != m.ID {
		t.Errorf("conversation holds %d messages, the last %d; want the reply %d", len(msgs), msgs[len(msgs)-1].ID, m.ID)
	}
	c, err := db.Conversation(ctx, conv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !c.LastActivity.Equal(now) || !c.Created.Equal(t0) {
		t.Errorf("conversation after the reply: %+v", c)
	}

	// One email back to the sender, and no text to the phone.
	j, err := db.NextJob(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	var mj securetextd.MailJob
	if err := json.Unmarshal(j.Payload, &mj); err != nil {
		t.Fatal(err)
	}
	if j.Kind != securetextd.JobKindReply || mj != (securetextd.MailJob{MessageID: m.ID, ConversationID: conv.ID}) {
		t.Errorf("job %s %+v", j.Kind, mj)
	}
	if err := db.CompleteJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.NextDue(ctx); ok {
		t.Error("more than one job for a reply")
	}

	db.MessageIDHost = "gw.clinic.example"
	m2, err := db.SaveReply(ctx, conv.ID, replyParts(textPart("One more thing.")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(m2.MessageID, "@gw.clinic.example") || m2.MessageID == m.MessageID {
		t.Errorf("Message-ID %q", m2.MessageID)
	}
}

func TestSaveReplyRefuses(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	now := t0
	db.Now = func() time.Time { return now }
	r := commitTest(t, db, &securetextd.Message{Sender: "dr@clinic.example"}, nil, "+12125550123")
	drainJobs(t, db)
	conv := r.Conversations[0]
	now = t0.Add(time.Hour)

	// nothingStored checks that the database holds what it did before.
	nothingStored := func() {
		t.Helper()
		if n := count(t, db, "messages"); n != 1 {
			t.Errorf("%d messages, want the first only", n)
		}
		if n := count(t, db, "blobs"); n != 0 {
			t.Errorf("%d blobs left", n)
		}
		if n, err := db.SweepOrphans(ctx, now.Add(time.Second)); n != 0 || err != nil {
			t.Errorf("SweepOrphans = %d, %v: orphans were left", n, err)
		}
		if _, ok, _ := db.NextDue(ctx); ok {
			t.Error("a job was enqueued")
		}
		if c, _ := db.Conversation(ctx, conv.ID); !c.LastActivity.Equal(t0) {
			t.Errorf("last activity moved to %v", c.LastActivity)
		}
	}

	t.Run("reader error", func(t *testing.T) {
		tooBig := &http.MaxBytesError{Limit: 2 << 20}
		_, err := db.SaveReply(ctx, conv.ID, replyParts(
			textPart("Here is the scan."),
			replyPart{securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "image/jpeg"},
				&failingReader{n: 2<<20 + 1000, err: tooBig}},
			textPart("never read"),
		))
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) || mbe.Limit != 2<<20 {
			t.Fatalf("SaveReply = %v; want the reader's *http.MaxBytesError", err)
		}
		nothingStored()
	})

	t.Run("no parts", func(t *testing.T) {
		_, err := db.SaveReply(ctx, conv.ID, replyParts())
		wantCode(t, err, securetextd.EINVALID)
		nothingStored()
	})

	t.Run("bad part", func(t *testing.T) {
		_, err := db.SaveReply(ctx, conv.ID, replyParts(textPart("fine"), replyPart{securetextd.Part{}, strings.NewReader("x")}))
		wantCode(t, err, securetextd.EINVALID)
		nothingStored()
	})

	t.Run("unknown conversation", func(t *testing.T) {
		read := false
		_, err := db.SaveReply(ctx, 999, func(yield func(securetextd.Part, io.Reader) bool) {
			read = true
			yield(textPart("lost").Part, strings.NewReader("lost"))
		})
		wantCode(t, err, securetextd.ENOTFOUND)
		if read {
			t.Error("the parts were read for an unknown conversation")
		}
		nothingStored()
	})
}

func TestCommitTargets(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	now := t0
	db.Now = func() time.Time { return now }
	const (
		phoneA = securetextd.Phone("+12125550101")
		phoneB = securetextd.Phone("+12125550102")
		phoneC = securetextd.Phone("+12125550103")
		dr     = "dr@clinic.example"
		nurse  = "nurse@clinic.example"
	)
	r := commitTest(t, db, &securetextd.Message{Sender: dr, Subject: "Results"}, nil, phoneA, phoneB)
	convA := r.Conversations[0]
	commitTest(t, db, &securetextd.Message{Sender: nurse}, nil, phoneA)
	oldLinks := drainJobs(t, db)
	now = t0.Add(time.Hour)

	commit := func(m *securetextd.Message, targets ...Target) (*Receipt, error) {
		t.Helper()
		d := db.NewDraft()
		defer d.Discard()
		w, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "Follow-up")
		w.Close()
		return d.CommitTargets(ctx, m, targets)
	}

	t.Run("refused", func(t *testing.T) {
		for _, tt := range []struct {
			name    string
			sender  string
			targets []Target
		}{
			{"another sender's", nurse, []Target{{Phone: phoneA, ConversationID: convA.ID}}},
			{"another phone's", dr, []Target{{Phone: phoneB, ConversationID: convA.ID}}},
			{"unknown", dr, []Target{{Phone: phoneA, ConversationID: 999}}},
			{"negative", dr, []Target{{Phone: phoneA, ConversationID: -1}}},
			{"with a new one", dr, []Target{{Phone: phoneC, ConversationID: 0}, {Phone: phoneA, ConversationID: 999}}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := commit(&securetextd.Message{Sender: tt.sender}, tt.targets...)
				wantCode(t, err, securetextd.EINVALID)
				if securetextd.ErrorMessage(err) != "unknown conversation" {
					t.Errorf("message %q", securetextd.ErrorMessage(err))
				}
			})
		}
		if n, m := count(t, db, "messages"), count(t, db, "conversations"); n != 2 || m != 3 {
			t.Errorf("%d messages, %d conversations after refusals; want 2, 3", n, m)
		}
		if _, ok, _ := db.NextDue(ctx); ok {
			t.Error("a refused commit enqueued a job")
		}
		_, err := commit(&securetextd.Message{Sender: dr})
		wantCode(t, err, securetextd.EINVALID)
	})

	m := &securetextd.Message{Sender: "DR@clinic.example", Subject: "Re: Results"}
	rec, err := commit(m, Target{Phone: phoneA, ConversationID: convA.ID}, Target{Phone: phoneA, ConversationID: convA.ID}, Target{Phone: phoneC, ConversationID: 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Conversations) != 2 {
		t.Fatalf("%d conversations, want 2: a target given twice counts once", len(rec.Conversations))
	}
	joined, started := rec.Conversations[0], rec.Conversations[1]
	if joined.ID != convA.ID || joined.Phone != phoneA || joined.Sender != dr ||
		!joined.Created.Equal(t0) || !joined.LastActivity.Equal(now) {
		t.Errorf("joined conversation %+v", joined)
	}
	if started.ID == convA.ID || started.Phone != phoneC || !started.Created.Equal(now) {
		t.Errorf("new conversation %+v", started)
	}
	if c, _ := db.Conversation(ctx, convA.ID); !c.LastActivity.Equal(now) {
		t.Errorf("last activity %v, want renewed to %v", c.LastActivity, now)
	}
	msgs, err := db.ConversationMessages(ctx, convA.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[1].ID != m.ID || msgs[1].Subject != "Re: Results" {
		t.Errorf("conversation holds %d messages", len(msgs))
	}

	// A fresh link for each conversation, texted; the old link still works.
	jobs := drainJobs(t, db)
	if len(jobs) != 2 {
		t.Fatalf("%d texts, want 2", len(jobs))
	}
	for i, j := range jobs {
		c := rec.Conversations[i]
		if j.To != c.Phone || j.ConversationID != c.ID || j.MessageID != m.ID {
			t.Errorf("text %d: %+v", i, j)
		}
		got, err := db.ConversationByToken(ctx, j.Token)
		if err != nil || got.ID != c.ID {
			t.Errorf("new link opens %+v, %v; want conversation %d", got, err, c.ID)
		}
	}
	if jobs[0].Token == oldLinks[0].Token {
		t.Error("the joined conversation got its old link again")
	}
	if got, err := db.ConversationByToken(ctx, oldLinks[0].Token); err != nil || got.ID != convA.ID {
		t.Errorf("old link: %+v, %v", got, err)
	}
}

func TestInbox(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	now := t0
	db.Now = func() time.Time { return now }
	const (
		phoneA = securetextd.Phone("+12125550101")
		phoneB = securetextd.Phone("+12125550102")
	)

	if entries, err := db.Inbox(ctx, phoneA); err != nil || len(entries) != 0 {
		t.Fatalf("empty inbox = %v, %v", entries, err)
	}
	c1 := commitTest(t, db, &securetextd.Message{Sender: "dr@clinic.example", Subject: "first"}, nil, phoneA).Conversations[0]
	now = now.Add(time.Minute)
	r2 := commitTest(t, db, &securetextd.Message{Sender: "nurse@clinic.example", Subject: "second"}, nil, phoneA, phoneB)
	c2, c2b := r2.Conversations[0], r2.Conversations[1]
	now = now.Add(time.Minute)
	c3 := commitTest(t, db, &securetextd.Message{Sender: "dr@clinic.example", Subject: "third"}, nil, phoneB).Conversations[0]

	type want struct {
		id       int64
		messages int
		latest   string // subject, or "reply"
	}
	check := func(phone securetextd.Phone, wants ...want) {
		t.Helper()
		entries, err := db.Inbox(ctx, phone)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != len(wants) {
			t.Fatalf("inbox of %s has %d entries, want %d", phone, len(entries), len(wants))
		}
		for i, e := range entries {
			w := wants[i]
			latest := "none"
			if e.Latest != nil {
				latest = e.Latest.Subject
				if e.Latest.Direction == securetextd.Reply {
					latest = "reply"
				}
			}
			if e.Conversation.ID != w.id || e.Conversation.Phone != phone || e.Messages != w.messages || latest != w.latest {
				t.Errorf("inbox of %s, entry %d: conversation %d, %d messages, latest %q; want %+v",
					phone, i, e.Conversation.ID, e.Messages, latest, w)
			}
		}
	}
	check(phoneA, want{c2.ID, 1, "second"}, want{c1.ID, 1, "first"})
	check(phoneB, want{c3.ID, 1, "third"}, want{c2b.ID, 1, "second"})

	// A reply brings its conversation to the top.
	now = now.Add(time.Minute)
	reply, err := db.SaveReply(ctx, c1.ID, replyParts(textPart("ok")))
	if err != nil {
		t.Fatal(err)
	}
	check(phoneA, want{c1.ID, 2, "reply"}, want{c2.ID, 1, "second"})
	entries, _ := db.Inbox(ctx, phoneA)
	if l := entries[0].Latest; l.ID != reply.ID || len(l.Parts) != 1 || l.Parts[0].Size != 2 {
		t.Errorf("latest message %+v, want the reply", l)
	}

	// So does a message that joins a conversation.
	now = now.Add(time.Minute)
	d := db.NewDraft()
	if _, err := d.CommitTargets(ctx, &securetextd.Message{Sender: "nurse@clinic.example", Subject: "follow-up"},
		[]Target{{Phone: phoneA, ConversationID: c2.ID}}); err != nil {
		t.Fatal(err)
	}
	check(phoneA, want{c2.ID, 2, "follow-up"}, want{c1.ID, 2, "reply"})
	check(phoneB, want{c3.ID, 1, "third"}, want{c2b.ID, 1, "second"})

	c, err := db.Conversation(ctx, c1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Phone != phoneA || c.Sender != "dr@clinic.example" || !c.Created.Equal(t0) || !c.LastActivity.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("Conversation = %+v", c)
	}
	_, err = db.Conversation(ctx, 999)
	wantCode(t, err, securetextd.ENOTFOUND)
}

func TestNextJobKinds(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	now := t0
	db.Now = func() time.Time { return now }
	const phone = securetextd.Phone("+12125550123")
	if err := db.CreateRecipient(ctx, phone, "correct horse battery", "pat@example.com"); err != nil {
		t.Fatal(err)
	}
	confirmRecovery(t, db)
	c := commitTest(t, db, &securetextd.Message{Sender: "dr@clinic.example"}, nil, phone).Conversations[0]
	now = now.Add(time.Second)
	if _, err := db.SaveReply(ctx, c.ID, replyParts(textPart("ok"))); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if err := db.RequestPasswordReset(ctx, phone, time.Hour); err != nil {
		t.Fatal(err)
	}

	const text, reply, reset = securetextd.JobKindText, securetextd.JobKindReply, securetextd.JobKindReset
	for _, tt := range []struct {
		kinds []string
		want  string
		due   time.Duration // after t0
	}{
		{nil, text, 0},
		{[]string{text}, text, 0},
		{[]string{reply}, reply, time.Second},
		{[]string{reset}, reset, 2 * time.Second},
		{[]string{reply, reset}, reply, time.Second},
		{[]string{reset, text}, text, 0},
		{[]string{"unknown"}, "", 0},
	} {
		j, err := db.NextJob(ctx, now, tt.kinds...)
		due, ok, dueErr := db.NextDue(ctx, tt.kinds...)
		if dueErr != nil {
			t.Fatal(dueErr)
		}
		if tt.want == "" {
			wantCode(t, err, securetextd.ENOTFOUND)
			if ok {
				t.Errorf("NextDue(%q) = %v, want none", tt.kinds, due)
			}
			continue
		}
		if err != nil || j.Kind != tt.want {
			t.Errorf("NextJob(%q) = %+v, %v; want a %s job", tt.kinds, j, err, tt.want)
		}
		if !ok || !due.Equal(t0.Add(tt.due)) {
			t.Errorf("NextDue(%q) = %v, %v; want +%v", tt.kinds, due.Sub(t0), ok, tt.due)
		}
	}

	// The text is put off: the mail worker's queue is not.
	j, _ := db.NextJob(ctx, now, text)
	if err := db.RetryJob(ctx, j.ID, t0.Add(time.Hour), "busy"); err != nil {
		t.Fatal(err)
	}
	_, err := db.NextJob(ctx, now, text)
	wantCode(t, err, securetextd.ENOTFOUND)
	if due, _, _ := db.NextDue(ctx, text); !due.Equal(t0.Add(time.Hour)) {
		t.Errorf("NextDue(text) = +%v, want +1h", due.Sub(t0))
	}
	if due, _, _ := db.NextDue(ctx); !due.Equal(t0.Add(time.Second)) {
		t.Errorf("NextDue() = +%v, want +1s", due.Sub(t0))
	}
	if j, err := db.NextJob(ctx, now); err != nil || j.Kind != reply {
		t.Errorf("NextJob() = %+v, %v; want the reply", j, err)
	}
}

// TestWakeTwoWaiters checks that one commit wakes both workers, each
// waiting on its own channel from Wake.
func TestWakeTwoWaiters(t *testing.T) {
	db := openTestDB(t)
	var wg sync.WaitGroup
	for range 2 {
		wake := db.Wake()
		wg.Go(func() { <-wake })
	}
	commitTest(t, db, &securetextd.Message{Sender: "a@example.org"}, nil, "+12125550123")
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a waiter was not woken")
	}
}

// TestMessageInConversation: a mail about one message reads that message
// and the inbound one before it, not the whole conversation; a message
// of another conversation is not found.
func TestMessageInConversation(t *testing.T) {
	db := openTestDB(t)
	db.Policy.ContinuePerSender = true
	ctx := t.Context()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	now := t0
	db.Now = func() time.Time { return now }
	const phone = securetextd.Phone("+12125550123")
	first := commitTest(t, db, &securetextd.Message{Sender: "dr@clinic.example", Subject: "Results"}, nil, phone)
	conv := first.Conversations[0].ID
	now = now.Add(time.Minute)
	reply1, err := db.SaveReply(ctx, conv, replyParts(textPart("Thanks")))
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	second := commitTest(t, db, &securetextd.Message{Sender: "dr@clinic.example", Subject: "More"}, nil, phone)
	if second.Conversations[0].ID != conv {
		t.Fatalf("the second message started conversation %d", second.Conversations[0].ID)
	}
	now = now.Add(time.Minute)
	reply2, err := db.SaveReply(ctx, conv, replyParts(textPart("Got it")))
	if err != nil {
		t.Fatal(err)
	}
	other := commitTest(t, db, &securetextd.Message{Sender: "other@clinic.example", Subject: "Hello"}, nil, phone)

	for _, c := range []struct {
		id, before int64
	}{
		{first.MessageID, 0},
		{reply1.ID, first.MessageID},
		{second.MessageID, first.MessageID},
		{reply2.ID, second.MessageID},
	} {
		msg, before, err := db.MessageInConversation(ctx, conv, c.id)
		if err != nil {
			t.Fatalf("message %d: %v", c.id, err)
		}
		if msg.ID != c.id {
			t.Errorf("message %d: got %d", c.id, msg.ID)
		}
		var got int64
		if before != nil {
			got = before.ID
		}
		if got != c.before {
			t.Errorf("message %d: the inbound one before it is %d, want %d", c.id, got, c.before)
		}
		if only, err := db.ConversationMessage(ctx, conv, c.id); err != nil || only.ID != c.id || only.Subject != msg.Subject || len(only.Parts) != len(msg.Parts) {
			t.Errorf("ConversationMessage %d: %+v, %v; MessageInConversation gave %+v", c.id, only, err, msg)
		}
	}
	if _, _, err := db.MessageInConversation(ctx, conv, other.MessageID); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("a message of another conversation: %v, want not found", err)
	}
	if _, err := db.ConversationMessage(ctx, conv, other.MessageID); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("ConversationMessage of another conversation's message: %v, want not found", err)
	}
}
