package store

import (
	"testing"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/pgtest"
)

// TestReapDeadNode: node A claims a job for an hour and starts an upload,
// then dies (its lock's connection ends, as a SIGKILL ends it). While A
// lives, node B's Reap leaves its claim and upload alone; once A is gone,
// B frees the claim at once, no lease to wait out, and deletes the upload.
// A node never reaps itself.
func TestReapDeadNode(t *testing.T) {
	if !pgtest.Enabled() {
		t.Skip("PostgreSQL's node locks: runs with SECURETEXTD_TEST_ENGINE=postgres (make test's second pass); SQLite's one process frees all at start (TestStartNode)")
	}
	nodes := openNodes(t, 2)
	a, b := nodes[0], nodes[1]
	ctx := t.Context()
	for _, n := range nodes {
		if _, err := n.StartNode(ctx); err != nil {
			t.Fatal(err)
		}
	}
	queueTexts(t, a, 1)
	now := a.Now()
	held, err := a.ClaimJob(ctx, now, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := a.NewDraft()
	defer d.Discard()
	w, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "video/mp4"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 3*flushThreshold)); err != nil { // past the flush: pending rows
		t.Fatal(err)
	}
	// The draft's writer works beside the upload: wait for its rows.
	for deadline := time.Now().Add(10 * time.Second); pendingBlobs(t, a) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the upload left no pending blob to reap")
		}
		time.Sleep(10 * time.Millisecond)
	}

	for _, n := range nodes { // A alive: nothing to reap, for B or A itself
		if st, err := n.Reap(ctx); err != nil || st.Released != 0 || st.Orphans != 0 {
			t.Fatalf("reap while A lives: %+v, %v", st, err)
		}
	}
	if _, err := b.ClaimJob(ctx, now, time.Minute, nil); err == nil {
		t.Fatal("B claimed the job A holds")
	}

	// A dies: the connection that holds its lock ends.
	a.nodeLock.mu.Lock()
	a.nodeLock.conn.Close()
	a.nodeLock.conn = nil
	a.nodeLock.mu.Unlock()
	var st NodeStart
	deadline := time.Now().Add(10 * time.Second)
	for st.Released == 0 && time.Now().Before(deadline) {
		if st, err = b.Reap(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // the server ends the session
	}
	if st.Released != 1 || st.Orphans == 0 {
		t.Fatalf("reap after A died: %+v", st)
	}
	if n := pendingBlobs(t, b); n != 0 {
		t.Errorf("%d pending blobs of A's left", n)
	}
	taken, err := b.ClaimJob(ctx, now, time.Minute, nil)
	if err != nil || taken.ID != held.ID {
		t.Fatalf("B's claim after A died: %+v, %v; want job %d at once", taken, err, held.ID)
	}
}

func pendingBlobs(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	if err := db.read.QueryRow(`SELECT count(*) FROM blobs WHERE state = 'pending'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
