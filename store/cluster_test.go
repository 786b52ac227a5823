package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// Two nodes of a cluster are two stores on one database: on PostgreSQL
// the same database, on SQLite the same file (each *DB has its own
// writer and readers, as two processes would).

// openNodes opens n stores on one new database, with one key file.
func openNodes(t *testing.T, n int) []*DB {
	t.Helper()
	opts, keys := testOptions(t), testKeys(t)
	nodes := make([]*DB, n)
	for i := range nodes {
		nodes[i] = openTestStore(t, opts, keys)
	}
	return nodes
}

// queueTexts commits one message to n phones: n text jobs.
func queueTexts(t *testing.T, db *DB, n int) {
	t.Helper()
	phones := make([]securetextd.Phone, n)
	for i := range phones {
		phones[i] = securetextd.Phone(fmt.Sprintf("+1212555%04d", i))
	}
	commitTest(t, db, &securetextd.Message{Sender: "a@example.org"}, nil, phones...)
}

// TestClaimsNeverTwice: workers on two nodes claim at once; no job is
// handed out twice, and every job is handed out.
func TestClaimsNeverTwice(t *testing.T) {
	nodes := openNodes(t, 2)
	const jobs = 60
	queueTexts(t, nodes[0], jobs)
	now := nodes[0].Now().Add(time.Second)

	var mu sync.Mutex
	claimed := map[int64][]string{}
	total := 0
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		db := nodes[i%2]
		worker := fmt.Sprintf("node %d worker %d", i%2, i)
		wg.Go(func() {
			for {
				j, err := db.ClaimJob(t.Context(), now, time.Hour, nil, securetextd.JobKindText)
				if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				claimed[j.ID] = append(claimed[j.ID], worker)
				total++
				enough := total > 2*jobs // a broken claim would never run out
				mu.Unlock()
				if enough {
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(claimed) != jobs {
		t.Errorf("%d jobs claimed, want %d", len(claimed), jobs)
	}
	for id, by := range claimed {
		if len(by) != 1 {
			t.Errorf("job %d claimed by %v", id, by)
		}
	}
	// Nothing is left for anyone within the lease.
	for _, db := range nodes {
		_, err := db.ClaimJob(t.Context(), now.Add(59*time.Minute), time.Hour, nil)
		wantCode(t, err, securetextd.ENOTFOUND)
	}
}

// TestClaimTakenOver: a node claims a job and vanishes. Another node does
// not get the job while the lease runs, learns when it ends, and takes it
// over then; the first node's late outcome is refused and changes nothing.
func TestClaimTakenOver(t *testing.T) {
	nodes := openNodes(t, 2)
	a, b := nodes[0], nodes[1]
	ctx := t.Context()
	queueTexts(t, a, 1)
	t0 := a.Now()
	lease := time.Minute

	held, err := a.ClaimJob(ctx, t0, lease, nil)
	if err != nil {
		t.Fatal(err)
	}
	if held.Claim != 1 {
		t.Errorf("first claim numbered %d", held.Claim)
	}
	_, err = b.ClaimJob(ctx, t0.Add(lease-time.Nanosecond), lease, nil)
	wantCode(t, err, securetextd.ENOTFOUND)
	if due, ok, err := b.NextDue(ctx); err != nil || !ok || !due.Equal(t0.Add(lease)) {
		t.Errorf("NextDue = %v, %v, %v; want the end of the lease, %v", due, ok, err, t0.Add(lease))
	}

	taken, err := b.ClaimJob(ctx, t0.Add(lease), lease, nil)
	if err != nil {
		t.Fatalf("claim after the lease: %v", err)
	}
	if taken.ID != held.ID || taken.Claim != 2 {
		t.Fatalf("took over job %d claim %d, want job %d claim 2", taken.ID, taken.Claim, held.ID)
	}

	// The old holder comes back while the new one works: refused.
	wantCode(t, a.CompleteClaim(ctx, held), securetextd.ECONFLICT)
	wantCode(t, a.CompleteTextClaim(ctx, held, []string{"OLD-1"}), securetextd.ECONFLICT)
	wantCode(t, a.RetryClaim(ctx, held, t0.Add(time.Hour), "late"), securetextd.ECONFLICT)
	wantCode(t, a.FailClaim(ctx, held, "late"), securetextd.ECONFLICT)
	if state, attempts, _ := b.JobState(ctx, held.ID); state != JobPending || attempts != 0 {
		t.Fatalf("after the old holder's outcomes: %s, %d attempts; want pending, untouched", state, attempts)
	}

	// The new holder's retry counts; the old one's complete, after it,
	// still does not.
	if err := b.RetryClaim(ctx, taken, t0.Add(2*lease), "provider down"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, a.CompleteClaim(ctx, held), securetextd.ECONFLICT)
	again, err := a.ClaimJob(ctx, t0.Add(2*lease), lease, nil)
	if err != nil || again.ID != held.ID || again.Attempts != 1 {
		t.Fatalf("claim after the retry: %+v, %v", again, err)
	}
	if err := a.CompleteTextClaim(ctx, again, []string{"NEW-1"}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, b.CompleteClaim(ctx, taken), securetextd.ECONFLICT)
	if state, attempts, _ := b.JobState(ctx, held.ID); state != JobDone || attempts != 2 {
		t.Errorf("job %s after %d attempts, want done after 2", state, attempts)
	}
}

// TestClaimLateButUncontested: an outcome recorded after the lease ran
// out, when no one claimed the job since, is the job's outcome: no one
// else worked on it.
func TestClaimLateButUncontested(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	queueTexts(t, db, 1)
	j, err := db.ClaimJob(ctx, db.Now(), time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Now = func() time.Time { return time.Now().Add(time.Hour) }
	if err := db.CompleteClaim(ctx, j); err != nil {
		t.Fatalf("late but uncontested: %v", err)
	}
}

// TestClaimSkipsHeld: a worker's except list and kinds hold for claims as
// for NextJob.
func TestClaimSkipsHeld(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	queueTexts(t, db, 2)
	now := db.Now()
	first, err := db.ClaimJob(ctx, now, time.Minute, nil, securetextd.JobKindText)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.RetryClaim(ctx, first, now, "again"); err != nil {
		t.Fatal(err)
	}
	next, err := db.ClaimJob(ctx, now, time.Minute, []int64{first.ID}, securetextd.JobKindText)
	if err != nil || next.ID == first.ID {
		t.Fatalf("claim passing over job %d: %+v, %v", first.ID, next, err)
	}
	_, err = db.ClaimJob(ctx, now, time.Minute, nil, securetextd.JobKindReply)
	wantCode(t, err, securetextd.ENOTFOUND)
	if _, err := db.ClaimJob(ctx, now, 0, nil); err == nil {
		t.Error("a claim without a lease")
	}
}

// TestStartNode: on SQLite the serving process locks the file, so that a
// second one is refused, and frees what an earlier process claimed and
// never finished, at once rather than when its lease ends. On PostgreSQL
// a second node starts beside the first, and a node that starts after the
// first is gone frees its claims at once too (liveness.go).
func TestStartNode(t *testing.T) {
	opts, keys := testOptions(t), testKeys(t)
	ctx := context.Background()
	first := openTestStore(t, opts, keys)
	queueTexts(t, first, 1)
	if _, err := first.StartNode(ctx); err != nil {
		t.Fatal(err)
	}
	held, err := first.ClaimJob(ctx, first.Now(), time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	second := openTestStore(t, opts, keys)
	_, err = second.StartNode(ctx)
	if opts.Driver == SQLite {
		if err == nil {
			t.Fatal("a second serving process started on the same SQLite file")
		}
		t.Logf("second start: %v", err)
	} else if err != nil {
		t.Fatalf("a second node on PostgreSQL: %v", err)
	}

	first.Close() // the process dies, its lock with it
	restarted := openTestStore(t, opts, keys)
	st, err := restarted.StartNode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// SQLite's serving process frees what its one predecessor left; a
	// PostgreSQL node frees what a node that is gone left (liveness.go).
	j, err := restarted.ClaimJob(ctx, restarted.Now(), time.Minute, nil)
	if st.Released != 1 || err != nil || j.ID != held.ID || j.Claim != 2 {
		t.Fatalf("after a restart: released %d, claim %+v, %v; want job %d free at once", st.Released, j, err, held.ID)
	}
}
