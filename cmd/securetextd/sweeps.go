package main

import (
	"context"
	"time"

	"github.com/securetextd/securetextd/store"
)

// Sweeps on a cluster. Every node runs the same timers, and each sweep
// runs on one node at a time (store.Exclusive: an advisory lock on
// PostgreSQL, a file lock on SQLite): a node whose turn finds the sweep
// running elsewhere skips it. Each run is written to the store's sweep
// log, which `store.DB.VerifySweeps` checks.

// clusterPoll is how often an idle outbox worker looks for jobs that
// other nodes queued (notify.Worker.Poll): only on PostgreSQL, where
// nodes share the outbox but not their wake-ups.
const clusterPoll = 5 * time.Second

// outboxPoll is Worker.Poll for the store's engine.
func outboxPoll(db *store.DB) time.Duration {
	if db.Engine() == store.Postgres {
		return clusterPoll
	}
	return 0 // one process: its own commits wake it
}

// sweep runs fn as this node's turn of the sweep called name, unless
// another node (or `securetextd purge`) runs it now, and logs a failure.
func (m *Main) sweep(ctx context.Context, name string, fn func(ctx context.Context) error) {
	ran, err := m.db.Exclusive(ctx, name, fn)
	m.sweepDone(ctx, name, ran, err)
}

// sweepDone logs how this node's turn of the sweep called name went: its
// failure, or that another node ran it.
func (m *Main) sweepDone(ctx context.Context, name string, ran bool, err error) {
	switch {
	case ctx.Err() != nil:
	case err != nil:
		m.Logger.Error("sweep", "sweep", name, "err", err)
	case !ran:
		m.Logger.Debug("sweep skipped: another node runs it", "sweep", name)
	}
}
