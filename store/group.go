package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"
)

// Group commit. Every message is committed with synchronous=FULL, so each
// commit costs one fsync of the WAL, and a single writer connection caps a
// disk at about a thousand commits a second. When several SMTP sessions
// commit at once, their transactions are joined into one: the first caller
// becomes the leader and runs, in one transaction, every commit that is
// waiting, and every one that queues before it commits (runPipelined); if
// one fails, the batch runs again with each commit in its own SAVEPOINT, so
// that one failing rolls back only itself (runGroup). One fsync then makes
// all of them durable, and each caller returns (and its client gets its
// 250) only after that commit. A caller that arrives while a batch
// commits waits; when the batch ends, the leader hands the lead to the
// oldest waiting caller, which takes everyone waiting as the next batch.
// No goroutine runs in the background.

// maxGroup bounds how many commits share one transaction, so that no
// caller waits behind an unbounded batch.
const maxGroup = 64

type groupReq struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx *sql.Tx) error
	done chan groupResult // buffered: one result, or the lead
}

// run runs the request's fn in tx, with its context without its
// cancellation (see updateGrouped).
func (r *groupReq) run(tx *sql.Tx) error { return r.fn(context.WithoutCancel(r.ctx), tx) }

type groupResult struct {
	err  error
	lead bool // take the lead: run the queue as the next batch
}

type committer struct {
	mu      sync.Mutex
	queue   []*groupReq
	leading bool
	// optimistic is true while runPipelined runs the batch's commits:
	// a commit may then trust what it read before the transaction, if
	// it queues a check that fails the batch when that went stale
	// (continueGuard). Only the leader's goroutine, which runs the
	// commits, reads and writes it.
	optimistic bool
}

// updateGrouped is update for commits that may share a transaction with
// others: fn runs in a transaction that may hold other callers' work, and
// the call returns once that transaction committed (or fn or the commit
// failed). fn may run more than once, each time in a fresh transaction,
// the earlier ones rolled back (see runPipelined): it must set what it
// reports to its caller anew each time.
//
// ctx decides whether fn runs at all: a caller whose context ended before
// its turn is told so and left out. Once fn runs, it runs to its end: fn
// gets ctx without its cancellation, and its statements must use that.
// The transaction is everyone's, and one caller leaving must not cut it
// short: an interrupted SQLite statement rolls the whole transaction
// back, and a cancelled pgx statement closes the connection. It is also
// cheaper: mattn/go-sqlite3 runs a statement whose context can be
// cancelled on a goroutine of its own, so that it can interrupt it, and
// the writer, which every commit waits for, then waits for that goroutine
// to be scheduled (bench/changes.md, stop 25).
func (db *DB) updateGrouped(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	r := &groupReq{ctx: ctx, fn: fn, done: make(chan groupResult, 1)}
	g := &db.group
	g.mu.Lock()
	g.queue = append(g.queue, r)
	if g.leading {
		g.mu.Unlock()
		if res := <-r.done; !res.lead {
			return res.err
		}
		g.mu.Lock()
	}
	g.leading = true
	for {
		batch := g.take(maxGroup)
		g.mu.Unlock()

		batch = db.runGroup(batch)

		g.mu.Lock()
		mine := false
		for _, b := range batch {
			mine = mine || b == r
		}
		if len(g.queue) == 0 {
			g.leading = false
			g.mu.Unlock()
			break
		}
		if mine {
			// Hand the lead to the oldest waiting caller and go.
			g.queue[0].done <- groupResult{lead: true}
			g.mu.Unlock()
			break
		}
		// More than maxGroup were waiting and ours is not done yet.
	}
	return (<-r.done).err
}

// runGroup commits batch in one transaction and tells each caller how its
// part went. The batch may grow while it runs (runPipelined): it returns
// the batch it committed.
func (db *DB) runGroup(batch []*groupReq) []*groupReq {
	// One commit goes the pipelined way too, so that callers who queue
	// while it runs can join it; and a check that failed there
	// (continueGuard) is retried here, not reported.
	batch, done := db.runPipelined(batch)
	if done {
		return batch
	}
	errs := make([]error, len(batch))
	// A context ended while waiting is that caller's own business; the
	// transaction itself must not be cut short by one caller leaving.
	db.writeTxs.Add(1)
	tx, release, err := db.beginGroup(context.Background())
	if err != nil {
		err = storageFull(err)
		db.space.note(err, db.Now())
		for _, r := range batch {
			r.done <- groupResult{err: err}
		}
		return batch
	}
	defer release()
	defer tx.Rollback()
	start := time.Now()
	single := len(batch) == 1
	ok := 0
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if single {
			errs[i] = r.run(tx)
		} else {
			errs[i] = db.inSavepoint(tx, r)
		}
		if errs[i] == nil {
			ok++
		}
	}
	if ok > 0 {
		err = db.commitGroup(tx, commitStatement)
	} else {
		tx.Rollback()
	}
	db.held(start)
	// One outcome for the space of the whole batch: full if any commit in
	// it ran out of space, clear if it committed and none did.
	var space error
	if ok > 0 {
		space = err
	}
	for i, r := range batch {
		if errs[i] == nil {
			errs[i] = err
		}
		errs[i] = storageFull(errs[i])
		if errors.Is(errs[i], errStorageFull) {
			space = errs[i]
		}
		r.done <- groupResult{err: errs[i]}
	}
	if ok > 0 || space != nil {
		db.space.note(storageFull(space), db.Now())
	}
	return batch
}

// inSavepoint runs r's fn so that its failure undoes only what fn did, the
// memo of ids and the audit chain's head included (txmemo.go). The
// RELEASE sends what fn queued (pipeline.go), so that an error of fn's
// queued statements is fn's failure too, and rolls back only fn.
func (db *DB) inSavepoint(tx *sql.Tx, r *groupReq) error {
	ctx := context.Background()
	if _, err := tx.ExecContext(later(ctx), "SAVEPOINT one_commit"); err != nil {
		return err
	}
	memo := db.saveMemo()
	err := r.run(tx)
	if err == nil {
		if _, err = tx.ExecContext(ctx, "RELEASE one_commit"); err == nil {
			return nil
		}
	}
	db.restoreMemo(memo)
	if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO one_commit"); rerr != nil {
		return errors.Join(err, rerr)
	}
	tx.ExecContext(ctx, "RELEASE one_commit")
	return err
}

// runPipelined tries to commit batch as runGroup does, without a savepoint
// per commit. On SQLite a savepoint is not free: its journal keeps a copy
// of every page of the database that the commit changes a first time
// inside it, about thirty for a small message (a leaf of each table and
// index it writes), spilled past 64 KiB to a temporary file; measured
// (TestSmallCommitWrites), a group of 16 small messages wrote 129 KB per
// message that way, for 14 KB of WAL. On PostgreSQL it commits in two
// round trips rather than two or more per commit. The statements a
// commit queues (pipeline.go, sqlitequeue.go) wait until something needs
// an answer;
// runGroup sends them at each commit's RELEASE, so that an error among
// them is that commit's alone, and waits for the server's answer before
// running the next commit, all under the write lock. Most batches have no
// error: runPipelined begins with the lock and the memo in one round trip
// (beginGroup), runs every commit without a savepoint, and sends all
// their rows with the COMMIT in the other, the rows of each INSERT merged
// into one statement (mergeRows). If anything fails before the COMMIT (a
// commit's own check, or a row the server refuses, which it cannot tell
// whose), it rolls the whole transaction back and reports false, and
// runGroup commits the batch again the careful way, where each commit
// stands or falls alone: fn may so run twice, in two transactions, the
// first rolled back.
//
// Commits that queue while the batch's commits run join it, before its
// COMMIT (admit), up to maxGroup: they share its fsync rather than wait for
// it and then for one of their own, and the next batch does not wait for a
// hand-over of the lead (updateGrouped), which on a busy machine waits for
// a CPU. Without that, the first commit to arrive after a batch often ran
// alone: a third of the batches held one message (bench/changes.md).
//
// It reports true when it told every caller how its commit went, and
// returns the batch, with the callers it admitted.
func (db *DB) runPipelined(batch []*groupReq) ([]*groupReq, bool) {
	ctx := context.Background()
	db.writeTxs.Add(1)
	tx, release, err := db.beginGroup(ctx)
	if err != nil {
		return batch, false // runGroup tries, and reports why not
	}
	defer release()
	defer tx.Rollback()
	start := time.Now()
	defer db.held(start)
	ok := 0
	db.group.optimistic = true
	defer func() { db.group.optimistic = false }()
	errs := make([]error, 0, len(batch))
	for i := 0; i < len(batch); i++ {
		r := batch[i]
		if err := r.ctx.Err(); err != nil {
			errs = append(errs, err)
		} else if err := r.run(tx); err != nil {
			return batch, false
		} else {
			errs = append(errs, nil)
			ok++
		}
		if i == len(batch)-1 {
			// On SQLite the rows run now, merged: the commits that
			// queue meanwhile join the batch.
			if _, err := tx.ExecContext(ctx, mergedRunStatement); err != nil {
				return batch, false
			}
			batch = append(batch, db.group.admit(maxGroup-len(batch))...)
		}
	}
	db.group.optimistic = false
	if ok == 0 {
		return batch, false
	}
	err = db.commitGroup(tx, mergedCommitStatement)
	var refused *queuedError
	if errors.As(err, &refused) {
		return batch, false // a row the server refused: whose, runGroup tells
	}
	space := err
	for i, r := range batch {
		if errs[i] == nil {
			errs[i] = storageFull(err)
		}
		r.done <- groupResult{err: errs[i]}
	}
	db.space.note(storageFull(space), db.Now())
	return batch, true
}

// admit takes up to n callers from the queue, into the batch running.
func (g *committer) admit(n int) []*groupReq {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.take(n)
}

// take removes up to n callers from the head of the queue and returns
// them; g.mu must be held.
func (g *committer) take(n int) []*groupReq {
	n = max(0, min(n, len(g.queue)))
	batch := g.queue[:n:n]
	g.queue = g.queue[n:]
	return batch
}

// commitGroup commits tx. The statements still queued (pipeline.go,
// sqlitequeue.go) go first, their rows merged when statement is
// mergedCommitStatement; on PostgreSQL in one round trip with the COMMIT
// (commitQueued). If one of them failed, the error is a *queuedError and
// tx is still to be rolled back.
func (db *DB) commitGroup(tx *sql.Tx, statement string) error {
	if _, err := tx.ExecContext(context.Background(), statement); err != nil {
		return err
	}
	return tx.Commit() // PostgreSQL: database/sql's bookkeeping, sends nothing
}
