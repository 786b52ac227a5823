package store

import (
	"testing"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/pgtest"
)

// TestClaimPlannedForKinds: while a thousand texts wait for their turn at
// the SMS rate, the mail worker claims the jobs of other kinds again and
// again, on one connection. No claim may walk the pending texts to find
// none of its kinds: after five runs of one prepared statement PostgreSQL
// may settle on a plan that ignores the kinds (replan.go), and reads every
// text's row on each claim. The rows the claims read come from the
// server's statistics of the jobs table.
func TestClaimPlannedForKinds(t *testing.T) {
	if !pgtest.Enabled() {
		t.Skip("needs PostgreSQL: runs with SECURETEXTD_TEST_ENGINE=postgres (make test's second pass)")
	}
	opts := testOptions(t)
	opts.MaxConns = 1 // the claims share one prepared statement
	db := openTestStore(t, opts, testKeys(t))
	ctx := t.Context()
	for _, q := range []string{
		`INSERT INTO jobs (id, kind, payload, next_attempt, created, updated)
		SELECT g, 'text', decode(repeat('00', 1024), 'hex'), g, g, g FROM generate_series(1, 1000) AS g`,
		`ANALYZE jobs`,
	} {
		if _, err := db.write.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	fetched := func() int64 {
		t.Helper()
		// The connection's counts reach the statistics when it next goes
		// idle, before it answers.
		if _, err := db.write.ExecContext(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := db.read.QueryRowContext(ctx,
			`SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) FROM pg_stat_user_tables WHERE relname = 'jobs'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := fetched()
	const claims = 12
	for range claims {
		_, err := db.ClaimJob(ctx, time.Now(), time.Minute, nil, securetextd.JobKindReply, securetextd.JobKindReset)
		if securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
			t.Fatalf("claim of a reply or a reset: %v, want ENOTFOUND", err)
		}
	}
	if n := fetched() - before; n > claims {
		t.Errorf("%d claims of a reply or a reset read %d rows of jobs, where none is of their kinds: their plan walks the pending texts", claims, n)
	}
}
