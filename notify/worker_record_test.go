package notify

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securetextd/securetextd"
)

// errDiskFull is what the store says when a commit finds no space.
var errDiskFull = fmt.Errorf("store: complete job: %w", securetextd.Errorf(securetextd.ESTORAGE, "The gateway's storage is full; try again later."))

func (o *fakeOutbox) setWriteErr(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writeErr = err
}

func (o *fakeOutbox) writeCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.writes
}

// sendsTo counts the texts sent to each phone.
func sendsTo(sent []sentSMS) map[securetextd.Phone]int {
	n := map[securetextd.Phone]int{}
	for _, s := range sent {
		n[s.to]++
	}
	return n
}

// TestWorkerRecordFails: the provider accepts texts while the outbox
// cannot record anything (a full disk). Each text goes out once, the
// others are not held up behind the first, the outbox is asked again with
// back-off rather than in a loop, and once it records again every text is
// recorded as sent, still once.
func TestWorkerRecordFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o, sms := newFakeOutbox(), &fakeSMS{}
		o.setWriteErr(errDiskFull)
		a := o.add(t, "+12125550101", "TOKENA")
		b := o.add(t, "+12125550102", "TOKENB")
		w := newWorker(o, sms)
		w.Rate = 100
		startWorker(t, w)
		time.Sleep(time.Second)
		synctest.Wait()
		if got := sendsTo(sms.sends()); got["+12125550101"] != 1 || got["+12125550102"] != 1 {
			t.Fatalf("sends %v; want each text once, at once", got)
		}

		// Ten minutes on a full disk: nothing is sent again, and the
		// outbox is asked with back-off (1 s doubling to 30 s).
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if n := len(sms.sends()); n != 2 {
			t.Errorf("%d texts sent in ten minutes of a full disk, want 2", n)
		}
		if n := o.writeCount(); n > 30 {
			t.Errorf("%d writes in ten minutes: the worker does not back off", n)
		}
		for _, j := range []*fakeJob{a, b} {
			if state, _, _ := o.state(j); state != "pending" {
				t.Errorf("job %d is %s while nothing can be recorded", j.job.ID, state)
			}
		}

		// Space again: both recorded as sent within the longest back-off.
		o.setWriteErr(nil)
		time.Sleep(recordMaxBackoff)
		synctest.Wait()
		for _, j := range []*fakeJob{a, b} {
			if state, completed, _ := o.state(j); state != "done" || completed != 1 {
				t.Errorf("job %d: %s, completed %d times; want done once", j.job.ID, state, completed)
			}
		}
		if n := len(sms.sends()); n != 2 {
			t.Errorf("%d texts sent, want 2", n)
		}
	})
}

// TestWorkerRecordFailsBounded: while nothing can be recorded, the worker
// holds at most maxUnrecorded outcomes and then takes no new work; the
// rest go out once the outbox records again.
func TestWorkerRecordFailsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o, sms := newFakeOutbox(), &fakeSMS{}
		o.setWriteErr(errDiskFull)
		const jobs = maxUnrecorded + 8
		for i := range jobs {
			o.add(t, securetextd.Phone(fmt.Sprintf("+121255501%02d", i)), fmt.Sprintf("TOKEN%d", i))
		}
		w := newWorker(o, sms)
		w.Rate = 1000
		startWorker(t, w)
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if n := len(sms.sends()); n != maxUnrecorded {
			t.Errorf("%d texts sent with nothing recorded, want %d (the bound)", n, maxUnrecorded)
		}
		o.setWriteErr(nil)
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(sms.sends()); n != jobs {
			t.Errorf("%d texts sent, want %d", n, jobs)
		}
		for id := int64(1); id <= jobs; id++ {
			if state, completed, _ := o.state(o.find(id)); state != "done" || completed != 1 {
				t.Errorf("job %d: %s, completed %d times", id, state, completed)
			}
		}
	})
}

// TestWorkerRecordLostJob: an outcome the outbox can never take (the job
// was purged meanwhile, or finished by a write that failed after its
// commit) is dropped, not held for ever.
func TestWorkerRecordLostJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o, sms := newFakeOutbox(), &fakeSMS{}
		o.setWriteErr(errDiskFull)
		j := o.add(t, "+12125550101", "TOKENA")
		startWorker(t, newWorker(o, sms))
		synctest.Wait()
		o.mu.Lock()
		j.state = "failed" // by someone else
		o.writeErr = securetextd.Errorf(securetextd.ECONFLICT, "Job 1 is failed already.")
		before := o.writes
		o.mu.Unlock()
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if n := o.writeCount() - before; n != 1 {
			t.Errorf("%d writes of an outcome the outbox refuses for good, want 1", n)
		}
		if n := len(sms.sends()); n != 1 {
			t.Errorf("%d sends, want 1", n)
		}
	})
}

// TestWorkerShutdownWithHeldOutcome: at shutdown, the outcomes held are
// tried once more, and Run returns whether or not that works.
func TestWorkerShutdownWithHeldOutcome(t *testing.T) {
	for _, recovers := range []bool{false, true} {
		t.Run(fmt.Sprintf("recovers=%v", recovers), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				o, sms := newFakeOutbox(), &fakeSMS{}
				o.setWriteErr(errDiskFull)
				j := o.add(t, "+12125550101", "TOKENA")
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error)
				go func() { done <- newWorker(o, sms).Run(ctx) }()
				synctest.Wait()
				if recovers {
					o.setWriteErr(nil)
				}
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run = %v", err)
				}
				want := "pending"
				if recovers {
					want = "done"
				}
				if state, _, _ := o.state(j); state != want {
					t.Errorf("job %s after shutdown, want %s", state, want)
				}
			})
		})
	}
}

// throttledSMS answers the first send with a *ThrottledError that asks to
// wait after, and accepts every other.
type throttledSMS struct {
	fakeSMS
	after time.Duration
}

func (s *throttledSMS) SendSMS(ctx context.Context, to securetextd.Phone, text string) error {
	s.fakeSMS.SendSMS(ctx, to, text)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sent) == 1 {
		return fmt.Errorf("wrapped: %w", &ThrottledError{Reason: "vonage: throttled: HTTP 429", After: s.after})
	}
	return nil
}

// TestWorkerRetryAfter: the provider throttles with a Retry-After. The
// text is tried again not before then, and no other text goes out in that
// window either, since the throttle is the account's.
func TestWorkerRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFakeOutbox()
		sms := &throttledSMS{after: 37 * time.Second}
		a := o.add(t, "+12125550101", "TOKENA")
		o.add(t, "+12125550102", "TOKENB")
		w := newWorker(o, sms)
		w.Rate = 100
		start := time.Now()
		startWorker(t, w)
		time.Sleep(5 * time.Minute)
		synctest.Wait()

		sent := sms.sends()
		if len(sent) != 3 {
			t.Fatalf("%d sends, want 3 (throttled, then both texts)", len(sent))
		}
		for _, s := range sent[1:] {
			if at := s.at.Sub(start); at < 37*time.Second {
				t.Errorf("a text to %s went %v after the throttle, before the 37 s it asked for", s.to, at)
			}
		}
		o.mu.Lock()
		retries := a.retries
		o.mu.Unlock()
		if len(retries) != 1 || !retries[0].Equal(start.Add(37*time.Second)) {
			t.Errorf("retry of the throttled text at %v, want at +37s", retries)
		}
	})
}

// TestWorkerThrottledWithoutRetryAfter: a throttle that does not say for
// how long (Vonage's status 1) gets the usual back-off.
func TestWorkerThrottledWithoutRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFakeOutbox()
		sms := &throttledSMS{}
		a := o.add(t, "+12125550101", "TOKENA")
		start := time.Now()
		startWorker(t, newWorker(o, sms))
		time.Sleep(time.Minute)
		synctest.Wait()
		o.mu.Lock()
		defer o.mu.Unlock()
		if len(a.retries) != 1 || !a.retries[0].Equal(start.Add(10*time.Second)) {
			t.Errorf("retry at %v, want the 10 s back-off", a.retries)
		}
	})
}
