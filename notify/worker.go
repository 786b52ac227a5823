package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/securetextd/securetextd"
)

const (
	// storePause is how long the worker waits after the outbox fails before
	// asking again, so that a broken database is not hammered.
	storePause = 5 * time.Second
	// minIdle is the shortest sleep when the outbox says a job is due but
	// hands none out twice running, which only a confused outbox does:
	// never a hot loop.
	minIdle = time.Second
)

// MailSender sends the email that one outbox job asks for (a reply to
// forward, a reset link). *Mailer implements it. As with SMSProvider, a
// *PermanentError means that sending again would only repeat the failure;
// any other error is retried.
type MailSender interface {
	Send(ctx context.Context, job *securetextd.Job) error
}

var _ MailSender = (*Mailer)(nil)

// textKinds are the job kinds that an SMSProvider carries out, at the SMS
// rate: a message's link, and a one-time code (code.go).
var textKinds = []string{securetextd.JobKindText, securetextd.JobKindCode}

// mailKinds are the job kinds that a MailSender carries out.
var mailKinds = []string{securetextd.JobKindEmail, securetextd.JobKindEmailCode, securetextd.JobKindReply, securetextd.JobKindReset, securetextd.JobKindConfirm,
	securetextd.JobKindNotice, securetextd.JobKindMDN, securetextd.JobKindRead, securetextd.JobKindUndelivered}

// Worker drains the outbox: it takes each job of its kinds as it falls
// due, sends the text or the email, and records the outcome.
//
// A process runs two: one for texts, held to the SMS rate, and one for
// mail, which the SMS rate does not concern and which a slow relay must
// not let delay texts:
//
//	texts := &notify.Worker{Outbox: db, SMS: sms, Org: org, PublicURL: url, Rate: rate}
//	mail := &notify.Worker{Outbox: db, Mail: mailer}
//
// Any number of workers may drain one outbox, in one process or in
// several nodes that share the store: each job is claimed for a lease, by
// one worker at a time (lease.go), and the SMS rate holds across them when
// the outbox keeps the send slots (slots.go).
//
// Delivery is at least once. A job is complete only when the provider or
// the relay has accepted it. If recording that fails, this process holds
// the outcome and writes it again, and never carries the job out twice
// (record.go); only a crash before the outcome is recorded repeats it,
// or, on a cluster, an outcome held past its lease, once another node has
// taken the job over.
type Worker struct {
	Outbox Outbox
	// Kinds lists the job kinds this worker takes. Empty means every kind
	// it has a sender for: securetextd.JobKindText and JobKindCode when SMS is set,
	// JobKindReply and JobKindReset when Mail is set.
	Kinds []string
	// SMS sends text jobs, Mail sends reply and reset jobs. A worker
	// needs the sender of each of its kinds.
	SMS  SMSProvider
	Mail MailSender
	// Template is the text of an SMS; nil means DefaultTemplate. Texts,
	// when set, replaces it: the text in each language (texts.go).
	Template *Template
	Texts    *Texts
	// Org is the organization's name, as the recipient knows it.
	Org string
	// PublicURL is the address recipients reach the portal at; the link
	// in a text is PublicURL + "/m/" + token. Required for texts.
	PublicURL string
	// Rate is the most texts sent per second (config sms.rate). Zero or
	// less means 1. Emails are not counted.
	Rate float64
	// After failed attempt n (counting from 1) a job waits
	// MinBackoff·2^(n-1), at most MaxBackoff: 10s, 20s, 40s, … 15m by
	// default.
	MinBackoff, MaxBackoff time.Duration
	// Metrics, if not nil, counts each job's outcome (metrics.go).
	Metrics Metrics
	// Live, if not nil, holds the template, organization and rate of
	// texts as a configuration reload changes them; its values override
	// Template, Org and Rate (metrics.go).
	Live *LiveText
	// Logger receives one line per outcome; Run adds component=notify.
	// Nil discards.
	Logger *slog.Logger
	// Poll, if positive, bounds how long an idle worker waits before it
	// looks at the outbox again: for nodes that share a store, where Wake
	// hears only this process's commits, and a job that a dead node held
	// falls due when its lease ends. Zero waits for Wake and for the next
	// job known to be due.
	Poll time.Duration
}

// worker is a Worker's configuration with its defaults applied, and the
// state of one Run.
type worker struct {
	Worker
	kinds []string
	// texts are the kinds of texts the worker takes (textKinds); other
	// are its other kinds; slots are the send slots of texts (slots.go).
	texts []string
	other []string
	slots TextSlots
	link  func(token string) string
	log   *slog.Logger
	// ids are the provider's ids of the text just sent (tracking.go).
	ids []string
	// held are outcomes the outbox could not record yet, oldest first;
	// recordFails counts the failed rounds of writing them, and recordAt
	// is when to try again (record.go).
	held        []*unrecorded
	recordFails int
	recordAt    time.Time
	// missed is set when idle found a job due that the claim before it
	// had not handed out, and went to look again at once (idle).
	missed bool
}

// Run sends until ctx is done, then returns nil. It returns an error only
// when the Worker is not configured to run at all.
//
// When no job of its kinds is due, Run sleeps until the earliest one
// falls due or the outbox signals new work. A job whose send has begun is
// finished (the provider or relay gets ctx, so a slow one is cut short) and
// its outcome recorded before Run returns; a job not yet begun is left for
// the next start.
func (w *Worker) Run(ctx context.Context) error {
	if w.Outbox == nil {
		return errors.New("notify: worker has no outbox")
	}
	r := worker{Worker: *w, kinds: slices.Clone(w.Kinds)}
	if len(r.kinds) == 0 {
		if w.SMS != nil {
			r.kinds = append(r.kinds, textKinds...)
		}
		if w.Mail != nil {
			r.kinds = append(r.kinds, mailKinds...)
		}
	}
	if len(r.kinds) == 0 {
		return errors.New("notify: worker has no sms provider and no mailer")
	}
	for _, k := range r.kinds {
		switch {
		case slices.Contains(textKinds, k):
			if w.SMS == nil {
				return errors.New("notify: worker has no sms provider")
			}
			if k == securetextd.JobKindText && w.PublicURL == "" {
				return errors.New("notify: worker has no public url")
			}
		case slices.Contains(mailKinds, k):
			if w.Mail == nil {
				return fmt.Errorf("notify: worker takes %q jobs but has no mailer", k)
			}
		default:
			return fmt.Errorf("notify: worker: unknown job kind %q", k)
		}
	}
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
	for _, k := range r.kinds {
		if slices.Contains(textKinds, k) {
			r.texts = append(r.texts, k)
		} else {
			r.other = append(r.other, k)
		}
	}
	// A burst of one: the first text goes at once, the next after 1/Rate.
	if s, ok := w.Outbox.(TextSlots); ok {
		r.slots = s
	} else {
		r.slots = &localSlots{}
	}
	r.link = func(token string) string { return linkFor(r.PublicURL, url.PathEscape(token)) }
	r.run(ctx)
	return nil
}

func (w *worker) run(ctx context.Context) {
	// At shutdown, a last try at the outcomes still held.
	defer w.flush(ctx, true)
	for ctx.Err() == nil {
		w.flush(ctx, false)
		if len(w.held) >= maxUnrecorded {
			// Bounded: no new work until the outbox records again.
			sleep(ctx, time.Until(w.recordAt), nil)
			continue
		}
		job, err := w.next(ctx) // slots.go
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

// idle waits until the earliest pending job of the worker's kinds falls
// due, new work is signalled, outcomes held are to be written again, or
// ctx is done.
func (w *worker) idle(ctx context.Context) {
	// Take the channel before asking NextDue, so that a job committed in
	// between still wakes us.
	wake := w.wakeChan()
	due, ok, err := w.Outbox.NextDueExcept(ctx, w.heldIDs(), w.kinds...)
	if len(w.held) > 0 && (!ok || w.recordAt.Before(due)) {
		due, ok = w.recordAt, true
	}
	// A job due now that the claim just before did not hand out was
	// committed after the claim looked and before the wake channel was
	// taken: its wake is gone, so look again at once. A second miss in a
	// row sleeps minIdle, as a confused outbox would have it.
	again := err == nil && ok && !due.After(time.Now()) && !w.missed
	w.missed = again
	switch {
	case again:
	case err != nil:
		if ctx.Err() == nil {
			w.log.Error("outbox: next due", "err", err)
			sleep(ctx, storePause, nil)
		}
	case !ok && w.Poll <= 0:
		select {
		case <-wake:
		case <-ctx.Done():
		}
	case !ok:
		sleep(ctx, w.Poll, wake)
	default:
		d := max(time.Until(due), minIdle)
		if w.Poll > 0 {
			d = min(d, w.Poll)
		}
		sleep(ctx, d, wake)
	}
}

// wakeChan returns the channel that new work of the worker's kinds
// closes: WakeMail's for a worker that sends no texts, if the outbox has
// it, Wake's otherwise.
func (w *worker) wakeChan() <-chan struct{} {
	if mw, ok := w.Outbox.(MailWaker); ok && len(w.texts) == 0 {
		return mw.WakeMail()
	}
	return w.Outbox.Wake()
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

// handle carries out one job and records its outcome. The send is cut
// short before the job's lease ends (lease.go).
func (w *worker) handle(ctx context.Context, job *securetextd.Job) {
	attempt := job.Attempts + 1
	log := w.log.With("job", job.ID, "kind", job.Kind, "attempt", attempt)
	sctx, cancel := context.WithTimeout(ctx, sendLimit(job.Kind))
	defer cancel()
	what, err := "mail", error(nil)
	switch {
	case !slices.Contains(w.kinds, job.Kind):
		if !slices.Contains(textKinds, job.Kind) && !slices.Contains(mailKinds, job.Kind) {
			err = &PermanentError{Reason: fmt.Sprintf("unknown job kind %q", job.Kind)}
			break
		}
		// An outbox that ignored our kinds: leave the job, with back-off,
		// to the worker that takes them.
		err = fmt.Errorf("outbox handed a %q job to a worker for %v", job.Kind, w.kinds)
	case job.Kind == securetextd.JobKindText:
		what = "text"
		log, err = w.text(sctx, log, job)
	case job.Kind == securetextd.JobKindCode:
		what = "code text"
		log, err = w.code(sctx, log, job)
	default:
		err = w.Mail.Send(sctx, job)
	}
	if err != nil && ctx.Err() == nil && sctx.Err() != nil {
		err = fmt.Errorf("%w (cut short after %v, before the job's lease ends)", err, sendLimit(job.Kind))
	}
	switch {
	case err == nil:
		log.Info(what + " sent")
		w.count(job.Kind, OutcomeSent)
		ids := w.ids // the provider's ids of a text, for complete
		w.record(ctx, log, job.ID, OutcomeSent, func(ctx context.Context) error { return w.complete(ctx, job, ids) })
	case IsPermanent(err):
		w.fail(ctx, log, job, err.Error())
		w.count(job.Kind, OutcomeFailed)
	case ctx.Err() != nil:
		// Cut short by shutdown: due again at once on the next start.
		log.Warn(what+" interrupted by shutdown", "err", err)
		at := time.Now()
		w.record(ctx, log, job.ID, OutcomeRetried, func(ctx context.Context) error {
			return w.Outbox.RetryClaim(ctx, job, at, "interrupted by shutdown: "+err.Error())
		})
	default:
		delay := w.backoff(attempt)
		var te *ThrottledError
		if errors.As(err, &te) && te.After > 0 {
			// The provider said when: the job is not tried before
			// then, and neither is any other text, on any node
			// (throttling is account-wide).
			delay = te.After
			w.hold(ctx, time.Now().Add(te.After))
		}
		log.Warn(what+" failed; will retry", "err", err, "delay", delay)
		at := time.Now().Add(delay)
		w.record(ctx, log, job.ID, OutcomeRetried, func(ctx context.Context) error {
			return w.Outbox.RetryClaim(ctx, job, at, err.Error())
		})
		w.count(job.Kind, OutcomeRetried)
	}
}

// text renders and sends a text job. Its slot of the SMS rate has come
// already (next, slots.go). It returns the logger with the masked phone
// added.
func (w *worker) text(ctx context.Context, log *slog.Logger, job *securetextd.Job) (*slog.Logger, error) {
	var tj securetextd.TextJob
	if err := json.Unmarshal(job.Payload, &tj); err != nil {
		return log, &PermanentError{Reason: fmt.Sprintf("unreadable text job: %v", err)}
	}
	if tj.To == "" || tj.Token == "" {
		return log, &PermanentError{Reason: "text job without phone or token"}
	}
	log = log.With("to", tj.To.Masked())
	tmpl, org, _ := w.textIn(recipientLanguage(ctx, log, w.Outbox, tj.To, tj.Language)) // reloadable (metrics.go)
	return log, w.sendSMS(ctx, job, tj.To, tmpl.Render(org, w.link(tj.Token)))
}

func (w *worker) fail(ctx context.Context, log *slog.Logger, job *securetextd.Job, reason string) {
	log.Error("job failed; giving up", "reason", reason)
	w.record(ctx, log, job.ID, OutcomeFailed, func(ctx context.Context) error { return w.Outbox.FailClaim(ctx, job, reason) })
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
