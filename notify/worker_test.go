package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securetextd/securetextd"
)

// fakeOutbox is an Outbox in memory.
type fakeOutbox struct {
	mu      sync.Mutex
	jobs    []*fakeJob
	nextID  int64
	wake    chan struct{} // closed and replaced on each add
	failing int           // ClaimJob calls that fail before it works again
	calls   []time.Time
	leases  []time.Duration // the lease of each claim
	// ignoreKinds makes ClaimJob hand out jobs of any kind, as a confused
	// store would.
	ignoreKinds bool
	// writeErr, when set, is what every write of an outcome returns, as a
	// full disk would; writes counts the attempts (worker_record_test.go).
	writeErr error
	writes   int
	// blind makes ClaimJob hand out nothing though NextDueExcept sees
	// jobs due, as a confused store would; onMiss, when set, runs (once,
	// outside the lock) after a ClaimJob that found nothing.
	blind  bool
	onMiss func()
}

type fakeJob struct {
	job       securetextd.Job
	due       time.Time
	state     string // "pending", "done", "failed"
	retries   []time.Time
	failures  []string
	completed int
}

func newFakeOutbox() *fakeOutbox {
	return &fakeOutbox{wake: make(chan struct{})}
}

// add queues a text job due now and signals the worker.
func (o *fakeOutbox) add(t *testing.T, to securetextd.Phone, token string) *fakeJob {
	t.Helper()
	payload, err := json.Marshal(securetextd.TextJob{To: to, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return o.addJob(securetextd.JobKindText, payload)
}

func (o *fakeOutbox) addJob(kind string, payload []byte) *fakeJob {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.nextID++
	j := &fakeJob{
		job:   securetextd.Job{ID: o.nextID, Kind: kind, Payload: payload, Created: time.Now()},
		due:   time.Now(),
		state: "pending",
	}
	o.jobs = append(o.jobs, j)
	close(o.wake)
	o.wake = make(chan struct{})
	return j
}

func (o *fakeOutbox) find(id int64) *fakeJob {
	for _, j := range o.jobs {
		if j.job.ID == id {
			return j
		}
	}
	panic(fmt.Sprintf("no job %d", id))
}

// ofKind reports whether j is one of kinds; none means any.
func ofKind(j *fakeJob, kinds []string) bool {
	return len(kinds) == 0 || slices.Contains(kinds, j.job.Kind)
}

func (o *fakeOutbox) ClaimJob(ctx context.Context, now time.Time, lease time.Duration, except []int64, kinds ...string) (*securetextd.Job, error) {
	job, err := o.claim(now, lease, except, kinds)
	o.mu.Lock()
	miss := o.onMiss
	if job == nil && err != nil {
		o.onMiss = nil
	} else {
		miss = nil
	}
	o.mu.Unlock()
	if miss != nil {
		miss()
	}
	return job, err
}

func (o *fakeOutbox) claim(now time.Time, lease time.Duration, except []int64, kinds []string) (*securetextd.Job, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, now)
	o.leases = append(o.leases, lease)
	if o.failing > 0 {
		o.failing--
		return nil, errors.New("database is locked")
	}
	var next *fakeJob
	for _, j := range o.jobs {
		if j.state == "pending" && (o.ignoreKinds || ofKind(j, kinds)) && !slices.Contains(except, j.job.ID) &&
			!j.due.After(now) && (next == nil || j.due.Before(next.due)) {
			next = j
		}
	}
	if next == nil || o.blind {
		return nil, securetextd.Errorf(securetextd.ENOTFOUND, "no job due")
	}
	job := next.job
	return &job, nil
}

func (o *fakeOutbox) NextDueExcept(ctx context.Context, except []int64, kinds ...string) (time.Time, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var due time.Time
	found := false
	for _, j := range o.jobs {
		if j.state == "pending" && (o.ignoreKinds || ofKind(j, kinds)) && !slices.Contains(except, j.job.ID) && (!found || j.due.Before(due)) {
			due, found = j.due, true
		}
	}
	return due, found, nil
}

func (o *fakeOutbox) CompleteClaim(ctx context.Context, job *securetextd.Job) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writes++
	if o.writeErr != nil {
		return o.writeErr
	}
	j := o.find(job.ID)
	j.state = "done"
	j.completed++
	return nil
}

func (o *fakeOutbox) RetryClaim(ctx context.Context, job *securetextd.Job, at time.Time, reason string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writes++
	if o.writeErr != nil {
		return o.writeErr
	}
	j := o.find(job.ID)
	j.job.Attempts++
	j.due = at
	j.retries = append(j.retries, at)
	return nil
}

func (o *fakeOutbox) FailClaim(ctx context.Context, job *securetextd.Job, reason string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writes++
	if o.writeErr != nil {
		return o.writeErr
	}
	j := o.find(job.ID)
	j.state = "failed"
	j.failures = append(j.failures, reason)
	return nil
}

func (o *fakeOutbox) Wake() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.wake
}

// state returns a job's state, under the lock.
func (o *fakeOutbox) state(j *fakeJob) (state string, completed int, failures []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return j.state, j.completed, slices.Clone(j.failures)
}

// fakeSMS records each send, and fails the first fails of them with err.
type fakeSMS struct {
	mu    sync.Mutex
	sent  []sentSMS
	fails int
	err   error
}

type sentSMS struct {
	at   time.Time
	to   securetextd.Phone
	text string
}

func (s *fakeSMS) SendSMS(ctx context.Context, to securetextd.Phone, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, sentSMS{time.Now(), to, text})
	if s.fails > 0 {
		s.fails--
		return s.err
	}
	return nil
}

func (s *fakeSMS) sends() []sentSMS {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// startWorker runs w in the bubble until the test ends.
func startWorker(t *testing.T, w *Worker) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

func newWorker(o Outbox, sms SMSProvider) *Worker {
	return &Worker{Outbox: o, SMS: sms, Org: "Acme Clinic", PublicURL: "https://s.example/"}
}

// gaps returns the time between consecutive sends.
func gaps(sent []sentSMS) []time.Duration {
	var d []time.Duration
	for i := 1; i < len(sent); i++ {
		d = append(d, sent[i].at.Sub(sent[i-1].at))
	}
	return d
}

func TestWorkerSendsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o, sms := newFakeOutbox(), &fakeSMS{}
		j := o.add(t, "+12125550123", "TOKEN123")
		startWorker(t, newWorker(o, sms))
		synctest.Wait()
		time.Sleep(time.Hour)
		synctest.Wait()

		sent := sms.sends()
		if len(sent) != 1 {
			t.Fatalf("sent %d texts, want 1", len(sent))
		}
		if sent[0].to != "+12125550123" {
			t.Errorf("sent to %s", sent[0].to)
		}
		want := "Acme Clinic: you have a secure message. Open https://s.example/m/TOKEN123"
		if sent[0].text != want {
			t.Errorf("text = %q, want %q", sent[0].text, want)
		}
		if state, completed, _ := o.state(j); state != "done" || completed != 1 {
			t.Errorf("job %s, completed %d times; want done once", state, completed)
		}
	})
}

func TestWorkerTemplate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o, sms := newFakeOutbox(), &fakeSMS{}
		o.add(t, "+12125550123", "TOKEN123")
		w := newWorker(o, sms)
		w.PublicURL = "http://127.0.0.1:8080"
		w.Template, _ = ParseTemplate("{link} ({org})")
		startWorker(t, w)
		synctest.Wait()
		sent := sms.sends()
		if len(sent) != 1 || sent[0].text != "http://127.0.0.1:8080/m/TOKEN123 (Acme Clinic)" {
			t.Errorf("sent %+v", sent)
		}
	})
}

func TestWorkerBackoff(t *testing.T) {
	tests := []struct {
		name     string
		max      time.Duration
		wantGaps []time.Duration
	}{
		{"default", 0, []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second}},
		{"capped", 30 * time.Second, []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				o := newFakeOutbox()
				sms := &fakeSMS{fails: 5, err: errors.New("vonage: HTTP 503 Service Unavailable")}
				j := o.add(t, "+12125550123", "TOKEN123")
				w := newWorker(o, sms)
				w.MaxBackoff = tt.max
				startWorker(t, w)
				time.Sleep(time.Hour)
				synctest.Wait()

				sent := sms.sends()
				if len(sent) != 6 {
					t.Fatalf("sent %d times, want 6 (5 failures, then success)", len(sent))
				}
				if got := gaps(sent); !slices.Equal(got, tt.wantGaps) {
					t.Errorf("attempts were %v apart, want %v", got, tt.wantGaps)
				}
				if state, completed, _ := o.state(j); state != "done" || completed != 1 {
					t.Errorf("job %s, completed %d times; want done once", state, completed)
				}
			})
		})
	}
}

func TestWorkerPermanentFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFakeOutbox()
		sms := &fakeSMS{fails: 100, err: fmt.Errorf("wrapped: %w", &PermanentError{Reason: "vonage: status 4: Bad Credentials"})}
		j := o.add(t, "+12125550123", "TOKEN123")
		startWorker(t, newWorker(o, sms))
		time.Sleep(time.Hour)
		synctest.Wait()

		if n := len(sms.sends()); n != 1 {
			t.Errorf("sent %d times, want 1", n)
		}
		state, _, failures := o.state(j)
		if state != "failed" || len(failures) != 1 || failures[0] != "wrapped: vonage: status 4: Bad Credentials" {
			t.Errorf("job %s, failures %q; want failed once with the provider's reason", state, failures)
		}
		if len(j.retries) != 0 {
			t.Errorf("job retried at %v, want no retry", j.retries)
		}
	})
}

func TestWorkerRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o, sms := newFakeOutbox(), &fakeSMS{}
		for i := range 5 {
			o.add(t, "+12125550123", fmt.Sprintf("TOKEN%d", i))
		}
		w := newWorker(o, sms)
		w.Rate = 1
		start := time.Now()
		startWorker(t, w)
		time.Sleep(time.Minute)
		synctest.Wait()

		sent := sms.sends()
		if len(sent) != 5 {
			t.Fatalf("sent %d texts, want 5", len(sent))
		}
		if sent[0].at != start {
			t.Errorf("first text sent after %v, want at once", sent[0].at.Sub(start))
		}
		for i, g := range gaps(sent) {
			if g != time.Second {
				t.Errorf("text %d sent %v after the one before, want 1s", i+1, g)
			}
		}
	})
}

func TestWorkerWake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o, sms := newFakeOutbox(), &fakeSMS{}
		startWorker(t, newWorker(o, sms))
		time.Sleep(time.Hour)
		synctest.Wait() // the worker sleeps with nothing due

		added := time.Now()
		o.add(t, "+12125550123", "TOKEN123")
		synctest.Wait()
		sent := sms.sends()
		if len(sent) != 1 || sent[0].at != added {
			t.Fatalf("sent %+v; want one text at once", sent)
		}
	})
}

func TestWorkerWakeBeforeNextDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o, sms := newFakeOutbox(), &fakeSMS{fails: 1, err: errors.New("timeout")}
		o.add(t, "+12125550123", "RETRIED")
		startWorker(t, newWorker(o, sms))
		synctest.Wait() // first attempt failed; the retry is 10s away
		time.Sleep(time.Second)

		added := time.Now()
		o.add(t, "+12125550199", "NEW")
		synctest.Wait()
		sent := sms.sends()
		if len(sent) != 2 || sent[1].to != "+12125550199" || sent[1].at != added {
			t.Fatalf("sent %+v; want the new text at once", sent)
		}
	})
}

func TestWorkerUnknownKind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o, sms := newFakeOutbox(), &fakeSMS{}
		fax := o.addJob("fax", []byte(`{}`))
		reply := o.addJob(securetextd.JobKindReply, []byte(`{"message_id":1,"conversation_id":1}`))
		bad := o.addJob(securetextd.JobKindText, []byte(`{"to":`))
		startWorker(t, newWorker(o, sms))
		synctest.Wait()

		if n := len(sms.sends()); n != 0 {
			t.Errorf("sent %d texts, want none", n)
		}
		if state, _, failures := o.state(bad); state != "failed" || len(failures) != 1 {
			t.Errorf("unreadable text job: %s, failures %q; want failed once", state, failures)
		}
		// A text worker does not ask for other kinds: they wait for theirs.
		for _, j := range []*fakeJob{fax, reply} {
			if state, _, _ := o.state(j); state != "pending" || len(j.retries) != 0 {
				t.Errorf("%s job: %s, retries %v; want left alone", j.job.Kind, state, j.retries)
			}
		}
	})
}

// TestWorkerOtherKinds checks a worker against an outbox that ignores the
// kinds asked for: a kind nobody knows fails, a job for the other worker
// is put back with back-off and never dropped.
func TestWorkerOtherKinds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o, sms := newFakeOutbox(), &fakeSMS{}
		o.ignoreKinds = true
		fax := o.addJob("fax", []byte(`{}`))
		reply := o.addJob(securetextd.JobKindReply, []byte(`{"message_id":1,"conversation_id":1}`))
		startWorker(t, newWorker(o, sms))
		time.Sleep(25 * time.Second)
		synctest.Wait()

		if state, _, failures := o.state(fax); state != "failed" || len(failures) != 1 || failures[0] != `unknown job kind "fax"` {
			t.Errorf("fax job: %s, failures %q; want failed once as unknown", state, failures)
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		if reply.state != "pending" || len(reply.retries) != 2 {
			t.Errorf("reply job: %s, retries %v; want pending, put back twice (at 10s, then 20s later)", reply.state, reply.retries)
		}
	})
}

func TestWorkerStoreError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o, sms := newFakeOutbox(), &fakeSMS{}
		o.failing = 3
		o.add(t, "+12125550123", "TOKEN123")
		start := time.Now()
		startWorker(t, newWorker(o, sms))
		time.Sleep(time.Minute)
		synctest.Wait()

		sent := sms.sends()
		if len(sent) != 1 || sent[0].at.Sub(start) != 3*storePause {
			t.Fatalf("sent %+v; want one text after 3 pauses", sent)
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		if len(o.calls) > 10 {
			t.Errorf("ClaimJob called %d times in a minute: a hot loop", len(o.calls))
		}
	})
}

// TestWorkerLooksAgain: a job committed after the worker's claim found
// nothing, and before it took the wake channel, is sent at once, not
// after minIdle. An outbox that says a job is due and never hands it out
// is asked at most about twice a second.
func TestWorkerLooksAgain(t *testing.T) {
	t.Run("a job committed between the claim and the wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o, mail := newFakeOutbox(), &fakeMail{}
			start := time.Now()
			o.onMiss = func() { o.addReply(t) }
			startWorker(t, &Worker{Outbox: o, Mail: mail})
			synctest.Wait()
			if got := mail.sends(); len(got) != 1 || got[0] != start {
				t.Errorf("mail sent at %v; want once, at once", got)
			}
		})
	})
	t.Run("an outbox that never hands the job out", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o, mail := newFakeOutbox(), &fakeMail{}
			o.blind = true
			o.addReply(t)
			startWorker(t, &Worker{Outbox: o, Mail: mail})
			time.Sleep(time.Minute)
			synctest.Wait()
			o.mu.Lock()
			defer o.mu.Unlock()
			if n := len(o.calls); n < 60 || n > 122 {
				t.Errorf("ClaimJob called %d times in a minute; want twice each minIdle", n)
			}
		})
	})
}

func TestWorkerStopsWhileIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o, sms := newFakeOutbox(), &fakeSMS{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- newWorker(o, sms).Run(ctx) }()
		synctest.Wait()
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		default:
			t.Fatal("Run still running after cancel")
		}
	})
}

func TestWorkerConfig(t *testing.T) {
	o, sms := newFakeOutbox(), &fakeSMS{}
	for _, w := range []*Worker{
		{SMS: sms, PublicURL: "https://s.example"},
		{Outbox: o, PublicURL: "https://s.example"},
		{Outbox: o, SMS: sms},
	} {
		if err := w.Run(t.Context()); err == nil {
			t.Errorf("Run(%+v) = nil, want a configuration error", w)
		}
	}
}

func TestBackoff(t *testing.T) {
	w := worker{Worker: Worker{MinBackoff: 10 * time.Second, MaxBackoff: 15 * time.Minute}}
	for n, want := range map[int]time.Duration{
		1: 10 * time.Second, 2: 20 * time.Second, 7: 640 * time.Second,
		8: 15 * time.Minute, 1000: 15 * time.Minute,
	} {
		if got := w.backoff(n); got != want {
			t.Errorf("backoff(%d) = %v, want %v", n, got, want)
		}
	}
}

// slowSMS blocks until ctx is done, then reports err.
type slowSMS struct{ err error }

func (s slowSMS) SendSMS(ctx context.Context, to securetextd.Phone, text string) error {
	<-ctx.Done()
	return s.err
}

func TestWorkerShutdownMidSend(t *testing.T) {
	tests := []struct {
		name      string
		err       error // what the provider says once cancelled
		wantState string
		retried   bool
	}{
		{"accepted anyway", nil, "done", false},
		{"cut short", context.Canceled, "pending", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				o := newFakeOutbox()
				j := o.add(t, "+12125550123", "TOKEN123")
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error)
				go func() { done <- newWorker(o, slowSMS{tt.err}).Run(ctx) }()
				synctest.Wait() // the send has begun
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run = %v", err)
				}
				// The outcome was recorded although ctx was cancelled.
				o.mu.Lock()
				defer o.mu.Unlock()
				if j.state != tt.wantState || (len(j.retries) == 1) != tt.retried {
					t.Errorf("job %s, retries %v; want %s, retried %v", j.state, j.retries, tt.wantState, tt.retried)
				}
				if tt.retried && !j.retries[0].Equal(time.Now()) {
					t.Errorf("retry at %v, want at once (%v)", j.retries[0], time.Now())
				}
			})
		})
	}
}
