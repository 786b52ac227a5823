package store

import (
	"testing"

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
