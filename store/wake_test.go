package store

import "testing"

// TestWakeMail: the commit of an inbound message, which adds only texts,
// wakes the SMS worker (Wake) and not the mail worker (WakeMail); a reply
// from the portal, which adds mail, wakes both, and so does a message to
// an email recipient, whose notice is mail.
func TestWakeMail(t *testing.T) {
	db := openTestDB(t)
	closed := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}
	wake, mail := db.Wake(), db.WakeMail()
	r, err := send(t, db, "inbound", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	if !closed(wake) || closed(mail) {
		t.Errorf("an inbound message woke the SMS worker: %v, the mail worker: %v; want true, false", closed(wake), closed(mail))
	}
	wake, mail = db.Wake(), db.WakeMail()
	if _, err := db.SaveReply(t.Context(), r.Conversations[0].ID, replyParts(textPart("Thank you."))); err != nil {
		t.Fatal(err)
	}
	if !closed(wake) || !closed(mail) {
		t.Errorf("a reply woke the SMS worker: %v, the mail worker: %v; want both", closed(wake), closed(mail))
	}

	// A message to an email recipient adds a notice email: it wakes the
	// mail worker, or the notice waits for whatever wakes it next.
	mail = db.WakeMail()
	if _, err := send(t, db, "to an address", Target{Phone: "jane@example.net"}); err != nil {
		t.Fatal(err)
	}
	if !closed(mail) {
		t.Error("a message to an email recipient did not wake the mail worker")
	}
}
