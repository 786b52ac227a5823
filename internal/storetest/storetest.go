// Package storetest opens stores for the tests of the packages that use
// one (smtp, portal), on the engine the tests run on: SQLite by default,
// PostgreSQL when SECURETEXTD_TEST_ENGINE=postgres (see pgtest). A package
// that uses it stops the private PostgreSQL server at the end of its
// TestMain:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		pgtest.StopShared()
//		os.Exit(code)
//	}
//
// The store's own tests have their own helpers (package store cannot
// import this one).
package storetest

import (
	"path/filepath"
	"testing"

	"github.com/securetextd/securetextd/internal/pgtest"
	"github.com/securetextd/securetextd/store"
)

// Options says where a new store for t lives: a SQLite file in a
// temporary directory, or a new database on the private PostgreSQL
// server (dropped when t ends) when the tests run on PostgreSQL.
func Options(t testing.TB) store.Options {
	t.Helper()
	if pgtest.Enabled() {
		return store.Options{Driver: store.Postgres, DSN: pgtest.Shared(t).NewDatabase(t)}
	}
	return store.Options{Driver: store.SQLite, Path: filepath.Join(t.TempDir(), "securetextd.db")}
}

// Open opens a new store (see Options) that seals to keys, closed when t
// ends.
func Open(t testing.TB, keys *store.Keyring) *store.DB {
	t.Helper()
	db, err := store.OpenWith(t.Context(), Options(t), keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
