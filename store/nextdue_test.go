package store

import (
	"math/rand/v2"
	"testing"

	"github.com/securetextd/securetextd"
)

// TestNextDueWalksTheHead: NextDueExcept, which walks each kind's pending
// jobs in order and stops at the first not claimed, answers what the min()
// over every pending job of the kinds answers, for outboxes of jobs of
// several kinds, some claimed (leases ending before and after other jobs'
// attempts), some done, with and without ids passed over.
func TestNextDueWalksTheHead(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	kinds := []string{securetextd.JobKindText, securetextd.JobKindReply, securetextd.JobKindNotice}
	r := rand.New(rand.NewPCG(7, 15))
	for round := range 30 {
		if _, err := db.write.ExecContext(ctx, `DELETE FROM jobs`); err != nil {
			t.Fatal(err)
		}
		n := r.IntN(12)
		var ids []int64
		for i := range n {
			id := int64(round*100 + i + 1)
			ids = append(ids, id)
			next := int64(1000 + r.IntN(50))
			lease := int64(0)
			if r.IntN(3) == 0 {
				lease = next + int64(r.IntN(80)) - 20 // some end before the attempt
			}
			state := "pending"
			if r.IntN(6) == 0 {
				state = "done"
			}
			if _, err := db.write.ExecContext(ctx,
				`INSERT INTO jobs (id, kind, payload, next_attempt, created, updated, state, lease_until) VALUES (?, ?, ?, ?, 0, 0, ?, ?)`,
				id, kinds[r.IntN(len(kinds))], []byte{0}, next, state, lease); err != nil {
				t.Fatal(err)
			}
		}
		for _, ask := range [][]string{nil, {securetextd.JobKindText}, {securetextd.JobKindReply, securetextd.JobKindNotice}} {
			var except []int64
			if len(ids) > 0 && r.IntN(2) == 0 {
				except = []int64{ids[r.IntN(len(ids))]}
			}
			due, ok, err := db.NextDueExcept(ctx, except, ask...)
			if err != nil {
				t.Fatal(err)
			}
			filter, args := inFilter("kind", false, ask)
			xfilter, xargs := inFilter("id", true, except)
			var want *int64
			if err := db.read.QueryRowContext(ctx,
				`SELECT min(CASE WHEN lease_until > next_attempt THEN lease_until ELSE next_attempt END)
				FROM jobs WHERE state = 'pending'`+filter+xfilter, append(args, xargs...)...).Scan(&want); err != nil {
				t.Fatal(err)
			}
			switch {
			case want == nil && ok:
				t.Errorf("round %d, kinds %v, except %v: due %d, want none", round, ask, except, nanos(due))
			case want != nil && (!ok || nanos(due) != *want):
				t.Errorf("round %d, kinds %v, except %v: due %d (%v), want %d", round, ask, except, nanos(due), ok, *want)
			}
		}
	}
	// A head of claimed jobs longer than what is read at first
	// (nextDueHead), before the first unclaimed one or without any.
	for _, unclaimed := range []int64{0, 2000, 6000} {
		if _, err := db.write.ExecContext(ctx, `DELETE FROM jobs`); err != nil {
			t.Fatal(err)
		}
		for i := range nextDueHead + 8 {
			if _, err := db.write.ExecContext(ctx,
				`INSERT INTO jobs (id, kind, payload, next_attempt, created, updated, lease_until) VALUES (?, 'text', ?, ?, 0, 0, ?)`,
				i+1, []byte{0}, 1000+i, 5000-i); err != nil {
				t.Fatal(err)
			}
		}
		if unclaimed != 0 {
			if _, err := db.write.ExecContext(ctx,
				`INSERT INTO jobs (id, kind, payload, next_attempt, created, updated) VALUES (999, 'text', ?, ?, 0, 0)`,
				[]byte{0}, unclaimed); err != nil {
				t.Fatal(err)
			}
		}
		want := int64(5000 - (nextDueHead + 7))
		if unclaimed != 0 {
			want = min(want, unclaimed)
		}
		due, ok, err := db.NextDueExcept(ctx, nil, securetextd.JobKindText, securetextd.JobKindReply)
		if err != nil || !ok || nanos(due) != want {
			t.Errorf("%d claimed jobs, then one unclaimed at %d: due %d (%v, %v), want %d", nextDueHead+8, unclaimed, nanos(due), ok, err, want)
		}
	}
	if _, _, err := db.NextDueExcept(ctx, nil, "text' OR 1=1 --"); err == nil {
		t.Error("a kind that is not a kind's name was written into the query")
	}
}
