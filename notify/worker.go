package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"golang.org/x/time/rate"

	"github.com/securetextd/securetextd"
)

const (
	// storePause is how long the worker waits after the outbox fails before
	// asking again, so that a broken database is not hammered.
	storePause = 5 * time.Second
	// minIdle is the shortest sleep when the outbox says a job is due but
	// hands none out, which only a confused outbox does: never a hot loop.
	minIdle = time.Second
	// recordTimeout bounds the write that records a job's outcome. That
	// write runs even after shutdown has begun: a text that was sent must
	// be marked sent, or it would be sent again.
	recordTimeout = 10 * time.Second
)

// Worker drains the outbox: it takes each job as it falls due, renders and
// sends the text, and records the outcome. One worker runs per process.
//
// Delivery is at least once. A job is complete only when the provider has
// accepted the text; if recording that fails, the text may go out twice,
// but it is never lost.
type Worker struct {
	Outbox   Outbox
	SMS      SMSProvider
	Template *Template // nil means DefaultTemplate
	// Org is the organization's name, as the recipient knows it.
	Org string
	// PublicURL is the address recipients reach the portal at; the link
	// in a text is PublicURL + "/m/" + token.
	PublicURL string
	// Rate is the most texts sent per second (config sms.rate). Zero or
	// less means 1.
	Rate float64
	// After failed attempt n (counting from 1) a job waits
	// MinBackoff·2^(n-1), at most MaxBackoff: 10s, 20s, 40s, … 15m by
	// default.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives one line per outcome; Run adds component=notify.
	// Nil discards.
	Logger *slog.Logger
}

// worker is a Worker's configuration with its defaults applied, and the
// state of one Run.
type worker struct {
	Worker
	link    func(token string) string
	limiter *rate.Limiter
	log     *slog.Logger
}

// Run sends texts until ctx is done, then returns nil. It returns an error
// only when the Worker is not configured to run at all.
//
// When no job is due, Run sleeps until the earliest one falls due or the
// outbox signals new work. A text whose send has begun is finished (the
// provider gets ctx, so a slow one is cut short) and its outcome recorded
// before Run returns; a job not yet begun is left for the next start.
func (w *Worker) Run(ctx context.Context) error {
	if w.Outbox == nil {
		return errors.New("notify: worker has no outbox")
	}
	if w.SMS == nil {
		return errors.New("notify: worker has no sms provider")
	}
	if w.PublicURL == "" {
		return errors.New("notify: worker has no public url")
	}
	r := worker{Worker: *w}
	if r.Template == nil {
		t, err := ParseTemplate(DefaultTemplate)
		if err != nil {
			return err
		}
		r.Template = t
	}
	if r.Rate <= 0 {
		r.Rate = 1
	}
	if r.MinBackoff <= 0 {
		r.MinBackoff = 10 * time.Second
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = 15 * time.Minute
	}
	if r.MaxBackoff < r.MinBackoff {
		r.MaxBackoff = r.MinBackoff
	}
	r.log = r.Logger
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "notify")
	// A burst of one: the first text goes at once, the next after 1/Rate.
	r.limiter = rate.NewLimiter(rate.Limit(r.Rate), 1)
	r.link = func(token string) string { return linkFor(r.PublicURL, url.PathEscape(token)) }
	r.run(ctx)
	return nil
}

func (w *worker) run(ctx context.Context) {
	for ctx.Err() == nil {
		job, err := w.Outbox.NextJob(ctx, time.Now())
		switch {
		case securetextd.ErrorCode(err) == securetextd.ENOTFOUND:
			w.idle(ctx)
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			w.log.Error("outbox: next job", "err", err)
			sleep(ctx, storePause, nil)
		default:
			w.handle(ctx, job)
		}
	}
}

// idle waits until the earliest pending job falls due, new work is
// signalled, or ctx is done.
func (w *worker) idle(ctx context.Context) {
	wake := w.Outbox.Wake()
	due, ok, err := w.Outbox.NextDue(ctx)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			w.log.Error("outbox: next due", "err", err)
			sleep(ctx, storePause, nil)
		}
	case !ok:
		select {
		case <-wake:
		case <-ctx.Done():
		}
	default:
		sleep(ctx, max(time.Until(due), minIdle), wake)
	}
}

// sleep waits for d, a receive on wake, or ctx, whichever comes first.
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-wake:
	case <-ctx.Done():
	}
}

// handle carries out one job and records its outcome.
func (w *worker) handle(ctx context.Context, job *securetextd.Job) {
	attempt := job.Attempts + 1
	log := w.log.With("job", job.ID, "kind", job.Kind, "attempt", attempt)
	if job.Kind != securetextd.JobKindText {
		w.fail(ctx, log, job.ID, fmt.Sprintf("unknown job kind %q", job.Kind))
		return
	}
	var tj securetextd.TextJob
	if err := json.Unmarshal(job.Payload, &tj); err != nil {
		w.fail(ctx, log, job.ID, fmt.Sprintf("unreadable text job: %v", err))
		return
	}
	if tj.To == "" || tj.Token == "" {
		w.fail(ctx, log, job.ID, "text job without phone or token")
		return
	}
	log = log.With("to", tj.To.Masked())

	if err := w.limiter.Wait(ctx); err != nil {
		return // shutting down; the job stays due
	}
	err := w.SMS.SendSMS(ctx, tj.To, w.Template.Render(w.Org, w.link(tj.Token)))
	switch {
	case err == nil:
		w.record(ctx, log, func(ctx context.Context) error { return w.Outbox.CompleteJob(ctx, job.ID) })
		log.Info("text sent")
	case IsPermanent(err):
		w.fail(ctx, log, job.ID, err.Error())
	case ctx.Err() != nil:
		// Cut short by shutdown: due again at once on the next start.
		log.Warn("text interrupted by shutdown", "err", err)
		w.record(ctx, log, func(ctx context.Context) error {
			return w.Outbox.RetryJob(ctx, job.ID, time.Now(), "interrupted by shutdown: "+err.Error())
		})
	default:
		delay := w.backoff(attempt)
		log.Warn("text failed; will retry", "err", err, "delay", delay)
		w.record(ctx, log, func(ctx context.Context) error {
			return w.Outbox.RetryJob(ctx, job.ID, time.Now().Add(delay), err.Error())
		})
	}
}

func (w *worker) fail(ctx context.Context, log *slog.Logger, id int64, reason string) {
	log.Error("job failed; giving up", "reason", reason)
	w.record(ctx, log, func(ctx context.Context) error { return w.Outbox.FailJob(ctx, id, reason) })
}

// record writes a job's outcome, even when ctx is already cancelled. If the
// outbox fails, the worker pauses: the job will be handed out again, and
// retrying it at once would only hammer a broken store.
func (w *worker) record(ctx context.Context, log *slog.Logger, write func(context.Context) error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := write(rctx); err != nil {
		log.Error("outbox: record outcome", "err", err)
		sleep(ctx, storePause, nil)
	}
}

// backoff returns the wait after failed attempt n (counting from 1):
// MinBackoff doubled n-1 times, at most MaxBackoff.
func (w *worker) backoff(n int) time.Duration {
	d := w.MinBackoff
	for i := 1; i < n && d < w.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, w.MaxBackoff)
}
