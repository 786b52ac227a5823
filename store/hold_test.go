package store

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// TestHoldKeepsContent: with a retention of one second, the purge deletes
// the content of a conversation that is not held and keeps that of one
// that is, and of a message the held one shares with another phone. Once
// the hold is removed, the next purge takes it.
func TestHoldKeepsContent(t *testing.T) {
	db, clk := lifecycleDB(t, Policy{Retention: time.Second})
	ctx := t.Context()
	file := randomBytes(3, 300<<10)
	parts := []testPart{
		{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, []byte("Your results are normal.")},
		{securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/pdf", Filename: "results.pdf"}, file},
	}
	other := securetextd.Phone("+12025550143")
	held := commitTest(t, db, &securetextd.Message{Sender: drWho, Subject: "held"}, parts, patient, other)
	loose := commitTest(t, db, &securetextd.Message{Sender: drWho, Subject: "loose"}, parts, other)
	convHeld := held.Conversations[0].ID
	if err := db.PlaceHold(ctx, convHeld, "Subpoena re: Jane Roe", "Pat Legal"); err != nil {
		t.Fatal(err)
	}
	if err := db.PlaceHold(ctx, convHeld, "again", "Pat Legal"); securetextd.ErrorCode(err) != securetextd.ECONFLICT {
		t.Errorf("second hold: %v, want ECONFLICT", err)
	}
	clk.advance(2 * time.Second)
	res, err := db.Purge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != 1 {
		t.Errorf("purged %d messages, want only the loose one", res.Messages)
	}
	if got := readPart(t, db, held.MessageID, 1); !bytes.Equal(got, file) {
		t.Error("the held message's attachment is not intact")
	}
	if _, _, err := db.OpenPart(ctx, loose.MessageID, 1); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("the loose message's attachment: %v, want it purged", err)
	}

	holds, err := db.ListHolds(ctx)
	if err != nil || len(holds) != 1 || holds[0].Reason != "Subpoena re: Jane Roe" || holds[0].By != "Pat Legal" {
		t.Fatalf("holds %+v %v", holds, err)
	}
	if done, err := db.RemoveHold(ctx, convHeld, "Pat Legal"); err != nil || done != nil {
		t.Fatalf("remove hold: %+v %v", done, err)
	}
	if _, err := db.RemoveHold(ctx, convHeld, "Pat Legal"); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("removing again: %v, want ENOTFOUND", err)
	}
	if res, err := db.Purge(ctx); err != nil || res.Messages != 1 {
		t.Errorf("purge after the hold: %+v %v", res, err)
	}
	var events []string
	db.AuditTrail(ctx, time.Time{}, func(ev securetextd.AuditEvent) error {
		if ev.ConversationID == convHeld && (ev.Event == securetextd.AuditHoldPlaced || ev.Event == securetextd.AuditHoldRemoved) {
			events = append(events, ev.Event+" "+ev.Actor+" "+ev.Detail)
		}
		return nil
	})
	if len(events) != 2 || events[0] != "hold.placed Pat Legal " || events[1] != "hold.removed Pat Legal " {
		t.Errorf("audit rows %q", events)
	}
}

// TestDeleteDeferredByHold: a sender's delete of a held conversation
// withdraws it, purges nothing and says so; it is carried out when the
// hold is removed. A message shared with another phone's conversation is
// purged only once that one is deleted too.
func TestDeleteDeferredByHold(t *testing.T) {
	db, _ := lifecycleDB(t, Policy{})
	ctx := t.Context()
	parts := []testPart{{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, []byte("Call us.")}}
	other := securetextd.Phone("+12025550143")
	r := commitTest(t, db, &securetextd.Message{Sender: drWho, Subject: "two phones"}, parts, patient, other)
	c1, c2 := r.Conversations[0].ID, r.Conversations[1].ID
	if err := db.PlaceHold(ctx, c1, "Audit 2026-14", "Pat Legal"); err != nil {
		t.Fatal(err)
	}
	res, err := db.DeleteConversation(ctx, c1, drWho)
	if err != nil || !res.Deferred || res.Purged != 0 {
		t.Fatalf("delete of a held conversation: %+v %v", res, err)
	}
	if err := db.ConversationAccess(ctx, c1); securetextd.ErrorCode(err) != securetextd.EREVOKED {
		t.Errorf("access after a deferred delete: %v, want withdrawn", err)
	}
	if got := readPart(t, db, r.MessageID, 0); string(got) != "Call us." {
		t.Errorf("content after a deferred delete: %q", got)
	}
	if again, err := db.DeleteConversation(ctx, c1, drWho); err != nil || !again.Deferred {
		t.Errorf("second delete: %+v %v", again, err)
	}
	holds, _ := db.ListHolds(ctx)
	if len(holds) != 1 || !holds[0].DeletePending {
		t.Errorf("holds %+v: want the pending delete shown", holds)
	}

	// The hold goes: the delete happens, but the message stays for the
	// other phone's conversation, which is not deleted.
	done, err := db.RemoveHold(ctx, c1, "Pat Legal")
	if err != nil || done == nil || done.Purged != 0 {
		t.Fatalf("remove hold: %+v %v", done, err)
	}
	if got := readPart(t, db, r.MessageID, 0); string(got) != "Call us." {
		t.Errorf("a message another conversation shares was purged: %q", got)
	}
	if _, err := db.DeleteConversation(ctx, c1, drWho); securetextd.ErrorCode(err) != securetextd.ECONFLICT {
		t.Errorf("deleting a deleted conversation: %v", err)
	}
	if err := db.PlaceHold(ctx, c1, "too late", "Pat Legal"); securetextd.ErrorCode(err) != securetextd.ECONFLICT {
		t.Errorf("holding a deleted conversation: %v", err)
	}
	res, err = db.DeleteConversation(ctx, c2, drWho)
	if err != nil || res.Deferred || res.Purged != 1 {
		t.Fatalf("delete of the other: %+v %v", res, err)
	}
	if _, _, err := db.OpenPart(ctx, r.MessageID, 0); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("content after both deletes: %v", err)
	}
	var deleted []string
	db.AuditTrail(ctx, time.Time{}, func(ev securetextd.AuditEvent) error {
		switch ev.Event {
		case securetextd.AuditDeleteDeferred, securetextd.AuditDeleted:
			deleted = append(deleted, ev.Event+" "+ev.Actor+" "+ev.Detail)
		}
		return nil
	})
	want := []string{"conversation.delete_deferred " + drWho + " held", "conversation.deleted " + drWho + " purged=0", "conversation.deleted " + drWho + " purged=1"}
	if len(deleted) != 3 || deleted[0] != want[0] || deleted[1] != want[1] || deleted[2] != want[2] {
		t.Errorf("audit rows %q, want %q", deleted, want)
	}
}

// TestHoldReasonSealed: the reason is in no database file in clear, and a
// reason copied into another conversation's hold does not open.
func TestHoldReasonSealed(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	parts := []testPart{{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, []byte("x")}}
	r1 := commitTest(t, db, &securetextd.Message{Sender: drWho, Subject: "a"}, parts, patient)
	r2 := commitTest(t, db, &securetextd.Message{Sender: drWho, Subject: "b"}, parts, securetextd.Phone("+12025550143"))
	const marker = "HOLD-REASON-MARKER-7e7e"
	if err := db.PlaceHold(ctx, r1.Conversations[0].ID, marker, "Pat"); err != nil {
		t.Fatal(err)
	}
	if err := db.PlaceHold(ctx, r2.Conversations[0].ID, "other", "Pat"); err != nil {
		t.Fatal(err)
	}
	for _, path := range storeFiles(t, db)() {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue // a file the server removed meanwhile
		}
		if bytes.Contains(raw, []byte(marker)) {
			t.Errorf("%s holds the hold's reason in clear", path)
		}
	}
	tamper(t, db, `UPDATE holds SET reason = (SELECT reason FROM holds WHERE conversation_id = 1) WHERE conversation_id = 2`)
	if _, err := db.ListHolds(ctx); err == nil {
		t.Error("a reason moved to another row opened")
	}
	if err := db.PlaceHold(ctx, 1, "x", "bad\nname"); securetextd.ErrorCode(err) != securetextd.EINVALID {
		t.Errorf("a name with a line break: %v", err)
	}
}
