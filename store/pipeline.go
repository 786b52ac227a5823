package store

import (
	"context"
	"database/sql/driver"
	"errors"

	"github.com/jackc/pgx/v5"
)

// Pipelined writes. A message's commit is a dozen INSERTs whose results
// nobody reads: its blob, chunk, message and part rows, its job, its
// audit rows. On SQLite each is a function call; on PostgreSQL each is a
// round trip to the server, and they run while the write lock (engine.go)
// makes every node wait. A statement run with a context from later(ctx)
// is therefore not sent at once on PostgreSQL: the connection queues it,
// and sends the queue in one pipeline (pgx's batch: one write, one Sync)
// ahead of the next statement that is not queued, or of the commit.
//
// What that changes for the caller: a queued statement returns no error
// and no row count (its Result says so if asked); its error, if any, is
// the error of the statement that sent the queue, or of the commit. So
// queue only statements whose result the code does not read, in a
// transaction whose failure is handled as a whole: a write transaction,
// or one commit of a group (inSavepoint, whose RELEASE sends the queue
// and so reports the commit's own errors to it). SQLite's writer queues
// them too, for the rows it then merges (sqlitequeue.go).

// laterKey marks a context whose statement may be queued.
type laterKey struct{}

// later returns ctx marked so that a statement run with it may be queued
// (see above).
func later(ctx context.Context) context.Context { return context.WithValue(ctx, laterKey{}, true) }

// queued is a statement waiting in a connection's pipeline.
type queued struct {
	orig  string // as written, with "?" (see mergeRows)
	query string // rebound
	args  []any
}

// errQueuedResult is what a queued statement's Result says when asked
// for a count: the statement has not run yet.
var errQueuedResult = errors.New("store: a queued statement has no result yet (run it without later to read one)")

type queuedResult struct{}

func (queuedResult) LastInsertId() (int64, error) { return 0, errQueuedResult }
func (queuedResult) RowsAffected() (int64, error) { return 0, errQueuedResult }

// queue adds a statement to the connection's pipeline, when it may wait:
// ctx allows it and a transaction is open (outside one, a statement
// commits by itself, and nothing would send it).
func (c *rebindConn) queue(ctx context.Context, query string, args []driver.NamedValue) bool {
	if !c.inTx || ctx.Value(laterKey{}) == nil {
		return false
	}
	c.pending = append(c.pending, queued{orig: query, query: rebind(query), args: values(args)})
	return true
}

// flush sends the queued statements, then last if it is not empty, in
// one pipeline, and returns last's row count, or the first error.
func (c *rebindConn) flush(ctx context.Context, last string, args []driver.NamedValue) (driver.Result, error) {
	if len(c.pending) == 0 {
		return nil, nil
	}
	if last == mergedCommitStatement {
		c.pending = mergeRows(c.pending, rebind, allRows)
	}
	b := &pgx.Batch{}
	for _, q := range c.pending {
		b.Queue(q.query, q.args...)
	}
	if last != "" {
		b.Queue(rebind(last), values(args)...)
	}
	n := len(c.pending)
	c.pending = c.pending[:0]
	c.trip()
	br := c.Conn.Conn().SendBatch(ctx, b)
	var first error
	var res driver.Result = queuedResult{}
	for i := range b.Len() {
		tag, err := br.Exec()
		if err != nil && first == nil {
			first = err
			if i < n {
				first = &queuedError{err}
			}
		}
		if i == n {
			res = driver.RowsAffected(tag.RowsAffected())
		}
	}
	if err := br.Close(); err != nil && first == nil {
		first = err
	}
	return res, first
}

// queuedError is the error of a queued statement, sent ahead of another
// (see flush).
type queuedError struct{ err error }

func (e *queuedError) Error() string { return e.err.Error() }
func (e *queuedError) Unwrap() error { return e.err }

// commitStatement, run with ExecContext in a transaction, sends the
// queue and the COMMIT in one round trip (commitQueued), where a commit
// would send them one after the other. mergedCommitStatement does so with
// the queue's rows merged (mergeRows), for runPipelined, which commits
// its batch again without if anything fails.
//
// mergedRunStatement, run with ExecContext in a transaction, runs the
// queue at once on SQLite, its rows merged, and sends nothing on
// PostgreSQL, where the queue goes with the COMMIT: runPipelined runs it
// when it would admit more commits to its batch, so that the time the
// rows take is time in which others can queue and join (sqlitequeue.go).
const (
	commitStatement       = "COMMIT"
	mergedCommitStatement = "COMMIT -- rows merged"
	mergedRunStatement    = "-- run the queue, rows merged"
)

// commitQueued sends the queue and COMMIT in one pipeline. An error of a
// queued statement comes back as a *queuedError, and the transaction is
// then still open (and failed): roll it back. Otherwise the COMMIT ran,
// and the transaction is over, committed or not: the transaction's
// Commit then sends nothing.
func (c *rebindConn) commitQueued(ctx context.Context, statement string) (driver.Result, error) {
	var err error
	if len(c.pending) > 0 {
		_, err = c.flush(ctx, statement, nil)
	} else {
		c.trip()
		_, err = c.Conn.ExecContext(ctx, commitStatement, nil)
	}
	var q *queuedError
	if !errors.As(err, &q) {
		c.ended = true
	}
	return queuedResult{}, err
}

// values turns database/sql's arguments into pgx's.
func values(args []driver.NamedValue) []any {
	vs := make([]any, len(args))
	for i, a := range args {
		vs[i] = a.Value
	}
	return vs
}

// pipelineTx is a transaction whose commit sends the queue first, and
// whose rollback drops it.
type pipelineTx struct {
	driver.Tx
	c *rebindConn
}

func (t pipelineTx) Commit() error {
	defer func() { t.c.inTx = false }() // its round trips count as in it
	if t.c.ended {
		t.c.ended = false // commitQueued sent the COMMIT
		return nil
	}
	if _, err := t.c.flush(context.Background(), "", nil); err != nil {
		t.c.pending = t.c.pending[:0]
		t.Tx.Rollback()
		return unreachable(err)
	}
	t.c.trip()
	return unreachable(t.Tx.Commit())
}

func (t pipelineTx) Rollback() error {
	t.c.inTx = false
	t.c.pending = t.c.pending[:0]
	if t.c.ended {
		t.c.ended = false // the COMMIT ran, and failed: nothing to roll back
		return nil
	}
	t.c.count()
	return unreachable(t.Tx.Rollback())
}
