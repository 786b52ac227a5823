package store

import (
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// TestSentPage: the Sent list's rows, newest first, each with its state,
// filtered by sender, phone, date and state, and paged.
func TestSentPage(t *testing.T) {
	db, clk := lifecycleDB(t, Policy{AccessExpiry: 72 * time.Hour})
	ctx := t.Context()
	other := securetextd.Phone("+12125550199")
	start := clk.now()
	r1, err := send(t, db, "one", Target{Phone: patient}, Target{Phone: other})
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Minute)
	r2, err := send(t, db, "two", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Minute)
	// Another sender's message.
	d := db.NewDraft()
	r3, err := d.CommitTargets(ctx, &securetextd.Message{Sender: "nurse@clinic.example", Subject: "x",
		MessageID: "three@clinic.example", Received: db.Now(), Auth: "smtp-auth"}, []Target{{Phone: patient}})
	if err != nil {
		t.Fatal(err)
	}
	d.Discard()

	// r1 to other: read.
	if err := db.MarkViewed(ctx, r1.Conversations[1].ID, []int64{r1.MessageID}); err != nil {
		t.Fatal(err)
	}

	type row struct {
		msg   int64
		phone securetextd.Phone
		state string
	}
	list := func(q securetextd.SentQuery) ([]row, bool) {
		t.Helper()
		rows, more, err := db.SentPage(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []row
		for _, r := range rows {
			out = append(out, row{r.MessageID, r.Phone, r.State})
		}
		return out, more
	}
	same := func(what string, got []row, want ...row) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", what, got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: %v, want %v", what, got, want)
				return
			}
		}
	}

	all, _ := list(securetextd.SentQuery{})
	same("everyone's", all,
		row{r3.MessageID, patient, "queued"},
		row{r2.MessageID, patient, "queued"},
		row{r1.MessageID, patient, "queued"},
		row{r1.MessageID, other, "read"})
	mine, _ := list(securetextd.SentQuery{Sender: "DR.WHO@clinic.example"})
	same("dr who's", mine,
		row{r2.MessageID, patient, "queued"},
		row{r1.MessageID, patient, "queued"},
		row{r1.MessageID, other, "read"})
	byPhone, _ := list(securetextd.SentQuery{Sender: drWho, Phone: other})
	same("by phone", byPhone, row{r1.MessageID, other, "read"})
	byState, _ := list(securetextd.SentQuery{Sender: drWho, State: "read"})
	same("by state", byState, row{r1.MessageID, other, "read"})
	byDate, _ := list(securetextd.SentQuery{Sender: drWho, From: start.Add(30 * time.Second), To: start.Add(90 * time.Second)})
	same("by date", byDate, row{r2.MessageID, patient, "queued"})

	page1, more := list(securetextd.SentQuery{Sender: drWho, Limit: 2})
	if !more || len(page1) != 2 {
		t.Errorf("first page %v, more %v", page1, more)
	}
	page2, more := list(securetextd.SentQuery{Sender: drWho, Limit: 2, Offset: 2})
	same("second page", page2, row{r1.MessageID, other, "read"})
	if more {
		t.Error("more after the last page")
	}

	if err := db.RevokeConversation(ctx, r1.Conversations[0].ID); err != nil {
		t.Fatal(err)
	}
	revoked, _ := list(securetextd.SentQuery{Sender: drWho, State: "revoked"})
	same("revoked", revoked, row{r1.MessageID, patient, "revoked"})
	clk.advance(72 * time.Hour)
	expired, _ := list(securetextd.SentQuery{Sender: drWho, State: "expired"})
	same("expired", expired,
		row{r2.MessageID, patient, "expired"},
		row{r1.MessageID, other, "expired"})

	// One message's rows carry their history.
	rows, _, err := db.SentPage(ctx, securetextd.SentQuery{Sender: drWho, MessageID: r1.MessageID})
	if err != nil || len(rows) != 2 {
		t.Fatalf("message rows %v, %v", rows, err)
	}
	var viewed bool
	for _, r := range rows {
		for _, ev := range r.History {
			viewed = viewed || (ev.Event == securetextd.AuditMessageViewed && r.Phone == other)
		}
	}
	if !viewed {
		t.Errorf("no view in the history of %+v", rows)
	}
}
