package store

import (
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// TestReportIsTheSentList: the CLI's report (SentMessages) and the
// console's Sent list (SentPage) give each message and phone the same
// state, whatever it is, because one query says it for both; the report
// lists them oldest first, each with its history.
func TestReportIsTheSentList(t *testing.T) {
	db, clk := lifecycleDB(t, Policy{Retention: 720 * time.Hour, AccessExpiry: 72 * time.Hour})
	ctx := t.Context()
	other, third := securetextd.Phone("+12125550199"), securetextd.Phone("+12125550188")
	text := []testPart{{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, []byte("Hello.")}}
	old := commitTest(t, db, &securetextd.Message{Sender: drWho, Subject: "old", Auth: "smtp-auth"}, text, patient)
	clk.advance(721 * time.Hour)
	if res, err := db.Purge(ctx); err != nil || res.Messages != 1 {
		t.Fatalf("purge: %+v %v", res, err)
	}
	r, err := send(t, db, "new", Target{Phone: patient}, Target{Phone: other}, Target{Phone: third})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.MarkViewed(ctx, r.Conversations[1].ID, []int64{r.MessageID}); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeConversation(ctx, r.Conversations[2].ID); err != nil {
		t.Fatal(err)
	}

	report, err := db.SentMessages(ctx, "DR.WHO@clinic.example", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	page, _, err := db.SentPage(ctx, securetextd.SentQuery{Sender: drWho})
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ msg, conv int64 }
	states := map[key]string{}
	for _, p := range page {
		states[key{p.MessageID, p.ConversationID}] = p.State
	}
	want := []string{securetextd.StatePurged, securetextd.TextQueued, securetextd.StateRead, securetextd.StateRevoked}
	if len(report) != len(want) || len(page) != len(want) {
		t.Fatalf("report %+v\npage %+v", report, page)
	}
	for i, m := range report {
		if m.State != want[i] {
			t.Errorf("report row %d (message %d to %s): %s, want %s", i, m.MessageID, m.Phone, m.State, want[i])
		}
		if s := states[key{m.MessageID, m.ConversationID}]; s != m.State {
			t.Errorf("message %d to %s: report says %s, the Sent list %s", m.MessageID, m.Phone, m.State, s)
		}
		if len(m.History) == 0 {
			t.Errorf("message %d to %s: no history", m.MessageID, m.Phone)
		}
	}
	if report[0].MessageID != old.MessageID {
		t.Errorf("report starts with message %d, want the oldest, %d", report[0].MessageID, old.MessageID)
	}
	// Expired: the state moves on for both alike.
	clk.advance(72 * time.Hour)
	report, err = db.SentMessages(ctx, drWho, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	page, _, err = db.SentPage(ctx, securetextd.SentQuery{Sender: drWho, State: securetextd.StateExpired})
	if err != nil {
		t.Fatal(err)
	}
	if report[1].State != securetextd.StateExpired || len(page) != 2 {
		t.Errorf("after expiry: report %+v, Sent list of expired %+v", report, page)
	}
}
