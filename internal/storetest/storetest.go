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

// Keys writes a classic (not post-quantum: quicker) key file in a
// temporary directory and loads it.
func Keys(t testing.TB) *store.Keyring {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key")
	if _, err := store.WriteKeyFile(path, false); err != nil {
		t.Fatal(err)
	}
	keys, err := store.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// Shared is one database that several handles open, as several gateway
// nodes (or a restarted one) would.
type Shared struct {
	T    *testing.T // the test the handles belong to
	Opts store.Options
	Keys *store.Keyring
}

// NewShared makes a new database for t (see Options) with a key file.
func NewShared(t *testing.T) *Shared {
	t.Helper()
	return &Shared{T: t, Opts: Options(t), Keys: Keys(t)}
}

// Open opens a handle on the shared database, closed when t ends if not
// before.
func (s *Shared) Open() *store.DB {
	s.T.Helper()
	db, err := store.OpenWith(s.T.Context(), s.Opts, s.Keys)
	if err != nil {
		s.T.Fatal(err)
	}
	s.T.Cleanup(func() { db.Close() })
	return db
}
