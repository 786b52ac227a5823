package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// Telling a dead node from a live one. On PostgreSQL, every serving node
// holds, for as long as it lives, a session-level advisory lock on a key
// of its own (its node key, random at each start) on a connection of its
// own. The server frees a session's locks when the session ends, and a
// node that dies (SIGKILL, a crash, a lost machine) ends its sessions:
// their sockets close, or TCP keepalives give up on them. So another node
// that can take the lock knows its holder is gone.
//
// What a node does on the node's behalf carries its key: the claims of
// jobs (jobs.claim_node) and the blobs of uploads under way (blobs.node).
// Reap, at each start and every reapEvery after, frees the claims of dead
// nodes at once (due again, without waiting for their leases to end) and
// deletes their pending blobs (an upload that no one will finish). A
// node's own key, and key 0 (rows from SQLite, or written before), are
// never reaped this way: leases and the hourly orphan sweep cover them.
//
// If a live node loses its lock connection (the network between it and
// the server breaks for longer than the keepalives), another node may
// reap it: its upload under way is then refused at commit (451, and the
// client sends again), and a text it is sending may go out twice, as
// after a kill. The node takes its lock again as soon as it can.

// reapEvery is how often a node looks for dead nodes' claims and uploads.
const reapEvery = 5 * time.Second

// nodeState is the node's lock on its key.
type nodeState struct {
	mu   sync.Mutex
	key  int64
	conn *sql.Conn // holds the lock on key; nil until StartNode
	stop chan struct{}
	done chan struct{}
}

// newNodeKey returns a random positive key that is not the write lock's.
func newNodeKey() int64 {
	for {
		var b [8]byte
		rand.Read(b[:])
		k := int64(binary.BigEndian.Uint64(b[:]) >> 1)
		if k != 0 && k != writeLockKey {
			return k
		}
	}
}

// holdNodeLock takes the node's lock on a connection of its own, unless
// it holds it already on a connection that still answers.
func (db *DB) holdNodeLock(ctx context.Context) error {
	n := &db.nodeLock
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn != nil {
		if err := n.conn.PingContext(ctx); err == nil {
			return nil
		}
		n.conn.Close()
		n.conn = nil
	}
	conn, err := db.locks.Conn(ctx)
	if err != nil {
		return err
	}
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(?)`, n.key).Scan(&got); err != nil {
		conn.Close()
		return err
	}
	if !got {
		conn.Close()
		return fmt.Errorf("the node key %d is held by another session", n.key)
	}
	n.conn = conn
	return nil
}

// keepNode holds the node's lock and reaps dead nodes every reapEvery,
// until closeNode.
func (db *DB) keepNode() {
	n := &db.nodeLock
	defer close(n.done)
	t := time.NewTicker(reapEvery)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), reapEvery)
		if err := db.holdNodeLock(ctx); err == nil {
			db.Reap(ctx)
		}
		cancel()
	}
}

// Reap frees the claims of nodes that are gone and deletes their pending
// blobs, and says how many of each. Only on PostgreSQL; see above.
func (db *DB) Reap(ctx context.Context) (NodeStart, error) {
	var st NodeStart
	if db.eng.name != Postgres || db.locks == nil {
		return st, nil
	}
	now := nanos(db.Now())
	rows, err := db.read.QueryContext(ctx, `
		SELECT claim_node FROM jobs WHERE state = 'pending' AND lease_until > ? AND claim_node NOT IN (0, ?)
		UNION SELECT node FROM blobs WHERE state = 'pending' AND node NOT IN (0, ?)`, now, db.nodeLock.key, db.nodeLock.key)
	if err != nil {
		return st, fmt.Errorf("store: reap: %w", err)
	}
	var keys []int64
	for rows.Next() {
		var k int64
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return st, fmt.Errorf("store: reap: %w", err)
		}
		keys = append(keys, k)
	}
	rows.Close()
	for _, k := range keys {
		released, orphans, err := db.reapNode(ctx, k)
		if err != nil {
			return st, fmt.Errorf("store: reap: %w", err)
		}
		st.Released += released
		st.Orphans += orphans
	}
	return st, nil
}

// reapNode reaps node k if it is gone: if its lock can be taken.
func (db *DB) reapNode(ctx context.Context, k int64) (released, orphans int, err error) {
	conn, err := db.locks.Conn(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close() // never kept idle: the lock, if taken, goes with it
	var gone bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(?)`, k).Scan(&gone); err != nil || !gone {
		return 0, 0, err
	}
	err = db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE jobs SET lease_until = 0 WHERE state = 'pending' AND claim_node = ? AND lease_until > 0`, k)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		released = int(n)
		if res, err = tx.ExecContext(ctx, `DELETE FROM blobs WHERE state = 'pending' AND node = ?`, k); err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		orphans = int(n)
		return nil
	})
	return released, orphans, err
}
