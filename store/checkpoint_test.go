package store

import "testing"

// TestWriterCheckpointEvery: the writer lets the WAL grow to
// walCheckpointBytes before it checkpoints (SQLite's default is 1,000
// pages), on the connection it holds and on one opened in its place.
func TestWriterCheckpointEvery(t *testing.T) {
	db := openTestDB(t)
	if db.eng.name != SQLite {
		t.Skip("a SQLite setting")
	}
	check := func(when string) {
		t.Helper()
		var pages, size int
		if err := db.write.QueryRow("PRAGMA wal_autocheckpoint").Scan(&pages); err != nil {
			t.Fatal(err)
		}
		if err := db.write.QueryRow("PRAGMA page_size").Scan(&size); err != nil {
			t.Fatal(err)
		}
		if pages*size != walCheckpointBytes {
			t.Errorf("%s: wal_autocheckpoint = %d pages of %d bytes, want %d bytes", when, pages, size, walCheckpointBytes)
		}
	}
	check("opened")
	// The pool's one connection closed: the next statement opens another.
	db.write.SetMaxIdleConns(0)
	check("idle connection dropped")
	db.write.SetMaxIdleConns(1)
	check("reopened")
}
