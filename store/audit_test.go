package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// trail makes a database with a few audit rows and returns it, its
// append-only triggers dropped, as someone who can write to the database
// could (tamper).
func trail(t *testing.T) *DB {
	t.Helper()
	db, _ := lifecycleDB(t, Policy{})
	ctx := securetextd.WithOrigin(t.Context(), securetextd.Origin{Client: "192.0.2.7", UserAgent: "Test/1.0"})
	for i, e := range []string{"a", "b", "c", "d", "e", "f"} {
		if err := db.Audit(ctx, securetextd.AuditEvent{Event: "test." + e, Actor: "tester", ConversationID: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	tamper(t, db, onEngine(db,
		[]string{`DROP TRIGGER audit_no_update`, `DROP TRIGGER audit_no_delete`},
		[]string{`DROP TRIGGER audit_no_update ON audit`, `DROP TRIGGER audit_no_truncate ON audit`})...)
	return db
}

// TestAuditTamper edits, deletes and inserts rows with plain SQL, and
// VerifyAudit names the row each time; an untouched trail verifies. A
// forged row's hash is another row's (its prev), which is as wrong as any.
func TestAuditTamper(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sql     []string
		seq     int64
		problem string
	}{
		{"untouched", nil, 0, ""},
		{"altered", []string{`UPDATE audit SET actor = 'someone else' WHERE seq = 3`}, 3, "row 3 was altered"},
		{"altered time", []string{`UPDATE audit SET time = time + 1 WHERE seq = 5`}, 5, "row 5 was altered"},
		{"removed", []string{`DELETE FROM audit WHERE seq = 4`}, 4, "row 4 was removed"},
		{"first removed", []string{`DELETE FROM audit WHERE seq = 1`}, 1, "row 1 was removed"},
		{"removed and renumbered", []string{
			`DELETE FROM audit WHERE seq = 2`,
			`UPDATE audit SET seq = seq - 1 WHERE seq > 2`,
		}, 2, "row 2 does not follow row 1"},
		{"inserted", []string{
			`UPDATE audit SET seq = seq + 100 WHERE seq >= 4`,
			`UPDATE audit SET seq = seq - 99 WHERE seq >= 104`,
			`INSERT INTO audit (seq, time, event, actor, prev, hash)
			 SELECT 4, time + 1, 'login.ok', 'intruder', hash, prev FROM audit WHERE seq = 3`,
		}, 4, "row 4 was inserted"},
		{"appended", []string{
			`INSERT INTO audit (seq, time, event, actor, prev, hash)
			 SELECT 7, time + 1, 'login.ok', 'intruder', hash, prev FROM audit WHERE seq = 6`,
		}, 7, "row 7, the last, was altered or inserted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := trail(t)
			tamper(t, db, tc.sql...)
			check, err := db.VerifyAudit(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if check.Seq != tc.seq || !strings.Contains(check.Problem, tc.problem) {
				t.Errorf("verify: row %d %q, want row %d %q", check.Seq, check.Problem, tc.seq, tc.problem)
			}
			if tc.seq == 0 && (check.Rows != 6 || check.Head.Seq != 6 || len(check.Head.Hash) != 32) {
				t.Errorf("untouched: %+v", check)
			}
		})
	}
}

// TestAuditAppendOnly: the gateway's own connection cannot change or
// delete a row, and rows keep the request's origin.
func TestAuditAppendOnly(t *testing.T) {
	db, _ := lifecycleDB(t, Policy{})
	ctx := securetextd.WithOrigin(t.Context(), securetextd.Origin{Actor: "+12125550123", Client: "198.51.100.9", UserAgent: strings.Repeat("x", 1000)})
	if err := db.Audit(ctx, securetextd.AuditEvent{Event: securetextd.AuditLinkOpened, ConversationID: 1}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE audit SET actor = 'x'`, `DELETE FROM audit`} {
		if _, err := db.write.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", q, err)
		}
	}
	ev, err := db.AuditHead(t.Context())
	if err != nil || ev == nil {
		t.Fatal(err)
	}
	if ev.Actor != "+12125550123" || ev.Client != "198.51.100.9" || len(ev.UserAgent) != maxAuditUA || ev.Time.IsZero() {
		t.Errorf("row %+v", ev)
	}
}

// TestAuditEvents: the lifecycle of a message leaves its events in the
// trail, in order, in the transactions of the changes.
func TestAuditEvents(t *testing.T) {
	db, _ := lifecycleDB(t, Policy{DeliveryNotices: true, ReadReceipts: securetextd.ReceiptsAlways})
	ctx := t.Context()
	r, err := send(t, db, "s", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	conv := r.Conversations[0].ID
	if err := db.CompleteText(ctx, jobsOf(t, db, securetextd.JobKindText)[0].ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRecipient(ctx, patient, "maple syrup on pancakes", "p@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkViewed(ctx, conv, []int64{r.MessageID}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SaveReply(ctx, conv, replyParts(textPart("ok"))); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeConversation(ctx, conv); err != nil {
		t.Fatal(err)
	}
	want := []string{
		securetextd.AuditMessageAccepted, securetextd.AuditTextQueued, securetextd.AuditTextSent,
		securetextd.AuditPasswordSet, securetextd.AuditConfirmSent, securetextd.AuditReceiptQueued, securetextd.AuditMessageViewed,
		securetextd.AuditReplySent, securetextd.AuditRevoked,
	}
	if got := events(t, db); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events\n got %v\nwant %v", got, want)
	}
	check, err := db.VerifyAudit(ctx)
	if err != nil || !check.OK() || check.Rows != int64(len(want)) {
		t.Errorf("verify: %+v %v", check, err)
	}
	sent, err := db.SentMessages(ctx, "DR.WHO@clinic.example", time.Time{})
	if err != nil || len(sent) != 1 {
		t.Fatalf("report: %v %v", sent, err)
	}
	if s := sent[0]; s.State != securetextd.StateRevoked || len(s.History) != 7 || s.Phone != patient {
		t.Errorf("report %+v", s)
	}
	if _, err := db.SentMessages(ctx, "nobody@example.org", time.Time{}); err != nil {
		t.Fatal(err)
	}
	var e *securetextd.Error
	if errors.As(db.RevokeConversation(context.Background(), conv), &e) && e.Code != securetextd.EREVOKED {
		t.Error(e)
	}
}
