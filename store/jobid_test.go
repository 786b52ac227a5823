package store

import (
	"testing"
	"time"
)

// TestJobIDsNotReused: once the finished jobs are purged, the next job
// does not take the id of a purged one, whose text row is kept for
// reports (and whose sealed payload, from a backup, must not open in the
// new row).
func TestJobIDsNotReused(t *testing.T) {
	db, clk := lifecycleDB(t, Policy{Retention: time.Hour})
	ctx := t.Context()
	if _, err := send(t, db, "first", Target{Phone: patient}); err != nil {
		t.Fatal(err)
	}
	drainJobs(t, db)
	clk.advance(2 * time.Hour)
	if res, err := db.Purge(ctx); err != nil || res.Jobs == 0 {
		t.Fatalf("purge: %+v %v", res, err)
	}
	if _, err := send(t, db, "second", Target{Phone: patient}); err != nil {
		t.Fatalf("a message after the purge: %v", err)
	}
	var jobs, texts int
	db.read.QueryRow(`SELECT count(*) FROM jobs`).Scan(&jobs)
	db.read.QueryRow(`SELECT count(*) FROM texts`).Scan(&texts)
	if jobs != 1 || texts != 2 {
		t.Errorf("%d jobs, %d texts", jobs, texts)
	}
}
