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
// and so reports the commit's own errors to it). On SQLite, later changes
// nothing.

// laterKey marks a context whose statement may be queued.
type laterKey struct{}

// later returns ctx marked so that a statement run with it may be queued
// (see above).
func later(ctx context.Context) context.Context { return context.WithValue(ctx, laterKey{}, true) }

// queued is a statement waiting in a connection's pipeline.
type queued struct {
	query string
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
	c.pending = append(c.pending, queued{query: rebind(query), args: values(args)})
	return true
}

// flush sends the queued statements, then last if it is not empty, in
// one pipeline, and returns last's row count, or the first error.
func (c *rebindConn) flush(ctx context.Context, last string, args []driver.NamedValue) (driver.Result, error) {
	if len(c.pending) == 0 {
		return nil, nil
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
	t.c.inTx = false
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
	t.c.trip()
	return unreachable(t.Tx.Rollback())
}
