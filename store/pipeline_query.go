package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
)

// A query that a commit must read, in a transaction whose earlier
// statements are queued (pipeline.go), would cost two round trips under
// the write lock: one that sends the queue, one for the query. Run with a
// context from along(ctx), it goes in the same pipeline as the queue, at
// its end: one round trip. A message joining its conversation reads that
// conversation so (latestConversation, joinConversation), and in a group
// commit the queue it rides with holds the rows of the messages before it.
//
// Only queries marked so take this path, as their rows come back through
// pgx's own decoding (alongRows) rather than database/sql's driver: their
// columns must be of the plain types alongRows turns into driver values
// (integers, text, bytea, booleans, times, NULL). On SQLite, along changes
// nothing.

// alongKey marks a context whose query may ride with the queue.
type alongKey struct{}

// along returns ctx marked so that a query run with it is sent with the
// queued statements (see above).
func along(ctx context.Context) context.Context { return context.WithValue(ctx, alongKey{}, true) }

// queryAlong sends the queue, then query, in one pipeline, and returns
// query's rows; an error of a queued statement comes back as a
// *queuedError, as flush's does.
func (c *rebindConn) queryAlong(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	b := &pgx.Batch{}
	for _, q := range c.pending {
		b.Queue(q.query, q.args...)
	}
	b.Queue(rebind(query), values(args)...)
	n := len(c.pending)
	c.pending = c.pending[:0]
	c.trip()
	br := c.Conn.Conn().SendBatch(ctx, b)
	for range n {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, &queuedError{err}
		}
	}
	rows, err := br.Query()
	if err != nil {
		rows.Close()
		br.Close()
		return nil, err
	}
	return &alongRows{rows: rows, batch: br}, nil
}

// alongRows are the rows of a query sent by queryAlong.
type alongRows struct {
	rows  pgx.Rows
	batch pgx.BatchResults
}

func (r *alongRows) Columns() []string {
	fields := r.rows.FieldDescriptions()
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	return names
}

func (r *alongRows) Next(dest []driver.Value) error {
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	vals, err := r.rows.Values()
	if err != nil {
		return err
	}
	for i, v := range vals {
		switch v := v.(type) {
		case nil, int64, float64, bool, string, []byte, time.Time:
			dest[i] = v
		case int32:
			dest[i] = int64(v)
		case int16:
			dest[i] = int64(v)
		case float32:
			dest[i] = float64(v)
		default:
			return fmt.Errorf("store: a query sent along the queue returned column %q as %T: run it without along", r.rows.FieldDescriptions()[i].Name, v)
		}
	}
	return nil
}

func (r *alongRows) Close() error {
	r.rows.Close()
	return errors.Join(r.rows.Err(), r.batch.Close())
}
