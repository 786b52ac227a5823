package main

import (
	"context"
	"time"

	"github.com/securetextd/securetextd/store"
)

// maxSessionSweepEvery bounds how long an ended portal session (idle too
// long, too old) stays in the database before the sweep deletes it. The
// store never answers for it meanwhile: a lookup checks both limits.
const maxSessionSweepEvery = 5 * time.Minute

// sessionSweepEvery is how often the sweep runs for an idle timeout: at
// least twice per idle period, at most every maxSessionSweepEvery.
func sessionSweepEvery(idle time.Duration) time.Duration {
	return min(maxSessionSweepEvery, max(idle/2, time.Second))
}

// sweepSessions deletes the portal's ended sessions on a timer, with the
// limits the portal runs with now (a reload may change them), so that a
// lookup of a session never has to: an unknown or ended cookie is
// answered from the read path, never with a write. It also deletes the
// rows of the shared limits (lockouts, the AUTH throttle) that have
// expired, so that a quiet gateway forgets phone numbers and addresses
// once their counts no longer matter.
func (m *Main) sweepSessions(ctx context.Context) error {
	for {
		idle, _ := m.ops.portal.Load().SessionLimits()
		t := time.NewTimer(sessionSweepEvery(idle))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		idle, lifetime := m.ops.portal.Load().SessionLimits()
		m.sweep(ctx, store.SweepSessions, func(ctx context.Context) error { // one node at a time (sweeps.go)
			n, err := m.db.SweepSessions(ctx, idle, lifetime)
			if n > 0 {
				m.Logger.Debug("ended sessions swept", "sessions", n)
			}
			if err != nil {
				return err
			}
			return m.sweepConsoleSessions(ctx)
		})
		// The shared limits' rows that count nothing any more, on the
		// same timer and one node at a time (store.SweepLimits).
		m.sweep(ctx, store.SweepLimitRows, func(ctx context.Context) error {
			n, err := m.db.SweepLimits(ctx)
			if n > 0 {
				m.Logger.Debug("expired limits swept", "rows", n)
			}
			return err
		})
	}
}
