package store

import (
	"context"
	"database/sql/driver"

	"github.com/mattn/go-sqlite3"
)

// Queued writes on SQLite. A statement is a function call there, not a
// round trip, but each still costs its own trip through the driver and a
// virtual machine started and stopped, and a group commit runs a dozen
// for each of its messages while every other commit waits for the writer.
// So the writer's connection queues the statements run with later(ctx) in
// a transaction, as PostgreSQL's does (pipeline.go), and runs them in
// order before the next statement that is not queued, or at the commit.
// When runPipelined has run its batch's commits, it runs the queue with
// the rows of each INSERT text merged into multi-row INSERTs
// (mergedRunStatement, mergeRows): ten messages, a few dozen statements
// rather than a hundred. What that changes for the caller is what it
// changes on PostgreSQL: a queued statement reports no count, and its
// error is that of the statement that ran the queue, as a *queuedError.

// sqliteConn is the writer's SQLite connection, with its queue.
type sqliteConn struct {
	*sqlite3.SQLiteConn
	inTx    bool
	pending []queued
	args    []driver.NamedValue // run's, kept between statements
}

// queue adds a statement to the queue, when it may wait: ctx allows it
// and a transaction is open.
func (c *sqliteConn) queue(ctx context.Context, query string, args []driver.NamedValue) bool {
	if !c.inTx || ctx.Value(laterKey{}) == nil {
		return false
	}
	c.pending = append(c.pending, queued{orig: query, query: query, args: values(args)})
	return true
}

// run runs the queued statements in order, their rows merged if merge,
// and empties the queue. The first error stops it, as a *queuedError.
func (c *sqliteConn) run(ctx context.Context, merge bool) error {
	if len(c.pending) == 0 {
		return nil
	}
	// The queue's array is kept for the next transaction, emptied: it
	// held the rows' values, a message's sealed bytes among them.
	defer func() {
		clear(c.pending)
		c.pending = c.pending[:0]
		clear(c.args)
		c.args = c.args[:0]
	}()
	qs := c.pending
	if merge {
		qs = mergeRows(qs, func(q string) string { return q }, powerOfTwoRows)
	}
	for _, q := range qs {
		c.args = c.args[:0]
		for i, v := range q.args {
			c.args = append(c.args, driver.NamedValue{Ordinal: i + 1, Value: v})
		}
		if _, err := c.SQLiteConn.ExecContext(ctx, q.query, c.args); err != nil {
			return &queuedError{err}
		}
	}
	return nil
}

func (c *sqliteConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.inTx && (query == commitStatement || query == mergedCommitStatement || query == mergedRunStatement) {
		// commitGroup's statement, or runPipelined's: the queue runs
		// now, and the transaction's Commit commits.
		return queuedResult{}, c.run(ctx, query != commitStatement)
	}
	if c.queue(ctx, query, args) {
		return queuedResult{}, nil
	}
	if err := c.run(ctx, false); err != nil {
		return nil, err
	}
	return c.SQLiteConn.ExecContext(ctx, query, args)
}

func (c *sqliteConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := c.run(ctx, false); err != nil {
		return nil, err
	}
	return c.SQLiteConn.QueryContext(ctx, query, args)
}

func (c *sqliteConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *sqliteConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if err := c.run(ctx, false); err != nil {
		return nil, err
	}
	return c.SQLiteConn.PrepareContext(ctx, query)
}

func (c *sqliteConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *sqliteConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.SQLiteConn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	c.inTx = true
	return sqliteTx{Tx: tx, c: c}, nil
}

// sqliteTx is a transaction whose commit runs the queue first, and whose
// rollback drops it.
type sqliteTx struct {
	driver.Tx
	c *sqliteConn
}

func (t sqliteTx) Commit() error {
	defer func() { t.c.inTx = false }()
	if err := t.c.run(context.Background(), false); err != nil {
		t.Tx.Rollback()
		return err
	}
	return t.Tx.Commit()
}

func (t sqliteTx) Rollback() error {
	t.c.inTx = false
	clear(t.c.pending)
	t.c.pending = t.c.pending[:0]
	return t.Tx.Rollback()
}

// Conn returns the driver's connection, for what only it can do.
func (c *sqliteConn) Conn() *sqlite3.SQLiteConn { return c.SQLiteConn }

var (
	_ driver.ExecerContext      = (*sqliteConn)(nil)
	_ driver.QueryerContext     = (*sqliteConn)(nil)
	_ driver.ConnBeginTx        = (*sqliteConn)(nil)
	_ driver.ConnPrepareContext = (*sqliteConn)(nil)
	_ driver.Pinger             = (*sqliteConn)(nil)
)
