package store

import (
	"reflect"
	"testing"
)

// TestMergeRows: the plain single-row INSERTs of one text become one
// INSERT of all their rows, at the place of the first, their arguments in
// order; every other statement stays as and where it was.
func TestMergeRows(t *testing.T) {
	blob := "INSERT INTO blobs (id, state, size) VALUES (?, 'committed', ?)"
	chunk := "\n\t\tINSERT INTO chunks (blob_id, seq, data)\n\t\tVALUES (?, ?, ?)"
	upsert := "INSERT INTO auth_failures (kind, key) VALUES (?, ?) ON CONFLICT DO NOTHING"
	sel := "INSERT INTO text_ids (provider_id, job_id) SELECT CAST(? AS TEXT), job_id FROM texts WHERE job_id = ?"
	update := "UPDATE messages SET receipt = 1 WHERE id = ?"
	q := func(orig string, args ...any) queued { return queued{orig: orig, query: rebind(orig), args: args} }
	got := mergeRows([]queued{
		q(blob, 1, 10), q(chunk, 1, 0, "a"), q(upsert, "x", "y"), q(update, 7),
		q(blob, 2, 20), q(chunk, 2, 0, "b"), q(upsert, "x", "y"), q(sel, "p", 3),
		q(blob, 3, 30),
	}, rebind, allRows)
	want := []queued{
		q(blob+", (?, 'committed', ?), (?, 'committed', ?)", 1, 10, 2, 20, 3, 30),
		q(chunk+", (?, ?, ?)", 1, 0, "a", 2, 0, "b"),
		q(upsert, "x", "y"), q(update, 7), q(upsert, "x", "y"), q(sel, "p", 3),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged:\n%q\nwant:\n%q", got, want)
	}
	if got[0].query != "INSERT INTO blobs (id, state, size) VALUES ($1, 'committed', $2), ($3, 'committed', $4), ($5, 'committed', $6)" {
		t.Errorf("rebound: %s", got[0].query)
	}
}

// TestMergeRowsPowersOfTwo: on SQLite (powerOfTwoRows) the rows of one
// text go in statements of a power of two rows, largest first, in order,
// so that a few texts serve every count of rows.
func TestMergeRowsPowersOfTwo(t *testing.T) {
	part := "INSERT INTO parts (message_id, idx) VALUES (?, ?)"
	update := "UPDATE conversations SET last_activity = ? WHERE id = ?"
	var qs []queued
	for i := range 7 {
		qs = append(qs, queued{orig: part, query: part, args: []any{i, 0}}, queued{orig: update, query: update, args: []any{i, i}})
	}
	same := func(q string) string { return q }
	got := mergeRows(qs, same, powerOfTwoRows)
	rows := func(n, from int) queued {
		q := queued{orig: part, args: []any{from, 0}}
		for i := 1; i < n; i++ {
			q.orig += ", (?, ?)"
			q.args = append(q.args, from+i, 0)
		}
		q.query = q.orig
		return q
	}
	want := []queued{rows(4, 0), rows(2, 4), rows(1, 6)}
	for i := range 7 {
		want = append(want, queued{orig: update, query: update, args: []any{i, i}})
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged:\n%q\nwant:\n%q", got, want)
	}
	for n, p := range map[int]int{1: 1, 2: 2, 3: 2, 7: 4, 8: 8, 64: 64, 100: 64} {
		if got := powerOfTwoRows(n); got != p {
			t.Errorf("powerOfTwoRows(%d) = %d, want %d", n, got, p)
		}
	}
}
