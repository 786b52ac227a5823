package store

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// clock is an injected DB.Now that tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// lifecycleDB opens a test database whose clock starts at a fixed time,
// with policy p.
func lifecycleDB(t *testing.T, p Policy) (*DB, *clock) {
	t.Helper()
	db := openTestDB(t)
	c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	db.Now = c.now
	db.Policy = p
	return db, c
}

var (
	drWho   = "dr.who@clinic.example"
	patient = securetextd.Phone("+12125550123")
)

// send commits a one-part message from drWho to targets at the DB's
// clock.
func send(t *testing.T, db *DB, subject string, targets ...Target) (*Receipt, error) {
	t.Helper()
	d := db.NewDraft()
	defer d.Discard()
	w, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Your results are normal.")
	w.Close()
	return d.CommitTargets(t.Context(), &securetextd.Message{
		Sender: drWho, Subject: subject, MessageID: subject + "@clinic.example", Received: db.Now(), Auth: "smtp-auth",
	}, targets)
}

// jobsOf returns the pending jobs of kind, opened, oldest first.
func jobsOf(t *testing.T, db *DB, kind string) []*securetextd.Job {
	t.Helper()
	rows, err := db.read.Query(`SELECT id FROM jobs WHERE kind = ? AND state = 'pending' ORDER BY id`, kind)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	var jobs []*securetextd.Job
	for _, id := range ids {
		var sealed []byte
		db.read.QueryRow(`SELECT payload FROM jobs WHERE id = ?`, id).Scan(&sealed)
		plain, err := db.open(sealed, payloadPlace(id))
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, &securetextd.Job{ID: id, Kind: kind, Payload: plain})
	}
	return jobs
}

// textToken returns the link token of the newest text job of conversation
// conv.
func textToken(t *testing.T, db *DB, conv int64) string {
	t.Helper()
	for _, j := range slicesReverse(jobsOf(t, db, securetextd.JobKindText)) {
		var tj securetextd.TextJob
		json.Unmarshal(j.Payload, &tj)
		if tj.ConversationID == conv {
			return tj.Token
		}
	}
	t.Fatalf("no text job for conversation %d", conv)
	return ""
}

func slicesReverse[T any](s []T) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// events returns the names of the audit rows, in order.
func events(t *testing.T, db *DB) []string {
	t.Helper()
	var out []string
	if err := db.AuditTrail(t.Context(), time.Time{}, func(ev securetextd.AuditEvent) error {
		out = append(out, ev.Event)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func countEvent(t *testing.T, db *DB, event string) int {
	n := 0
	for _, e := range events(t, db) {
		if e == event {
			n++
		}
	}
	return n
}

// TestAccessExpiry: access ends 72 hours after the last message, to the
// nanosecond, on the link, the inbox and replies; a new message renews the
// whole conversation; the sweep records each expiry once.
func TestAccessExpiry(t *testing.T) {
	db, clk := lifecycleDB(t, Policy{AccessExpiry: 72 * time.Hour})
	ctx := t.Context()
	r, err := send(t, db, "first", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	conv := r.Conversations[0].ID
	token := textToken(t, db, conv)

	clk.advance(72*time.Hour - time.Nanosecond)
	if _, err := db.ConversationByToken(ctx, token); err != nil {
		t.Fatalf("just before 72h: %v", err)
	}
	if inbox, _ := db.Inbox(ctx, patient); len(inbox) != 1 {
		t.Fatalf("inbox before expiry has %d entries", len(inbox))
	}
	if n, _ := db.ExpireConversations(ctx); n != 0 {
		t.Fatalf("sweep expired %d conversations early", n)
	}

	clk.advance(time.Nanosecond)
	_, err = db.ConversationByToken(ctx, token)
	wantCode(t, err, securetextd.EEXPIRED)
	if msg := securetextd.ErrorMessage(err); msg != "This conversation has expired. Ask the sender to write again." {
		t.Errorf("message %q", msg)
	}
	wantCode(t, db.ConversationAccess(ctx, conv), securetextd.EEXPIRED)
	if inbox, _ := db.Inbox(ctx, patient); len(inbox) != 0 {
		t.Errorf("expired conversation still in the inbox")
	}
	_, err = db.SaveReply(ctx, conv, replyParts(textPart("too late")))
	wantCode(t, err, securetextd.EEXPIRED)
	if n, _ := db.ExpireConversations(ctx); n != 1 {
		t.Errorf("sweep expired %d conversations, want 1", n)
	}
	if n, _ := db.ExpireConversations(ctx); n != 0 {
		t.Errorf("second sweep expired %d, want 0: once each", n)
	}

	// The sender writes again into the conversation (its Reply-To): the
	// whole conversation opens, the old link too, for another 72 hours.
	clk.advance(24 * time.Hour)
	if _, err := send(t, db, "second", Target{Phone: patient, ConversationID: conv}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ConversationByToken(ctx, token); err != nil {
		t.Fatalf("old link after renewal: %v", err)
	}
	clk.advance(71 * time.Hour)
	if err := db.ConversationAccess(ctx, conv); err != nil {
		t.Fatalf("71h after renewal: %v", err)
	}
	// A reply from the recipient renews it too.
	if _, err := db.SaveReply(ctx, conv, replyParts(textPart("thanks"))); err != nil {
		t.Fatal(err)
	}
	clk.advance(71 * time.Hour)
	if err := db.ConversationAccess(ctx, conv); err != nil {
		t.Fatalf("71h after the reply: %v", err)
	}
	clk.advance(time.Hour)
	wantCode(t, db.ConversationAccess(ctx, conv), securetextd.EEXPIRED)
	if n, _ := db.ExpireConversations(ctx); n != 1 {
		t.Errorf("the renewed conversation's expiry was recorded %d times, want 1", n)
	}
	if n := countEvent(t, db, securetextd.AuditExpired); n != 2 {
		t.Errorf("%d expiry events, want 2", n)
	}
}

// TestRevoke: a withdrawn conversation's link answers EREVOKED at once,
// its unsent texts are dropped, no message joins it, and withdrawing twice
// says so.
func TestRevoke(t *testing.T) {
	db, _ := lifecycleDB(t, Policy{DeliveryNotices: true})
	ctx := t.Context()
	r, err := send(t, db, "oops", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	conv := r.Conversations[0].ID
	token := textToken(t, db, conv)
	text := jobsOf(t, db, securetextd.JobKindText)[0]

	// The text goes out: the sender's notice carries a revocation token.
	if err := db.CompleteText(ctx, text.ID, []string{"0A0000001"}); err != nil {
		t.Fatal(err)
	}
	notices := jobsOf(t, db, securetextd.JobKindNotice)
	if len(notices) != 1 {
		t.Fatalf("%d notices, want 1", len(notices))
	}
	var mj securetextd.MailJob
	json.Unmarshal(notices[0].Payload, &mj)
	if mj.Token == "" || mj.ConversationID != conv || mj.MessageID != r.MessageID {
		t.Fatalf("notice %+v", mj)
	}

	// Looking changes nothing.
	if c, err := db.RevocationByToken(ctx, mj.Token); err != nil || c.ID != conv {
		t.Fatalf("RevocationByToken: %v %v", c, err)
	}
	if _, err := db.ConversationByToken(ctx, token); err != nil {
		t.Fatalf("looking at the revocation revoked: %v", err)
	}
	_, err = db.RevocationByToken(ctx, mj.Token+"x")
	wantCode(t, err, securetextd.ENOTFOUND)

	// A second message is queued but not sent yet when the sender withdraws.
	if _, err := send(t, db, "more", Target{Phone: patient, ConversationID: conv}); err != nil {
		t.Fatal(err)
	}
	if c, err := db.RevokeByToken(ctx, mj.Token); err != nil || c.ID != conv {
		t.Fatalf("RevokeByToken: %v %v", c, err)
	}
	_, err = db.ConversationByToken(ctx, token)
	wantCode(t, err, securetextd.EREVOKED)
	if !strings.Contains(securetextd.ErrorMessage(err), "withdrawn by the sender") {
		t.Errorf("message %q", securetextd.ErrorMessage(err))
	}
	if n := len(jobsOf(t, db, securetextd.JobKindText)); n != 0 {
		t.Errorf("%d texts still queued for a withdrawn conversation", n)
	}
	_, err = db.RevokeByToken(ctx, mj.Token)
	wantCode(t, err, securetextd.EREVOKED)
	wantCode(t, db.RevokeConversation(ctx, conv), securetextd.EREVOKED)
	wantCode(t, db.RevokeConversation(ctx, 999), securetextd.ENOTFOUND)
	_, err = send(t, db, "again", Target{Phone: patient, ConversationID: conv})
	wantCode(t, err, securetextd.EINVALID)
	if inbox, _ := db.Inbox(ctx, patient); len(inbox) != 0 {
		t.Error("withdrawn conversation in the inbox")
	}
	if n := countEvent(t, db, securetextd.AuditRevoked); n != 1 {
		t.Errorf("%d revoked events", n)
	}

	// RevokeMessage withdraws every conversation of a message.
	r2, err := send(t, db, "two phones", Target{Phone: patient}, Target{Phone: "+12025550143"})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := db.RevokeMessage(ctx, r2.MessageID)
	if err != nil || len(ids) != 2 {
		t.Fatalf("RevokeMessage: %v %v", ids, err)
	}
}

// TestReadReceiptOnce: the first view of a message queues its receipt
// once, whatever the page reloads; the policy and the request decide which.
func TestReadReceiptOnce(t *testing.T) {
	for _, tc := range []struct {
		policy string
		asked  bool
		want   string // job kind, or ""
	}{
		{securetextd.ReceiptsMDN, true, securetextd.JobKindMDN},
		{securetextd.ReceiptsMDN, false, ""},
		{securetextd.ReceiptsAlways, false, securetextd.JobKindRead},
		{securetextd.ReceiptsAlways, true, securetextd.JobKindMDN},
		{securetextd.ReceiptsNever, true, ""},
	} {
		db, _ := lifecycleDB(t, Policy{ReadReceipts: tc.policy})
		ctx := t.Context()
		d := db.NewDraft()
		w, _ := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
		io.WriteString(w, "hello")
		w.Close()
		if tc.asked {
			d.RequestReadReceipt("someone.else@example.net")
		}
		r, err := d.Commit(ctx, &securetextd.Message{Sender: drWho, Auth: "smtp-auth"}, []securetextd.Phone{patient})
		if err != nil {
			t.Fatal(err)
		}
		conv := r.Conversations[0].ID
		reply, err := db.SaveReply(ctx, conv, replyParts(textPart("hi")))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := db.MarkViewed(ctx, conv, []int64{r.MessageID, reply.ID}); err != nil {
				t.Fatal(err)
			}
		}
		got := map[string]int{}
		for _, k := range []string{securetextd.JobKindMDN, securetextd.JobKindRead} {
			for _, j := range jobsOf(t, db, k) {
				var mj securetextd.MailJob
				json.Unmarshal(j.Payload, &mj)
				if mj.MessageID != r.MessageID || mj.ConversationID != conv || mj.To != "" {
					t.Errorf("%s/%v: receipt job %+v", tc.policy, tc.asked, mj)
				}
				got[k]++
			}
		}
		switch {
		case tc.want == "" && len(got) != 0:
			t.Errorf("%s/%v: receipts %v, want none", tc.policy, tc.asked, got)
		case tc.want != "" && (len(got) != 1 || got[tc.want] != 1):
			t.Errorf("%s/%v: receipts %v, want one %s", tc.policy, tc.asked, got, tc.want)
		}
		if n := countEvent(t, db, securetextd.AuditMessageViewed); n != 3 {
			t.Errorf("%d view events, want one per page view (3)", n)
		}
	}
}

// TestDeliveryReports: the provider's reports move a text to delivered or
// failed once, a failure mails the sender once, and unknown texts are
// ENOTFOUND.
func TestDeliveryReports(t *testing.T) {
	db, _ := lifecycleDB(t, Policy{FailureNotices: true})
	ctx := t.Context()
	r, err := send(t, db, "a", Target{Phone: patient}, Target{Phone: "+12025550143"})
	if err != nil {
		t.Fatal(err)
	}
	texts := jobsOf(t, db, securetextd.JobKindText)
	if err := db.CompleteText(ctx, texts[0].ID, []string{"ID-A1", "ID-A2"}); err != nil {
		t.Fatal(err)
	}
	if err := db.CompleteText(ctx, texts[1].ID, []string{"ID-B"}); err != nil {
		t.Fatal(err)
	}
	state := func(job int64) string {
		var s string
		db.read.QueryRow(`SELECT state FROM texts WHERE job_id = ?`, job).Scan(&s)
		return s
	}
	if s := state(texts[0].ID); s != securetextd.TextSent {
		t.Fatalf("state after sending %q", s)
	}
	if err := db.RecordDelivery(ctx, securetextd.DeliveryReport{ProviderID: "ID-A2", Status: "accepted"}); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordDelivery(ctx, securetextd.DeliveryReport{ProviderID: "ID-A2", Status: "delivered", Delivered: true}); err != nil {
		t.Fatal(err)
	}
	// A late failure of a delivered text changes nothing.
	if err := db.RecordDelivery(ctx, securetextd.DeliveryReport{ProviderID: "ID-A1", Status: "failed", Failed: true}); err != nil {
		t.Fatal(err)
	}
	if s := state(texts[0].ID); s != securetextd.TextDelivered {
		t.Errorf("state %q, want delivered", s)
	}
	// The second text fails, reported twice, found by its reference.
	for range 2 {
		ref := securetextd.DeliveryReport{Ref: itoa(texts[1].ID), Status: "expired", ErrCode: "6", Failed: true}
		if err := db.RecordDelivery(ctx, ref); err != nil {
			t.Fatal(err)
		}
	}
	if s := state(texts[1].ID); s != securetextd.TextFailed {
		t.Errorf("state %q, want failed", s)
	}
	undelivered := jobsOf(t, db, securetextd.JobKindUndelivered)
	if len(undelivered) != 1 {
		t.Fatalf("%d failure notices, want 1", len(undelivered))
	}
	var mj securetextd.MailJob
	json.Unmarshal(undelivered[0].Payload, &mj)
	if mj.MessageID != r.MessageID || mj.ConversationID != r.Conversations[1].ID {
		t.Errorf("failure notice %+v", mj)
	}
	err = db.RecordDelivery(ctx, securetextd.DeliveryReport{ProviderID: "nope", Status: "delivered", Delivered: true})
	wantCode(t, err, securetextd.ENOTFOUND)

	// A text the provider refuses for good fails the same way.
	r3, _ := send(t, db, "b", Target{Phone: "+12025550199"})
	job := jobsOf(t, db, securetextd.JobKindText)[0]
	if err := db.FailJob(ctx, job.ID, "vonage: status 3: Invalid to"); err != nil {
		t.Fatal(err)
	}
	if n := len(jobsOf(t, db, securetextd.JobKindUndelivered)); n != 2 {
		t.Errorf("%d failure notices after a refused text, want 2", n)
	}
	sent, err := db.SentMessages(ctx, drWho, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{securetextd.TextDelivered, securetextd.TextFailed, securetextd.TextFailed}
	if len(sent) != 3 || sent[2].MessageID != r3.MessageID {
		t.Fatalf("report %+v", sent)
	}
	for i, s := range sent {
		if s.State != want[i] {
			t.Errorf("report line %d: %s, want %s", i, s.State, want[i])
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestLimits: over the daily limit of a sender or the hourly limit of a
// phone, a message is refused whole with ELIMIT, saying when it may go;
// when the window has moved on, it goes.
func TestLimits(t *testing.T) {
	db, clk := lifecycleDB(t, Policy{DailyPerSender: 3, PerPhonePerHour: 2})
	ctx := t.Context()
	other := securetextd.Phone("+12025550143")
	if _, err := send(t, db, "1", Target{Phone: patient}); err != nil {
		t.Fatal(err)
	}
	clk.advance(10 * time.Minute)
	if _, err := send(t, db, "2", Target{Phone: patient}); err != nil {
		t.Fatal(err)
	}
	// A third text to the patient within the hour: the phone's limit.
	clk.advance(10 * time.Minute)
	_, err := send(t, db, "3", Target{Phone: patient})
	wantCode(t, err, securetextd.ELIMIT)
	if msg := securetextd.ErrorMessage(err); !strings.Contains(msg, "at most 2 secure texts an hour") ||
		!strings.Contains(msg, "resets for this message at 10:00 UTC on 2 March 2026") {
		t.Errorf("phone limit: %q", msg)
	}
	if err := db.CheckLimits(ctx, drWho, []Target{{Phone: patient}}); securetextd.ErrorCode(err) != securetextd.ELIMIT {
		t.Errorf("CheckLimits: %v", err)
	}
	// Two phones where only one more text is allowed today: refused
	// whole, nothing stored.
	before := count(t, db, "messages")
	_, err = send(t, db, "4", Target{Phone: other}, Target{Phone: "+12025550199"})
	wantCode(t, err, securetextd.ELIMIT)
	if msg := securetextd.ErrorMessage(err); !strings.Contains(msg, "Daily limit reached: dr.who@clinic.example may send 3 texts in 24 hours and has sent 2") ||
		!strings.Contains(msg, "resets for this message at 09:00 UTC on 3 March 2026") {
		t.Errorf("daily limit: %q", msg)
	}
	if count(t, db, "messages") != before {
		t.Error("a refused message was stored")
	}
	if _, err := send(t, db, "5", Target{Phone: other}); err != nil {
		t.Fatalf("the last text of the day: %v", err)
	}
	_, err = send(t, db, "6", Target{Phone: other})
	wantCode(t, err, securetextd.ELIMIT)
	// More phones than a day allows can never go.
	_, err = send(t, db, "7", Target{Phone: "+12025550101"}, Target{Phone: "+12025550102"}, Target{Phone: "+12025550103"}, Target{Phone: "+12025550104"})
	wantCode(t, err, securetextd.EINVALID)

	// After the hour the patient may be texted again, but the sender's day
	// is full until 24 hours after the first text.
	clk.advance(time.Hour)
	_, err = send(t, db, "8", Target{Phone: patient})
	wantCode(t, err, securetextd.ELIMIT)
	clk.t = time.Date(2026, 3, 3, 9, 0, 0, 1, time.UTC)
	if _, err := send(t, db, "9", Target{Phone: patient}); err != nil {
		t.Fatalf("after 24 hours: %v", err)
	}
}
