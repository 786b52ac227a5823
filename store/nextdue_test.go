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
	if _, _, err := db.NextDueExcept(ctx, nil, "text' OR 1=1 --"); err == nil {
		t.Error("a kind that is not a kind's name was written into the query")
	}
}
