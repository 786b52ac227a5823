package store

import (
	"database/sql"
	"testing"
)

// The tests run on the engine that SECURETEXTD_TEST_ENGINE names
// (testOptions). These helpers let a test do, on either engine, what it
// would do on one: open its store again, or change its rows behind its
// back. A test that is about SQLite itself (its file, its pragmas, its
// backup API, files left by older gateways) opens SQLite explicitly and
// says why.

// optionsOf returns the options that db was opened with, to open the same
// store again (after Close, with other keys).
func optionsOf(db *DB) Options {
	return Options{Driver: db.eng.name, Path: db.path, DSN: db.dsn}
}

// tamper runs statements on db's store as someone who can write to it
// would, behind the gateway's back: through a connection of their own, in
// plain SQL, with referential checks off (see tamperAt). db may be closed.
func tamper(t testing.TB, db *DB, statements ...string) {
	t.Helper()
	tamperAt(t, optionsOf(db), statements...)
}

// tamperAt runs statements on the store at opts through a connection of
// its own, closed when they are done: on SQLite, to the database file with
// SQLite's defaults, which enforce no foreign keys; on PostgreSQL, as the
// tests' superuser with session_replication_role = replica, which fires no
// triggers and so checks no foreign keys either. Statements use no
// placeholders: the connection does not rebind them.
func tamperAt(t testing.TB, opts Options, statements ...string) {
	t.Helper()
	pool := openOutsider(t, opts)
	defer pool.Close()
	conn, err := pool.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if opts.Driver == Postgres {
		statements = append([]string{`SET session_replication_role = replica`}, statements...)
	}
	for _, q := range statements {
		if _, err := conn.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// openOutsider opens the store at opts without the gateway's settings and
// placeholders: on SQLite, the database file with SQLite's defaults; on
// PostgreSQL, pgx's own driver. The caller closes it.
func openOutsider(t testing.TB, opts Options) *sql.DB {
	t.Helper()
	var raw *sql.DB
	var err error
	if opts.Driver == Postgres {
		raw, err = sql.Open("pgx", opts.DSN)
	} else {
		raw, err = sql.Open("sqlite3", "file:"+uriPath(opts.Path)+"?_busy_timeout=10000")
	}
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// onEngine returns the statements for db's engine: sqlite's or
// postgres's. Use it only where the engines' SQL truly differs (DDL,
// triggers, settings).
func onEngine(db *DB, sqlite, postgres []string) []string {
	if db.eng.name == Postgres {
		return postgres
	}
	return sqlite
}
