package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securetextd/securetextd/internal/pgtest"
)

// TestSweepOneNodeAtATime: three sweepers on each of two nodes try the
// same sweep over and over. It never runs twice at once, it runs on both
// nodes, and the sweep log shows each run apart from the others.
func TestSweepOneNodeAtATime(t *testing.T) {
	nodes := openNodes(t, 2)
	var running, most atomic.Int32
	var ranOn [2]atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		n := i % 2
		db := nodes[n]
		wg.Go(func() {
			deadline := time.Now().Add(time.Minute)
			for (ranOn[0].Load() < 5 || ranOn[1].Load() < 5) && time.Now().Before(deadline) {
				ran, err := db.Exclusive(t.Context(), SweepPurge, func(ctx context.Context) error {
					now := running.Add(1)
					defer running.Add(-1)
					for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
					}
					// The work a purge does: write transactions.
					_, err := db.Purge(ctx)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				if ran {
					ranOn[n].Add(1)
				} else {
					// Let the holder finish: a try that fails takes
					// microseconds, a run milliseconds.
					time.Sleep(time.Duration(rand.IntN(1000)) * time.Microsecond)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if m := most.Load(); m != 1 {
		t.Errorf("%d runs of the sweep at once, want 1", m)
	}
	if ranOn[0].Load() < 5 || ranOn[1].Load() < 5 {
		t.Errorf("runs by node: %d and %d; want both nodes to have swept", ranOn[0].Load(), ranOn[1].Load())
	}
	runs, err := nodes[0].SweepRuns(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	byNode := map[string]int{}
	for _, r := range runs {
		if r.Sweep != SweepPurge || r.End == 0 || r.Abandoned {
			t.Errorf("run %+v", r)
		}
		byNode[r.Node]++
	}
	if byNode[nodes[0].Node()] != int(ranOn[0].Load()) || byNode[nodes[1].Node()] != int(ranOn[1].Load()) {
		t.Errorf("sweep log %v, want %d and %d runs", byNode, ranOn[0].Load(), ranOn[1].Load())
	}
	if err := nodes[1].VerifySweeps(t.Context()); err != nil {
		t.Error(err)
	}
}

// TestSweepsApart: different sweeps do not keep each other out.
func TestSweepsApart(t *testing.T) {
	nodes := openNodes(t, 2)
	ran, err := nodes[0].Exclusive(t.Context(), SweepPurge, func(ctx context.Context) error {
		ran, err := nodes[1].Exclusive(ctx, SweepSessions, func(context.Context) error { return nil })
		if !ran || err != nil {
			return errors.Join(errors.New("the session sweep waited for the purge"), err)
		}
		ran, err = nodes[1].Exclusive(ctx, SweepPurge, func(context.Context) error { return errors.New("ran twice") })
		if ran || err != nil {
			return errors.Join(errors.New("the purge ran on both nodes"), err)
		}
		return nil
	})
	if !ran || err != nil {
		t.Fatal(ran, err)
	}
	fail := errors.New("the sweep failed")
	if ran, err := nodes[1].Exclusive(t.Context(), SweepPurge, func(context.Context) error { return fail }); !ran || !errors.Is(err, fail) {
		t.Errorf("a failing sweep: %v, %v", ran, err)
	}
	if _, err := nodes[1].Exclusive(t.Context(), "vacuum", func(context.Context) error { return nil }); err == nil {
		t.Error("a sweep that does not exist ran")
	}
	if err := nodes[0].VerifySweeps(t.Context()); err != nil {
		t.Error(err)
	}
}

// TestVerifySweepsSeesOverlap: a node that went on sweeping after it lost
// its lock (its end is logged after the next run began) is caught, and so
// is a run whose node vanished, once the next run marks it abandoned.
func TestVerifySweepsSeesOverlap(t *testing.T) {
	nodes := openNodes(t, 2)
	a, b := nodes[0], nodes[1]
	ctx := t.Context()
	runA, err := a.logSweep(ctx, SweepExpire, "start", 0)
	if err != nil {
		t.Fatal(err)
	}
	// b takes the lock: a lost it (or died). b's start closes a's run.
	runB, err := b.logSweep(ctx, SweepExpire, "start", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.VerifySweeps(ctx); err != nil {
		t.Fatalf("an abandoned run: %v", err)
	}
	runs, err := a.SweepRuns(ctx)
	if err != nil || len(runs) != 2 || !runs[0].Abandoned || runs[0].Node != a.Node() || runs[1].End != 0 {
		t.Fatalf("runs %+v, %v", runs, err)
	}
	// … but a was alive, and ends its run now: two runs overlapped.
	if _, err := a.logSweep(ctx, SweepExpire, "end", runA); err != nil {
		t.Fatal(err)
	}
	if _, err := b.logSweep(ctx, SweepExpire, "end", runB); err != nil {
		t.Fatal(err)
	}
	err = b.VerifySweeps(ctx)
	if err == nil || !strings.Contains(err.Error(), "sweep expire") {
		t.Errorf("VerifySweeps = %v, want the overlap found", err)
	}
}

// TestSweepLockDiesWithItsConnection (PostgreSQL): the server frees the
// lock of a node whose connection is gone, the way it would for a node
// that died; that node's sweep is cancelled, and another node's runs.
func TestSweepLockDiesWithItsConnection(t *testing.T) {
	if !pgtest.Enabled() {
		t.Skip("PostgreSQL only: a SQLite file's flock dies with its process, which a test cannot kill in itself")
	}
	nodes := openNodes(t, 2)
	a, b := nodes[0], nodes[1]
	ctx := t.Context()
	running := make(chan struct{})
	cancelled := make(chan error, 1)
	go func() {
		_, err := a.Exclusive(ctx, SweepOrphans, func(ctx context.Context) error {
			close(running)
			<-ctx.Done()
			cancelled <- context.Cause(ctx)
			return ctx.Err()
		})
		if err == nil {
			t.Error("a sweep that lost its lock ended without an error")
		}
	}()
	<-running
	if ran, _ := b.Exclusive(ctx, SweepOrphans, func(context.Context) error { return nil }); ran {
		t.Fatal("the sweep ran on both nodes")
	}
	var pid int
	if err := b.read.QueryRowContext(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = ? AND objid = ? AND granted`,
		sweepLockClass, sweepKeys[SweepOrphans]).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := b.write.ExecContext(ctx, `SELECT pg_terminate_backend(?)`, pid); err != nil {
		t.Fatal(err)
	}
	select {
	case cause := <-cancelled:
		if cause == nil || !strings.Contains(cause.Error(), "lost the sweep's lock") {
			t.Errorf("cancelled because %v", cause)
		}
	case <-time.After(4 * sweepPing):
		t.Fatal("the sweep went on after its lock's connection was gone")
	}
	for {
		ran, err := b.Exclusive(ctx, SweepOrphans, func(context.Context) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		if ran {
			break
		}
		time.Sleep(10 * time.Millisecond) // until the server has freed the lock
	}
}
