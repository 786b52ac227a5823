package store

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// answer commits an answer of sender, with text, into conversation conv
// at the DB's clock.
func answer(t *testing.T, db *DB, sender, text string, conv int64) (*Receipt, error) {
	t.Helper()
	d := db.NewDraft()
	defer d.Discard()
	w, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, text)
	w.Close()
	f, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/pdf", Filename: "advice.pdf"})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "%PDF-1.4 ANSWERFILE")
	f.Close()
	return d.CommitAnswer(t.Context(), &securetextd.Message{
		Sender: sender, Subject: "Re: results", MessageID: "answer@clinic.example", Received: db.Now(), Auth: "console",
	}, conv)
}

// counts are what a refused answer must leave as it was.
type counts struct{ messages, blobs, jobs, audit int }

func countAll(t *testing.T, db *DB) counts {
	t.Helper()
	var c counts
	for _, x := range []struct {
		table string
		n     *int
	}{{"messages", &c.messages}, {"blobs", &c.blobs}, {"jobs", &c.jobs}, {"audit", &c.audit}} {
		n, err := db.count(t.Context(), x.table)
		if err != nil {
			t.Fatal(err)
		}
		*x.n = n
	}
	return c
}

// TestCommitAnswer: the console's answer joins the conversation as a
// mailed answer to its reply address does: the message is in the
// conversation after the patient's reply, access is renewed (past its
// expiry too), a fresh link is texted, and the trail records
// message.accepted and text.queued by the sender, all in one commit.
func TestCommitAnswer(t *testing.T) {
	db, clk := lifecycleDB(t, Policy{AccessExpiry: time.Hour})
	ctx := t.Context()
	first, err := send(t, db, "results", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	conv := first.Conversations[0].ID
	reply, err := db.SaveReply(ctx, conv, func(yield func(securetextd.Part, io.Reader) bool) {
		yield(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, strings.NewReader("Thanks, what next?"))
	})
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(2 * time.Hour) // access has expired: the answer renews it
	if err := db.AnswerClosed(ctx, conv); err != nil {
		t.Fatalf("an expired conversation is closed to answers: %v", err)
	}
	texts := len(jobsOf(t, db, securetextd.JobKindText))

	r, err := answer(t, db, "Dr.Who@clinic.example", "Rest and drink water.", conv)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Conversations) != 1 || r.Conversations[0].ID != conv || !r.Conversations[0].LastActivity.Equal(db.Now()) {
		t.Fatalf("receipt %+v, want conversation %d renewed now", r, conv)
	}
	if err := db.ConversationAccess(ctx, conv); err != nil {
		t.Errorf("access after the answer: %v", err)
	}
	msgs, err := db.ConversationMessages(ctx, conv)
	if err != nil || len(msgs) != 3 || msgs[1].ID != reply.ID || msgs[2].ID != r.MessageID {
		t.Fatalf("conversation holds %v (%v), want message, reply, answer", msgs, err)
	}
	m, err := db.Message(ctx, r.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Direction != securetextd.Inbound || m.Subject != "Re: results" || m.Auth != "console" || len(m.Parts) != 2 {
		t.Errorf("the answer is stored as %+v", m)
	}
	jobs := jobsOf(t, db, securetextd.JobKindText)
	if len(jobs) != texts+1 {
		t.Fatalf("%d text jobs, want %d", len(jobs), texts+1)
	}
	var tj securetextd.TextJob
	if err := json.Unmarshal(jobs[len(jobs)-1].Payload, &tj); err != nil || tj.ConversationID != conv || tj.MessageID != r.MessageID || tj.To != patient || tj.Token == "" {
		t.Errorf("the answer's text job: %+v %v", tj, err)
	}
	if ev, err := db.LastAudit(ctx, securetextd.AuditMessageAccepted); err != nil || ev.MessageID != r.MessageID || ev.Actor != "Dr.Who@clinic.example" {
		t.Errorf("message.accepted: %+v %v", ev, err)
	}
	if ev, err := db.LastAudit(ctx, securetextd.AuditTextQueued); err != nil || ev.MessageID != r.MessageID || ev.ConversationID != conv {
		t.Errorf("text.queued: %+v %v", ev, err)
	}
}

// TestCommitAnswerRefused: an answer of another sender, into a
// conversation that does not exist, was withdrawn, deleted or purged, or
// past the sender's daily limit, is refused with its code and leaves no
// message, blob, job or audit row.
func TestCommitAnswerRefused(t *testing.T) {
	db, clk := lifecycleDB(t, Policy{DailyPerSender: 4})
	ctx := t.Context()
	conv := func(subject string) int64 {
		t.Helper()
		r, err := send(t, db, subject, Target{Phone: patient})
		if err != nil {
			t.Fatal(err)
		}
		return r.Conversations[0].ID
	}
	open, withdrawn, deleted, purged := conv("open"), conv("withdrawn"), conv("deleted"), conv("purged")
	if err := db.RevokeConversation(ctx, withdrawn); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteConversation(ctx, deleted, drWho); err != nil {
		t.Fatal(err)
	}
	// Retention purges the first four messages; the open conversation's
	// answer below is past the daily limit of four anyway.
	clk.advance(25 * time.Hour)
	db.Policy.Retention = 24 * time.Hour
	if _, err := db.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	db.Policy.Retention = 0
	fresh := conv("fresh")
	for _, tc := range []struct {
		name, sender string
		conv         int64
		code, words  string
	}{
		{"another sender", "nurse@clinic.example", fresh, securetextd.EINVALID, "unknown conversation"},
		{"no such conversation", drWho, 9999, securetextd.ENOTFOUND, ""},
		{"withdrawn", drWho, withdrawn, securetextd.EREVOKED, "withdrawn"},
		{"deleted", drWho, deleted, securetextd.EREVOKED, "deleted"},
		{"purged", drWho, purged, securetextd.EEXPIRED, "retention"},
		{"purged, open until then", drWho, open, securetextd.EEXPIRED, "retention"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := countAll(t, db)
			_, err := answer(t, db, tc.sender, "ANSWERMARKER", tc.conv)
			if securetextd.ErrorCode(err) != tc.code || !strings.Contains(securetextd.ErrorMessage(err), tc.words) {
				t.Errorf("answer: %v, want %s %q", err, tc.code, tc.words)
			}
			if tc.sender == drWho && tc.code != securetextd.ENOTFOUND {
				if err := db.AnswerClosed(ctx, tc.conv); securetextd.ErrorCode(err) != tc.code {
					t.Errorf("AnswerClosed: %v, want %s", err, tc.code)
				}
			}
			if after := countAll(t, db); after != before {
				t.Errorf("a refused answer left rows: %+v, before %+v", after, before)
			}
		})
	}

	// The sender's own limit counts answers too: four texts in the last
	// day (the fresh message and three answers) and the fifth is refused.
	for i := range 3 {
		if _, err := answer(t, db, drWho, "fine", fresh); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
	}
	before := countAll(t, db)
	if _, err := answer(t, db, drWho, "one too many", fresh); securetextd.ErrorCode(err) != securetextd.ELIMIT {
		t.Errorf("past the daily limit: %v, want ELIMIT", err)
	}
	if after := countAll(t, db); after != before {
		t.Errorf("a refused answer left rows: %+v, before %+v", after, before)
	}
}
