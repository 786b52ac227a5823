package notify

import (
	"context"
	"sync"
	"time"

	"github.com/securetextd/securetextd"
)

// Send slots. The SMS rate (Worker.Rate, sms.rate) spaces texts one
// interval apart. When the Outbox is also a TextSlots (*store.DB is), the
// slots come from the store and the rate holds for every node that shares
// it; otherwise the worker keeps its own.
//
// A text worker takes its slot first and claims its text after: it asks
// whether a text is due, takes the next slot, sleeps until the slot begins
// holding no transaction and no lock, then claims the text and sends it at
// once. A slot taken when no text was left to claim (another node took it)
// is given back when no later slot was taken since; else it is lost,
// which only ever slows texts down.

// TextSlots hands out the moments at which texts may be sent.
type TextSlots interface {
	// TakeTextSlot takes the next slot at one text per interval and
	// returns when it begins: now, or later when earlier slots are taken.
	TakeTextSlot(ctx context.Context, now time.Time, interval time.Duration) (time.Time, error)
	// ReturnTextSlot gives back an unused slot, if it was the last one
	// taken.
	ReturnTextSlot(ctx context.Context, slot time.Time, interval time.Duration) error
	// HoldTexts gives out no slot that begins before until: the provider
	// asked the account to slow down.
	HoldTexts(ctx context.Context, until time.Time) error
}

// localSlots are the slots of one worker, for an Outbox that keeps none:
// the same theoretical-arrival-time rule as the store's (store/smsrate.go),
// in memory.
type localSlots struct {
	mu  sync.Mutex
	tat time.Time // when the next free slot begins
}

func (s *localSlots) TakeTextSlot(ctx context.Context, now time.Time, interval time.Duration) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	slot := now
	if s.tat.After(now) {
		slot = s.tat
	}
	s.tat = slot.Add(interval)
	return slot, nil
}

func (s *localSlots) ReturnTextSlot(ctx context.Context, slot time.Time, interval time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tat.Equal(slot.Add(interval)) {
		s.tat = slot
	}
	return nil
}

func (s *localSlots) HoldTexts(ctx context.Context, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tat.Before(until) {
		s.tat = until
	}
	return nil
}

// errNoJob says that no job of the worker's is due.
var errNoJob = securetextd.Errorf(securetextd.ENOTFOUND, "No job is due.")

// next claims the next job due, or returns errNoJob. Jobs of other kinds
// than texts go first, as they need no slot (a worker that takes both is
// for tests; the daemon runs one of each). A text is claimed once its slot
// has come.
func (w *worker) next(ctx context.Context) (*securetextd.Job, error) {
	held := w.heldIDs()
	if len(w.other) > 0 {
		job, err := w.Outbox.ClaimJob(ctx, time.Now(), mailLease, held, w.other...)
		if securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
			return job, err
		}
	}
	if len(w.texts) == 0 {
		return nil, errNoJob
	}
	due, ok, err := w.Outbox.NextDueExcept(ctx, held, w.texts...)
	if err != nil {
		return nil, err
	}
	if !ok || due.After(time.Now()) {
		return nil, errNoJob
	}
	interval := w.interval()
	slot, err := w.slots.TakeTextSlot(ctx, time.Now(), interval)
	if err != nil {
		return nil, err
	}
	if d := time.Until(slot); d > 0 {
		if sleep(ctx, d, nil); ctx.Err() != nil {
			w.returnSlot(ctx, slot, interval)
			return nil, ctx.Err()
		}
	}
	job, err := w.Outbox.ClaimJob(ctx, time.Now(), textLease, held, w.texts...)
	if err != nil {
		w.returnSlot(ctx, slot, interval)
		return nil, err
	}
	return job, nil
}

// returnSlot gives back a slot that no text used, if it can.
func (w *worker) returnSlot(ctx context.Context, slot time.Time, interval time.Duration) {
	if err := w.write(ctx, func(ctx context.Context) error { return w.slots.ReturnTextSlot(ctx, slot, interval) }); err != nil {
		w.log.Warn("outbox: return an unused text slot", "err", err)
	}
}

// hold keeps every text, on every node that shares the slots, from going
// before until.
func (w *worker) hold(ctx context.Context, until time.Time) {
	if err := w.write(ctx, func(ctx context.Context) error { return w.slots.HoldTexts(ctx, until) }); err != nil {
		w.log.Error("outbox: hold texts after the provider's throttle", "err", err)
	}
}

// interval is the time between two texts at the current rate.
func (w *worker) interval() time.Duration {
	return time.Duration(float64(time.Second) / w.rate())
}
