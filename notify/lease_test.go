package notify

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securetextd/securetextd"
)

// hangingSender is a provider and a relay that never answer: each send
// ends when its context does, and says when.
type hangingSender struct {
	mu    sync.Mutex
	ended []time.Time
}

func (h *hangingSender) wait(ctx context.Context) error {
	<-ctx.Done()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ended = append(h.ended, time.Now())
	return ctx.Err()
}

func (h *hangingSender) SendSMS(ctx context.Context, to securetextd.Phone, text string) error {
	return h.wait(ctx)
}

func (h *hangingSender) Send(ctx context.Context, job *securetextd.Job) error { return h.wait(ctx) }

// TestSendEndsWithinLease: a job is claimed for its kind's lease, and a
// send that hangs is cut short, and its outcome recorded, before the
// lease ends: no other node takes a job over while its send may still go
// out.
func TestSendEndsWithinLease(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		lease time.Duration
	}{
		{securetextd.JobKindText, time.Minute},
		{securetextd.JobKindReply, 15 * time.Minute},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				o, h := newFakeOutbox(), &hangingSender{}
				var j *fakeJob
				w := &Worker{Outbox: o, PublicURL: "https://s.example/", MinBackoff: time.Hour}
				if tc.kind == securetextd.JobKindText {
					j = o.add(t, "+12125550123", "TOKEN123")
					w.SMS = h
				} else {
					j = o.addReply(t)
					w.Mail = h
				}
				start := time.Now()
				startWorker(t, w)
				time.Sleep(tc.lease + time.Minute)
				synctest.Wait()

				o.mu.Lock()
				defer o.mu.Unlock()
				h.mu.Lock()
				defer h.mu.Unlock()
				if len(o.leases) == 0 || o.leases[0] != tc.lease {
					t.Fatalf("claimed for %v, want %v", o.leases, tc.lease)
				}
				if len(h.ended) != 1 || len(j.retries) != 1 {
					t.Fatalf("sends ended at %v, retries %v; want one send, cut short and retried", h.ended, j.retries)
				}
				cut := h.ended[0].Sub(start)
				if cut+recordTimeout >= tc.lease || cut < tc.lease/2 {
					t.Errorf("send cut after %v in a lease of %v: want its outcome written (%v at most) before the lease ends, and time to send",
						cut, tc.lease, recordTimeout)
				}
				if j.state != "pending" || !j.retries[0].Equal(h.ended[0].Add(time.Hour)) {
					t.Errorf("job %s, retry at %v; want pending, retried with back-off", j.state, j.retries)
				}
			})
		})
	}
}
