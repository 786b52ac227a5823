package store

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

const jane = securetextd.Phone("jane@example.net")

// TestEmailRecipient: a message to a phone and an email address makes two
// conversations; the phone's link goes by a text job, the address's by a
// notice-email job, each with its row in texts and its text.queued; the
// address has an account like a phone's, keyed by the lowercased address.
func TestEmailRecipient(t *testing.T) {
	db, _ := lifecycleDB(t, Policy{})
	ctx := t.Context()
	r, err := send(t, db, "a", Target{Phone: patient}, Target{Phone: jane})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Conversations) != 2 || r.Conversations[1].Phone != jane {
		t.Fatalf("conversations %+v", r.Conversations)
	}
	texts, emails := jobsOf(t, db, securetextd.JobKindText), jobsOf(t, db, securetextd.JobKindEmail)
	if len(texts) != 1 || len(emails) != 1 {
		t.Fatalf("%d text jobs and %d email jobs, want 1 and 1", len(texts), len(emails))
	}
	var tj securetextd.TextJob
	json.Unmarshal(emails[0].Payload, &tj)
	if tj.To != jane || tj.Token == "" || tj.ConversationID != r.Conversations[1].ID {
		t.Errorf("email job %+v", tj)
	}
	if n := count(t, db, "texts"); n != 2 {
		t.Errorf("%d rows in texts, want 2", n)
	}
	if n := countEvent(t, db, securetextd.AuditTextQueued); n != 2 {
		t.Errorf("%d text.queued, want 2", n)
	}
	// A carrier's report never names a notice email.
	err = db.RecordDelivery(ctx, securetextd.DeliveryReport{Ref: itoa(emails[0].ID), Status: "failed", Failed: true})
	wantCode(t, err, securetextd.ENOTFOUND)
	// The link opens the conversation, and the address sets a password
	// as a phone does.
	c, err := db.ConversationByToken(ctx, tj.Token)
	if err != nil || c.Phone != jane {
		t.Fatalf("link: %+v, %v", c, err)
	}
	if err := db.CreateRecipient(ctx, jane, "correct horse battery", ""); err != nil {
		t.Fatal(err)
	}
	if err := db.AuthenticateRecipient(ctx, jane, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	// Only the lowercased, bare form is a recipient.
	for _, bad := range []securetextd.Phone{"Jane@Example.net", "Jane <jane@example.net>", "jane@", "jane"} {
		_, err := send(t, db, "b", Target{Phone: bad})
		wantCode(t, err, securetextd.EINVALID)
	}
	_, err = send(t, db, "c", Target{Phone: jane, Fallback: "other@example.net"})
	wantCode(t, err, securetextd.EINVALID)
}

// TestEmailLimits: limits.per_address_per_hour bounds the notices to one
// address as per_phone_per_hour bounds a phone's texts, and the daily
// limit of a sender counts notices as texts.
func TestEmailLimits(t *testing.T) {
	db, clk := lifecycleDB(t, Policy{DailyPerSender: 3, PerPhonePerHour: 5, PerAddressPerHour: 1})
	if _, err := send(t, db, "a", Target{Phone: jane}); err != nil {
		t.Fatal(err)
	}
	_, err := send(t, db, "b", Target{Phone: jane})
	wantCode(t, err, securetextd.ELIMIT)
	if !strings.Contains(securetextd.ErrorMessage(err), "Too many notices to jane@example.net: an email address gets at most 1 secure message notices an hour") {
		t.Errorf("refusal %q", securetextd.ErrorMessage(err))
	}
	// The phone's own limit is not the address's.
	if _, err := send(t, db, "c", Target{Phone: patient}); err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Hour + time.Second)
	if _, err := send(t, db, "d", Target{Phone: jane}); err != nil {
		t.Fatal(err)
	}
	// Three of the day's three: the sender's daily limit counted the
	// notices.
	_, err = send(t, db, "e", Target{Phone: patient})
	wantCode(t, err, securetextd.ELIMIT)
	if !strings.Contains(securetextd.ErrorMessage(err), "Daily limit reached") {
		t.Errorf("refusal %q", securetextd.ErrorMessage(err))
	}
}

// TestFallback: a text that fails for good, by a delivery report or by the
// provider's refusal, sends its link by email to the fallback address the
// sender gave (sealed for its row), with a fresh token, once; the audit
// trail and the sender's report show it; the sender is told of a failure
// only when the fallback email fails too.
func TestFallback(t *testing.T) {
	db, _ := lifecycleDB(t, Policy{FailureNotices: true})
	ctx := t.Context()
	r, err := send(t, db, "a", Target{Phone: patient, Fallback: "jane@example.net"})
	if err != nil {
		t.Fatal(err)
	}
	conv := r.Conversations[0].ID
	text := jobsOf(t, db, securetextd.JobKindText)[0]
	var sealed []byte
	if err := db.read.QueryRow(`SELECT address FROM text_fallbacks WHERE job_id = ?`, text.ID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("jane")) {
		t.Error("the fallback address is stored in clear")
	}
	if err := db.CompleteText(ctx, text.ID, []string{"ID-1"}); err != nil {
		t.Fatal(err)
	}
	if n := len(jobsOf(t, db, securetextd.JobKindEmail)); n != 0 {
		t.Fatalf("%d email jobs before any failure", n)
	}
	for range 2 { // a report repeated changes nothing
		if err := db.RecordDelivery(ctx, securetextd.DeliveryReport{ProviderID: "ID-1", Status: "failed", ErrCode: "1", Failed: true}); err != nil {
			t.Fatal(err)
		}
	}
	emails := jobsOf(t, db, securetextd.JobKindEmail)
	if len(emails) != 1 {
		t.Fatalf("%d fallback emails, want 1", len(emails))
	}
	var tj securetextd.TextJob
	json.Unmarshal(emails[0].Payload, &tj)
	var textJob securetextd.TextJob
	json.Unmarshal(text.Payload, &textJob)
	if tj.To != jane || tj.ConversationID != conv || tj.Token == "" || tj.Token == textJob.Token {
		t.Errorf("fallback job %+v", tj)
	}
	if c, err := db.ConversationByToken(ctx, tj.Token); err != nil || c.ID != conv {
		t.Errorf("fallback link: %+v, %v", c, err)
	}
	if n := len(jobsOf(t, db, securetextd.JobKindUndelivered)); n != 0 {
		t.Errorf("%d failure notices while the fallback is on its way", n)
	}
	sent, err := db.SentMessages(ctx, drWho, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var fell bool
	for _, ev := range sent[0].History {
		fell = fell || (ev.Event == securetextd.AuditTextFallback && ev.Detail == "to=j***@example.net")
	}
	if len(sent) != 1 || sent[0].State != securetextd.TextQueued || !fell {
		t.Errorf("report %+v", sent)
	}
	// The fallback email fails too: now the sender hears of it, and
	// nothing falls back further.
	if err := db.FailJob(ctx, emails[0].ID, "relay: 550 no such user"); err != nil {
		t.Fatal(err)
	}
	if n := len(jobsOf(t, db, securetextd.JobKindUndelivered)); n != 1 {
		t.Errorf("%d failure notices, want 1", n)
	}
	if n := countEvent(t, db, securetextd.AuditTextFallback); n != 1 {
		t.Errorf("%d text.fallback, want 1", n)
	}

	// A number the provider refuses falls back alike; a text without a
	// fallback address does not.
	if _, err := send(t, db, "b", Target{Phone: "+12025550143", Fallback: "jane@example.net"}, Target{Phone: "+12025550199"}); err != nil {
		t.Fatal(err)
	}
	for _, j := range jobsOf(t, db, securetextd.JobKindText) {
		if err := db.FailJob(ctx, j.ID, "vonage: status 3: Invalid to"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(jobsOf(t, db, securetextd.JobKindEmail)); n != 1 {
		t.Errorf("%d fallback emails after a refused number, want 1", n)
	}
	if n := countEvent(t, db, securetextd.AuditTextFallback); n != 2 {
		t.Errorf("%d text.fallback, want 2", n)
	}
	if n := len(jobsOf(t, db, securetextd.JobKindUndelivered)); n != 2 {
		t.Errorf("%d failure notices, want 2 (the first fallback's, the number without one)", n)
	}
}

// TestFallbackToRecoveryAddress: a text that fails for good, sent without
// a fallback address, goes by email to the recovery address of the
// number's account, but only once its owner has confirmed it.
func TestFallbackToRecoveryAddress(t *testing.T) {
	for _, confirmed := range []bool{false, true} {
		db, _ := lifecycleDB(t, Policy{FailureNotices: true})
		ctx := t.Context()
		if err := db.CreateRecipient(ctx, patient, "a long enough password", "Pat@Home.example"); err != nil {
			t.Fatal(err)
		}
		if confirmed {
			confirmRecovery(t, db)
		}
		if _, err := send(t, db, "a", Target{Phone: patient}); err != nil {
			t.Fatal(err)
		}
		text := jobsOf(t, db, securetextd.JobKindText)[0]
		if err := db.CompleteText(ctx, text.ID, []string{"ID-9"}); err != nil {
			t.Fatal(err)
		}
		if err := db.RecordDelivery(ctx, securetextd.DeliveryReport{ProviderID: "ID-9", Status: "rejected", ErrCode: "6", Failed: true}); err != nil {
			t.Fatal(err)
		}
		emails := jobsOf(t, db, securetextd.JobKindEmail)
		if !confirmed {
			if len(emails) != 0 {
				t.Fatalf("%d fallback emails to an address nobody confirmed", len(emails))
			}
			continue
		}
		if len(emails) != 1 {
			t.Fatalf("%d fallback emails to the confirmed recovery address, want 1", len(emails))
		}
		var tj securetextd.TextJob
		json.Unmarshal(emails[0].Payload, &tj)
		if !strings.EqualFold(string(tj.To), "pat@home.example") {
			t.Errorf("fallback to %q, want the recovery address", tj.To)
		}
	}
}
