package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Sweeps. The daemon sweeps the store on timers: it records expiries,
// purges content past the retention period, deletes the pending blobs of
// uploads cut short, and deletes ended sessions. Several nodes on one
// database would each run every sweep; Exclusive runs a sweep on one node
// at a time, and the others skip their turn.
//
// On PostgreSQL the sweep holds a session-level advisory lock
// (pg_try_advisory_lock) on a connection of its own, outside the pool the
// sweep's work uses, for as long as it runs. A node that dies, or loses
// that connection, loses the lock with it: the server frees it, and the
// next node's turn runs. The sweep pings its lock's connection meanwhile
// and is cancelled when the ping fails, so that a node cut off from the
// server stops within sweepPing rather than work on beside the next
// holder. On SQLite the lock is a flock on a file beside the database
// (its path with "-sweep-NAME.lock" appended), which also keeps the
// operator's `securetextd purge` from running beside the daemon's.
//
// What the sweeps do is safe to run twice at once (each batch is a write
// transaction that picks its rows under the write lock), so the lock saves
// work rather than guards the data. Each run is recorded in sweep_log so
// that its exclusion can be checked afterwards (VerifySweeps).

// Sweep names, as Exclusive and the sweep log know them.
const (
	SweepExpire    = "expire"   // ExpireConversations
	SweepPurge     = "purge"    // Purge
	SweepOrphans   = "orphans"  // SweepOrphans
	SweepSessions  = "sessions" // SweepSessions
	SweepLimitRows = "limits"   // SweepLimits
)

// sweepKeys are the second keys of the sweeps' advisory locks; the first
// is sweepLockClass. Only the sweeps named here exist.
var sweepKeys = map[string]int32{SweepExpire: 1, SweepPurge: 2, SweepOrphans: 3, SweepSessions: 4, SweepLimitRows: 5}

const (
	// sweepLockClass is the first key of every sweep's advisory lock:
	// "stxs" in ASCII. Locks with two keys are apart from the write
	// lock's single key (engine.go).
	sweepLockClass = 1937012851
	// sweepPing is how often a running sweep checks that its lock's
	// connection is still there.
	sweepPing = 5 * time.Second
	// sweepLogKept is how long sweep_log keeps its rows.
	sweepLogKept = 7 * 24 * time.Hour
	// maxSweepConns bounds the connections that hold sweep locks: one per
	// sweep.
	maxSweepConns = 8
)

// openLocks opens the connections that hold PostgreSQL's sweep locks:
// apart from the store's pool, so that a sweep never takes a connection
// its own work needs, and never kept idle, so that a lock can outlive
// neither its sweep nor its connection.
func openLocks(dsn string) (*sql.DB, error) {
	locks, err := openPostgres(dsn, maxSweepConns, gatewayApp)
	if err != nil {
		return nil, err
	}
	locks.SetMaxIdleConns(0)
	return locks, nil
}

// Exclusive runs fn as the sweep called name (SweepPurge, …) unless a run
// of it is under way already, on this node or another: then it returns
// false at once and fn does not run. fn's context is cancelled when the
// lock is lost. The run is recorded in the sweep log, its end even when
// fn fails; its error is returned.
//
//	ran, err := db.Exclusive(ctx, store.SweepPurge, func(ctx context.Context) error {
//		_, err := db.Purge(ctx)
//		return err
//	})
func (db *DB) Exclusive(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error) {
	key, ok := sweepKeys[name]
	if !ok {
		return false, fmt.Errorf("store: sweep %q: no such sweep", name)
	}
	var (
		runCtx = ctx
		unlock func()
		err    error
	)
	if db.eng.name == SQLite {
		unlock, err = db.lockSweepFile(name)
	} else {
		runCtx, unlock, err = db.lockSweepPG(ctx, key)
	}
	if errors.Is(err, errLocked) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: sweep %s: lock: %w", name, unreachable(err))
	}
	defer unlock()
	run, err := db.logSweep(ctx, name, "start", 0)
	if err != nil {
		return false, fmt.Errorf("store: sweep %s: record its start: %w", name, err)
	}
	err = fn(runCtx)
	if cause := context.Cause(runCtx); err != nil && cause != nil && ctx.Err() == nil {
		err = fmt.Errorf("%w (%w)", err, cause)
	}
	// The end is recorded even when ctx is done (a shutdown mid-sweep).
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, lerr := db.logSweep(ectx, name, "end", run); lerr != nil {
		err = errors.Join(err, fmt.Errorf("store: sweep %s: record its end: %w", name, lerr))
	}
	return true, err
}

// lockSweepFile takes a SQLite store's lock of sweep name.
func (db *DB) lockSweepFile(name string) (func(), error) {
	f, err := lockFile(db.path + "-sweep-" + name + ".lock")
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}

// lockSweepPG takes the advisory lock of the sweep with key on a
// connection of its own, and returns a context for the sweep that is
// cancelled when that connection fails, and how to let go.
func (db *DB) lockSweepPG(ctx context.Context, key int32) (context.Context, func(), error) {
	conn, err := db.locks.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(CAST(? AS INTEGER), CAST(? AS INTEGER))`,
		sweepLockClass, key).Scan(&got); err != nil {
		conn.Close()
		return nil, nil, err
	}
	if !got {
		conn.Close()
		return nil, nil, errLocked
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		t := time.NewTicker(sweepPing)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-runCtx.Done():
				return
			case <-t.C:
				if err := conn.PingContext(runCtx); err != nil && runCtx.Err() == nil {
					cancel(fmt.Errorf("lost the sweep's lock: %w", err))
					return
				}
			}
		}
	}()
	return runCtx, func() {
		close(stop)
		<-watched
		cancel(nil)
		// The pool keeps no idle connection (openLocks): closing it
		// ends the session, and the lock with it, whatever happens to
		// the unlock.
		uctx, ucancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ucancel()
		conn.ExecContext(uctx, `SELECT pg_advisory_unlock(CAST(? AS INTEGER), CAST(? AS INTEGER))`, sweepLockClass, key)
		conn.Close()
	}, nil
}

// logSweep records event of a run of sweep name by this node, and
// returns the row's seq. A start closes first, as abandoned, a run whose
// end was never recorded: its node lost the lock (it died, or its
// connection did) before it could, since this one holds it now. An end
// names its run (the seq of its start) and drops the rows older than
// sweepLogKept.
func (db *DB) logSweep(ctx context.Context, name, event string, run int64) (int64, error) {
	var seq int64
	err := db.update(ctx, func(tx *sql.Tx) error {
		now := nanos(db.Now())
		insert := func(event, node string, run int64) error {
			if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM sweep_log`).Scan(&seq); err != nil {
				return err
			}
			if run == 0 {
				run = seq
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO sweep_log (seq, sweep, node, event, run, at) VALUES (?, ?, ?, ?, ?, ?)`,
				seq, name, node, event, run, now)
			return err
		}
		if event == "start" {
			var last, node string
			var lastRun int64
			err := tx.QueryRowContext(ctx, `SELECT event, node, run FROM sweep_log WHERE sweep = ? ORDER BY seq DESC LIMIT 1`, name).
				Scan(&last, &node, &lastRun)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if last == "start" {
				if err := insert("abandoned", node, lastRun); err != nil {
					return err
				}
			}
			return insert("start", db.node, 0)
		}
		if err := insert(event, db.node, run); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM sweep_log WHERE at < ? AND seq < ?`, now-int64(sweepLogKept), seq)
		return err
	})
	return seq, err
}

// SweepRun is one run of a sweep, as the sweep log has it.
type SweepRun struct {
	Sweep string
	Node  string // the process that ran it (DB.Node)
	// Start and End are the log's seq of its start and end: one order
	// across every node. End is 0 while the run is under way.
	Start, End     int64
	Started, Ended time.Time
	// Abandoned is set when the node went away before it recorded the
	// end; End is then when the next run found out.
	Abandoned bool
}

// SweepRuns returns the runs of every sweep in the log (the last
// sweepLogKept of them), in the order they started.
func (db *DB) SweepRuns(ctx context.Context) ([]SweepRun, error) {
	var runs []SweepRun
	byStart := map[int64]int{}
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT seq, sweep, node, event, run, at FROM sweep_log ORDER BY seq`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var seq, run, at int64
			var sweep, node, event string
			if err := rows.Scan(&seq, &sweep, &node, &event, &run, &at); err != nil {
				return err
			}
			if event == "start" {
				byStart[seq] = len(runs)
				runs = append(runs, SweepRun{Sweep: sweep, Node: node, Start: seq, Started: fromNanos(at)})
				continue
			}
			i, ok := byStart[run]
			if !ok { // its start was dropped with older rows
				continue
			}
			runs[i].End, runs[i].Ended, runs[i].Abandoned = seq, fromNanos(at), event == "abandoned"
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: sweep runs: %w", err)
	}
	return runs, nil
}

// VerifySweeps checks the sweep log for two runs of one sweep that
// overlapped: a run that started before the one before it had ended, or
// an end recorded after a later run began (a node that went on sweeping
// after it lost its lock). It returns nil when every sweep ran on one
// node at a time.
func (db *DB) VerifySweeps(ctx context.Context) error {
	runs, err := db.SweepRuns(ctx)
	if err != nil {
		return err
	}
	bySweep := map[string][]SweepRun{}
	for _, r := range runs {
		bySweep[r.Sweep] = append(bySweep[r.Sweep], r)
	}
	var problems []error
	names := make([]string, 0, len(bySweep))
	for name := range bySweep {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		rs := bySweep[name]
		for i := 1; i < len(rs); i++ {
			prev, r := rs[i-1], rs[i]
			if prev.End == 0 || prev.End > r.Start {
				problems = append(problems, fmt.Errorf("sweep %s: the run of %s (log rows %d to %d) overlapped the run of %s that began at row %d",
					name, prev.Node, prev.Start, prev.End, r.Node, r.Start))
			}
		}
	}
	return errors.Join(problems...)
}
