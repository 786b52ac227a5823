// Package storetest opens the store that a test of another package uses
// (smtp's, portal's) on the engine the tests run on: a SQLite file in the
// test's directory, or a fresh database of pgtest's private PostgreSQL
// server when SECURETEXTD_TEST_ENGINE=postgres. A package that uses it
// calls pgtest.StopShared after m.Run in its TestMain.
package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/securetextd/securetextd/internal/pgtest"
	"github.com/securetextd/securetextd/store"
)

// Options says where t's store lives: dir/db, or a new PostgreSQL
// database.
func Options(t testing.TB, dir string) store.Options {
	t.Helper()
	if pgtest.Enabled() {
		return store.Options{Driver: store.Postgres, DSN: pgtest.Shared(t).NewDatabase(t)}
	}
	return store.Options{Driver: store.SQLite, Path: filepath.Join(dir, "db")}
}

// Open opens t's store (see Options) with keys; it is closed when t ends.
func Open(t testing.TB, dir string, keys *store.Keyring) *store.DB {
	t.Helper()
	db, err := store.OpenWith(context.Background(), Options(t, dir), keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
