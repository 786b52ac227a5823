package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Nodes. A gateway node is one serving process (securetextd serve). On
// PostgreSQL any number of them share the database, and come and go: a
// node that dies leaves its sweep locks to the server, which frees them
// with its connections (sweep.go), and its claimed jobs and unfinished
// uploads to the other nodes, which free them as soon as its node lock
// is free (liveness.go), or when their leases end (claim.go). A SQLite file has one serving
// process, which StartNode makes sure of; the commands an operator runs
// beside it (purge, revoke, user …) open the store without it.

// NodeStart says what StartNode cleared up after an earlier process.
type NodeStart struct {
	// Released counts the jobs whose claims an earlier serving process
	// left (it died holding them): due again at once.
	Released int
	// Orphans counts the pending blobs of uploads that an earlier serving
	// process never finished (SweepOrphans).
	Orphans int
}

// errLocked is what lockFile says of a lock held by another.
var errLocked = errors.New("locked by another process")

// StartNode readies the store for a serving process. On SQLite, where one
// process serves the file, it locks the file's serve lock (the database's
// path with "-serve.lock" appended; Close releases it, and so does the
// kernel when the process dies): a second serving process on the same
// file fails here, naming it. Holding the lock, it knows that no other
// process works on the outbox, so it frees the jobs an earlier process
// claimed and never finished, which would otherwise wait for their leases
// to end, and deletes the pending blobs of the uploads that were cut
// short. On PostgreSQL other nodes may be claiming jobs and writing
// uploads at this moment: it takes the node's own lock, frees only what
// nodes that are gone left, and goes on doing so until Close
// (liveness.go).
func (db *DB) StartNode(ctx context.Context) (NodeStart, error) {
	var st NodeStart
	if db.eng.name == Postgres {
		return db.startPGNode(ctx)
	}
	if db.serving == nil {
		f, err := lockFile(db.path + "-serve.lock")
		if errors.Is(err, errLocked) {
			return st, fmt.Errorf("store: another securetextd process serves %s already (it holds %s): "+
				"one process serves a SQLite store; several nodes need store.driver = %q", db.path, filepath.Base(db.path)+"-serve.lock", Postgres)
		}
		if err != nil {
			return st, fmt.Errorf("store: start node: %w", err)
		}
		db.serving = f
	}
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET lease_until = 0 WHERE state = 'pending' AND lease_until > 0`)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		st.Released = int(n)
		return err
	})
	if err != nil {
		return st, fmt.Errorf("store: start node: release claims: %w", err)
	}
	if st.Orphans, err = db.SweepOrphans(ctx, db.Now()); err != nil {
		return st, err
	}
	return st, nil
}

// Node names this process in the sweep log: the host's name, the process
// id and a random part, since a restarted process may get the id again.
func (db *DB) Node() string { return db.node }

func newNodeName() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + newToken(3)
}

// startPGNode takes the node's lock, frees what dead nodes left
// (liveness.go) and keeps doing both until Close.
func (db *DB) startPGNode(ctx context.Context) (NodeStart, error) {
	n := &db.nodeLock
	if n.stop != nil {
		return NodeStart{}, nil
	}
	if err := db.holdNodeLock(ctx); err != nil {
		return NodeStart{}, fmt.Errorf("store: start node: %w", err)
	}
	st, err := db.Reap(ctx)
	if err != nil {
		return st, err
	}
	n.stop, n.done = make(chan struct{}), make(chan struct{})
	go db.keepNode()
	return st, nil
}

// closeNode releases what StartNode and the sweeps hold.
func (db *DB) closeNode() error {
	var errs []error
	if n := &db.nodeLock; n.stop != nil {
		close(n.stop)
		<-n.done
		n.stop = nil
		n.mu.Lock()
		if n.conn != nil {
			errs = append(errs, n.conn.Close())
			n.conn = nil
		}
		n.mu.Unlock()
	}
	if db.serving != nil {
		errs = append(errs, db.serving.Close())
		db.serving = nil
	}
	if db.locks != nil {
		errs = append(errs, db.locks.Close())
		db.locks = nil
	}
	return errors.Join(errs...)
}
