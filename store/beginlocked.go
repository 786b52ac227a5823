package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"

	"github.com/jackc/pgx/v5"
)

// A group commit on PostgreSQL begins in one round trip: BEGIN, the write
// lock and the memo's query (txmemo.go) go to the server in one pipeline.
// The lock is a statement of its own, before the query, so that the
// query, at READ COMMITTED, reads with a snapshot taken after the lock was
// granted: it sees every commit made under the lock before. Sent one at a
// time, they were three round trips, the last of them, and the time the
// server took to answer the lock, while every node waited for the lock.

// beginGroup begins a write transaction holding the write lock, with the
// memo read, for a group commit. Call release once the transaction is
// committed or rolled back. On SQLite it is beginWrite.
func (db *DB) beginGroup(ctx context.Context) (tx *sql.Tx, release func(), err error) {
	if db.eng.name != Postgres {
		tx, err := db.beginWrite(ctx)
		return tx, func() {}, err
	}
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	var next [len(idTables)]int64
	var seq sql.NullInt64
	var hash []byte
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*rebindConn)
		if !ok {
			return errors.New("store: begin group: not a PostgreSQL connection")
		}
		return c.beginLocked(ctx, db.eng.lock, memoQuery, &next[0], &next[1], &next[2], &next[3], &next[4], &next[5], &seq, &hash)
	})
	if err == nil {
		tx, err = conn.BeginTx(ctx, nil)
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	db.memo.preset(tx, next, seq, hash)
	return tx, func() { conn.Close() }, nil
}

// beginLocked sends BEGIN, lock and query in one pipeline and scans the
// query's row into dest. The connection's next BeginTx then takes the
// transaction so begun, without sending anything.
func (c *rebindConn) beginLocked(ctx context.Context, lock, query string, dest ...any) error {
	if c.inTx || c.begun {
		return errors.New("store: begin: a transaction is open")
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(lock)
	b.Queue(query)
	c.count() // it begins one
	br := c.Conn.Conn().SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil {
		_, err = br.Exec()
	}
	if err == nil {
		err = br.QueryRow().Scan(dest...)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// Whatever of it ran, undo it.
		c.count()
		c.Conn.Conn().Exec(context.Background(), "ROLLBACK")
		return unreachable(err)
	}
	c.begun = true
	return nil
}

// begunTx is the transaction beginLocked began: its commit and rollback
// are statements on the connection.
type begunTx struct{ c *rebindConn }

func (t begunTx) Commit() error {
	_, err := t.c.Conn.Conn().Exec(context.Background(), "COMMIT")
	return err
}

func (t begunTx) Rollback() error {
	_, err := t.c.Conn.Conn().Exec(context.Background(), "ROLLBACK")
	return err
}

var _ driver.Tx = begunTx{}
