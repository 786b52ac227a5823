package notify

import (
	"testing"
	"testing/synctest"
)

// mailWakeOutbox is a fakeOutbox with WakeMail, whose channel texts do not
// close, as the store's is (store.DB.WakeMail).
type mailWakeOutbox struct {
	*fakeOutbox
	mail chan struct{}
}

func (o *mailWakeOutbox) WakeMail() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.mail
}

// addReply adds a reply job and wakes the mail workers.
func (o *mailWakeOutbox) addReply(t *testing.T) {
	o.fakeOutbox.addReply(t)
	o.mu.Lock()
	defer o.mu.Unlock()
	close(o.mail)
	o.mail = make(chan struct{})
}

// TestMailWorkerSleepsThroughTexts: a worker for mail alone, on an outbox
// that wakes mail workers apart (MailWaker), does not look for work when
// texts are committed; a reply wakes it, and goes at once.
func TestMailWorkerSleepsThroughTexts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &mailWakeOutbox{fakeOutbox: newFakeOutbox(), mail: make(chan struct{})}
		mail := &fakeMail{}
		startWorker(t, &Worker{Outbox: o, Mail: mail})
		synctest.Wait()
		claims := func() int {
			o.mu.Lock()
			defer o.mu.Unlock()
			return len(o.calls)
		}
		before := claims()
		for range 10 {
			o.add(t, "+12125550123", "TOKEN123")
			synctest.Wait()
		}
		if n := claims() - before; n != 0 {
			t.Errorf("the mail worker looked for work %d times as 10 texts were committed, want none", n)
		}
		o.addReply(t)
		synctest.Wait()
		if len(mail.sends()) != 1 {
			t.Errorf("the reply: %d sends, want 1 at once", len(mail.sends()))
		}
	})
}
