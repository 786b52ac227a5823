package store

import (
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// TestConversationSeen: a conversation is unread in the inbox until its
// recipient opens it (MarkViewed), and again when a message arrives after
// that; LastSeen gives the time of that opening, which the conversation
// page reads to mark what is new.
func TestConversationSeen(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	const phone = securetextd.Phone("+12125550101")

	unread := func(step string, want bool) {
		t.Helper()
		entries, err := db.Inbox(ctx, phone)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Unread() != want {
			t.Fatalf("%s: inbox %+v, want one entry, unread %v", step, entries, want)
		}
	}
	c := commitTest(t, db, &securetextd.Message{Sender: "dr@clinic.example", Subject: "first"}, nil, phone).Conversations[0].ID
	if seen, err := db.LastSeen(ctx, c, phone); err != nil || !seen.IsZero() {
		t.Fatalf("never seen: %v, %v", seen, err)
	}
	unread("before the first visit", true)

	now = now.Add(time.Minute)
	msgs, err := db.ConversationMessages(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.MarkViewed(ctx, c, []int64{msgs[0].ID}); err != nil {
		t.Fatal(err)
	}
	visit := now
	if seen, err := db.LastSeen(ctx, c, phone); err != nil || !seen.Equal(visit) {
		t.Fatalf("seen %v, %v; want %v", seen, err, visit)
	}
	if seen, err := db.LastSeen(ctx, c, "+12125550102"); err != nil || !seen.IsZero() {
		t.Fatalf("another phone: %v, %v", seen, err)
	}
	unread("after the visit", false)

	now = now.Add(time.Minute)
	d := db.NewDraft()
	defer d.Discard()
	if _, err := d.CommitTargets(ctx, &securetextd.Message{Sender: "dr@clinic.example", Subject: "second"},
		[]Target{{Phone: phone, ConversationID: c}}); err != nil {
		t.Fatal(err)
	}
	unread("after a new message", true)
	if seen, _ := db.LastSeen(ctx, c, phone); !seen.Equal(visit) {
		t.Fatalf("a new message moved the last visit to %v", seen)
	}
}
