package store

import (
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// TestDeletedBySender: a conversation its sender deleted tells its
// recipient so (securetextd.DeletedMessage), where one only withdrawn,
// or one whose delete waits for a legal hold, says it was withdrawn.
func TestDeletedBySender(t *testing.T) {
	db, _ := lifecycleDB(t, Policy{})
	ctx := t.Context()
	conv := func(subject string) int64 {
		r, err := send(t, db, subject, Target{Phone: patient})
		if err != nil {
			t.Fatal(err)
		}
		return r.Conversations[0].ID
	}
	withdrawn, deleted, held := conv("1"), conv("2"), conv("3")
	endThree(t, db, withdrawn, deleted, held)
	for id, want := range map[int64]string{
		withdrawn: "This conversation was withdrawn by the sender.",
		deleted:   securetextd.DeletedMessage,
		held:      "This conversation was withdrawn by the sender.",
	} {
		err := db.ConversationAccess(ctx, id)
		if securetextd.ErrorCode(err) != securetextd.EREVOKED || securetextd.ErrorMessage(err) != want {
			t.Errorf("conversation %d: %v, want EREVOKED %q", id, err, want)
		}
	}
}

// endThree withdraws conversation withdrawn, deletes deleted, and deletes
// held under a legal hold, which withdraws it and defers the delete.
func endThree(t *testing.T, db *DB, withdrawn, deleted, held int64) {
	t.Helper()
	ctx := t.Context()
	if err := db.RevokeConversation(ctx, withdrawn); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteConversation(ctx, deleted, drWho); err != nil {
		t.Fatal(err)
	}
	if err := db.PlaceHold(ctx, held, "litigation", "counsel"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteConversation(ctx, held, drWho); err != nil {
		t.Fatal(err)
	}
}

// TestConversationWithAccess: the portal's one query says what
// Conversation and ConversationAccess say, for a conversation open,
// withdrawn, deleted, deleted under a hold, expired, and unknown.
func TestConversationWithAccess(t *testing.T) {
	db, clk := lifecycleDB(t, Policy{AccessExpiry: time.Hour})
	ctx := t.Context()
	conv := func(subject string, phone securetextd.Phone) int64 {
		r, err := send(t, db, subject, Target{Phone: phone})
		if err != nil {
			t.Fatal(err)
		}
		return r.Conversations[0].ID
	}
	old := conv("0", "+12125550100")
	clk.advance(2 * time.Hour)
	open, withdrawn, deleted, held := conv("1", patient), conv("2", "+12125550101"), conv("3", "+12125550102"), conv("4", "+12125550103")
	endThree(t, db, withdrawn, deleted, held)
	for _, id := range []int64{open, withdrawn, deleted, held, old, 999} {
		c, access, err := db.ConversationWithAccess(ctx, id)
		want, werr := db.Conversation(ctx, id)
		if securetextd.ErrorCode(err) != securetextd.ErrorCode(werr) {
			t.Errorf("conversation %d: error %v, Conversation says %v", id, err, werr)
			continue
		}
		if werr != nil {
			continue
		}
		if *c != *want {
			t.Errorf("conversation %d: %+v, Conversation says %+v", id, c, want)
		}
		wa := db.ConversationAccess(ctx, id)
		if securetextd.ErrorCode(access) != securetextd.ErrorCode(wa) || securetextd.ErrorMessage(access) != securetextd.ErrorMessage(wa) {
			t.Errorf("conversation %d: access %v, ConversationAccess says %v", id, access, wa)
		}
	}
	if _, access, _ := db.ConversationWithAccess(ctx, old); securetextd.ErrorCode(access) != securetextd.EEXPIRED {
		t.Errorf("an expired conversation: %v", access)
	}
}
