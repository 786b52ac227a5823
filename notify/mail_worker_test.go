package notify

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securetextd/securetextd"
)

// fakeMail is a MailSender that records each send, taking delay to do it.
type fakeMail struct {
	mu    sync.Mutex
	sent  []time.Time
	delay time.Duration
}

func (m *fakeMail) Send(ctx context.Context, job *securetextd.Job) error {
	// No timer when there is no delay: in a synctest bubble a timer due
	// now fires only when the bubble's clock moves, which synctest.Wait
	// may return before, and the send would look as if it never began.
	if m.delay > 0 {
		select {
		case <-time.After(m.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, time.Now())
	return nil
}

func (m *fakeMail) sends() []time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sent)
}

func (o *fakeOutbox) addReply(t *testing.T) *fakeJob {
	t.Helper()
	return o.addJob(securetextd.JobKindReply, replyJob(t, 0).Payload)
}

func TestMailWorkerSendsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		o := newFakeOutbox()
		j := o.addReply(t)
		startWorker(t, &Worker{Outbox: o, Mail: fileMailer(t, dir, newMailStore(t, "Your results", "photo.jpg"))})
		time.Sleep(time.Hour)
		synctest.Wait()

		if state, completed, _ := o.state(j); state != "done" || completed != 1 {
			t.Errorf("job %s, completed %d times; want done once", state, completed)
		}
		p := parseMail(t, readOnlyFile(t, dir))
		if s, _ := p.header.Subject(); s != "Re: Your results" {
			t.Errorf("Subject %q", s)
		}
	})
}

func TestMailWorkerBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c := mailConfig()
		c.Relay = l.Addr().String()
		l.Close() // the relay is down
		m, err := NewMailer(c, newMailStore(t, "Your results", "photo.jpg"), nil)
		if err != nil {
			t.Fatal(err)
		}
		o := newFakeOutbox()
		j := o.addReply(t)
		start := time.Now()
		startWorker(t, &Worker{Outbox: o, Mail: m})
		time.Sleep(75 * time.Second)
		synctest.Wait()

		o.mu.Lock()
		defer o.mu.Unlock()
		var after []time.Duration
		for _, at := range j.retries {
			after = append(after, at.Sub(start))
		}
		want := []time.Duration{10 * time.Second, 30 * time.Second, 70 * time.Second, 150 * time.Second}
		if j.state != "pending" || !slices.Equal(after, want) {
			t.Errorf("job %s, retried at %v; want pending, retried at %v", j.state, after, want)
		}
	})
}

// TestDrainsIndependent runs the two workers that cmd runs, on one
// outbox: neither kind of job waits for the other.
func TestDrainsIndependent(t *testing.T) {
	t.Run("slow mail does not delay texts", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o, sms, mail := newFakeOutbox(), &fakeSMS{}, &fakeMail{delay: 10 * time.Minute}
			startWorker(t, newWorker(o, sms))
			startWorker(t, &Worker{Outbox: o, Mail: mail})
			start := time.Now()
			mj := o.addReply(t)
			for range 3 {
				o.add(t, "+12125550123", "TOKEN")
			}
			time.Sleep(time.Minute)
			synctest.Wait()

			sent := sms.sends()
			if len(sent) != 3 || sent[0].at != start || !slices.Equal(gaps(sent), []time.Duration{time.Second, time.Second}) {
				t.Errorf("texts sent %+v; want three, at once and then 1s apart", sent)
			}
			if state, _, _ := o.state(mj); state != "pending" {
				t.Errorf("mail job %s during its slow send", state)
			}
			time.Sleep(time.Hour)
			synctest.Wait()
			if got := mail.sends(); len(got) != 1 || got[0].Sub(start) != 10*time.Minute {
				t.Errorf("mail sent at %v; want once, after 10m", got)
			}
		})
	})
	t.Run("texts held by the rate do not delay mail", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o, sms, mail := newFakeOutbox(), &fakeSMS{}, &fakeMail{}
			startWorker(t, newWorker(o, sms))
			startWorker(t, &Worker{Outbox: o, Mail: mail})
			start := time.Now()
			for range 10 {
				o.add(t, "+12125550123", "TOKEN")
			}
			o.addReply(t)
			synctest.Wait()

			if got := mail.sends(); len(got) != 1 || got[0] != start {
				t.Errorf("mail sent at %v; want once, at once", got)
			}
			time.Sleep(time.Minute)
			synctest.Wait()
			if n := len(sms.sends()); n != 10 {
				t.Errorf("sent %d texts, want 10", n)
			}
		})
	})
}

func TestWorkerMailConfig(t *testing.T) {
	o := newFakeOutbox()
	for _, w := range []*Worker{
		{Outbox: o, Kinds: []string{securetextd.JobKindReply}},                            // no mailer
		{Outbox: o, Mail: &fakeMail{}, Kinds: []string{securetextd.JobKindText}},          // no sms
		{Outbox: o, Mail: &fakeMail{}, Kinds: []string{"fax"}},                            // unknown kind
		{Outbox: o, SMS: &fakeSMS{}, Kinds: []string{securetextd.JobKindReset}},           // no mailer
		{Outbox: o, Mail: &fakeMail{}, SMS: &fakeSMS{}, Kinds: []string{"text", "reply"}}, // no public url
	} {
		if err := w.Run(t.Context()); err == nil {
			t.Errorf("Run(%+v) = nil, want a configuration error", w)
		}
	}
}
