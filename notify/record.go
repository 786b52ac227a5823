package notify

import (
	"context"
	"log/slog"
	"time"

	"github.com/securetextd/securetextd"
)

// Recording outcomes. Once the provider or the relay has accepted a job,
// sending it again is the one thing the worker must not do: a patient who
// gets the same text every five seconds stops trusting it. So an outcome
// the outbox could not record (the disk is full, the database is locked)
// is kept in memory and written again with back-off, and the job is left
// out of the work the worker asks for until it is: this process never
// carries out a job twice. Other jobs go on meanwhile, up to
// maxUnrecorded outcomes held; past that the worker takes no new work
// until the outbox records again. A crash, or a shutdown while the outbox
// still refuses, loses what is held: the jobs are then carried out again
// after the restart (delivery stays at least once).

const (
	// recordTimeout bounds each write of an outcome. That write runs even
	// after shutdown has begun: a text that was sent must be marked sent,
	// or it would be sent again.
	recordTimeout = 10 * time.Second
	// After failed round n of writing the outcomes held, the next waits
	// recordMinBackoff·2^(n-1), at most recordMaxBackoff.
	recordMinBackoff = time.Second
	recordMaxBackoff = 30 * time.Second
	// maxUnrecorded bounds the outcomes held in memory.
	maxUnrecorded = 32
)

// unrecorded is the outcome of a job that the outbox has yet to record.
type unrecorded struct {
	id    int64
	what  string // "sent", "failed", "retry": for the log
	log   *slog.Logger
	write func(context.Context) error
}

// record writes a job's outcome, even when ctx is already cancelled. When
// the outbox fails, the outcome is held and written again later (flush),
// and the job is not handed out to this worker meanwhile. While outcomes
// are held, a new one joins them, so that they are written in order.
func (w *worker) record(ctx context.Context, log *slog.Logger, id int64, what string, write func(context.Context) error) {
	if len(w.held) == 0 {
		err := w.write(ctx, write)
		if err == nil {
			return
		}
		if !retryable(err) {
			log.Error("outbox: record outcome", "outcome", what, "err", err)
			return
		}
		log.Error("outbox: record outcome; holding it to write again", "outcome", what, "err", err)
		w.recordFailed()
	} else {
		log.Warn("outbox: outcome held until the outbox records again", "outcome", what, "held", len(w.held)+1)
	}
	w.held = append(w.held, &unrecorded{id: id, what: what, log: log, write: write})
}

// flush writes the outcomes held, oldest first, once their back-off has
// passed (or at once when final, at shutdown). It stops at the first
// failure: an outbox that records nothing is asked again only after the
// back-off, not once per outcome.
func (w *worker) flush(ctx context.Context, final bool) {
	if len(w.held) == 0 || (!final && time.Now().Before(w.recordAt)) {
		return
	}
	for len(w.held) > 0 {
		u := w.held[0]
		err := w.write(ctx, u.write)
		switch {
		case err == nil:
			u.log.Info("outbox: held outcome recorded", "outcome", u.what)
		case !retryable(err):
			u.log.Error("outbox: held outcome cannot be recorded; dropped", "outcome", u.what, "err", err)
		case final:
			// One try at shutdown: an outbox that fails now would
			// fail the others too, each after recordTimeout.
			for _, u := range w.held {
				u.log.Error("outbox: held outcome lost at shutdown; the job will run again after a restart", "outcome", u.what, "err", err)
			}
			w.held = nil
			return
		default:
			w.recordFailed()
			u.log.Warn("outbox: record held outcome", "outcome", u.what, "err", err, "next", time.Until(w.recordAt))
			return
		}
		w.held = w.held[1:]
	}
	w.recordFails = 0
}

// write runs one write of an outcome, bounded by recordTimeout, whether or
// not ctx is done.
func (w *worker) write(ctx context.Context, write func(context.Context) error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	return write(rctx)
}

// recordFailed counts a failed round and sets when to try again.
func (w *worker) recordFailed() {
	w.recordFails++
	d := recordMinBackoff
	for i := 1; i < w.recordFails && d < recordMaxBackoff; i++ {
		d *= 2
	}
	w.recordAt = time.Now().Add(min(d, recordMaxBackoff))
}

// heldIDs returns the ids of the jobs whose outcome is held: the outbox
// must not hand them out again.
func (w *worker) heldIDs() []int64 {
	ids := make([]int64, len(w.held))
	for i, u := range w.held {
		ids[i] = u.id
	}
	return ids
}

// retryable reports whether writing an outcome that failed with err may
// work later. A job that is gone, or no longer pending (finished by a
// write that reported an error after it committed), will stay so; so will
// a job claimed again by another worker once this one's lease ran out.
func retryable(err error) bool {
	switch securetextd.ErrorCode(err) {
	case securetextd.ENOTFOUND, securetextd.ECONFLICT:
		return false
	}
	return true
}
