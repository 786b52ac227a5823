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
	})
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
