package main

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for rawDB

	"github.com/securetextd/securetextd/internal/pgtest"
	"github.com/securetextd/securetextd/store"
)

// The gateway's tests run on the engine SECURETEXTD_TEST_ENGINE names:
// SQLite by default, PostgreSQL when it is "postgres" (make test runs this
// package once on each). Every configuration a test writes for Main, serve
// or a command goes through withTestEngine; the tests about SQLite itself
// (its backup API, its file's mode, a disk that fills up under it) leave
// it out and say so.

// testDSNs holds the database of each test that runs on PostgreSQL.
var testDSNs sync.Map // testing.TB → string

// testDSN returns t's PostgreSQL database: a fresh one the first time,
// the same afterwards, so that a test's restarts and commands all see the
// gateway's data.
func testDSN(t testing.TB) string {
	t.Helper()
	if dsn, ok := testDSNs.Load(t); ok {
		return dsn.(string)
	}
	dsn := pgtest.Shared(t).NewDatabase(t)
	testDSNs.Store(t, dsn)
	t.Cleanup(func() { testDSNs.Delete(t) })
	return dsn
}

// withTestEngine returns the configuration text with its store on the
// tests' engine: unchanged on SQLite; on PostgreSQL, with [store] driver
// and dsn naming t's database (testDSN). It changes a text only once.
func withTestEngine(t testing.TB, text string) string {
	t.Helper()
	text = withTestConsole(text)
	if !pgtest.Enabled() || strings.Contains(text, `driver = "postgres"`) {
		return text
	}
	return withPostgres(text, testDSN(t))
}

// withTestConsole puts the console (default 127.0.0.1:8081) on a free
// port, unless the text places it: tests run several gateways at once.
func withTestConsole(text string) string {
	if strings.Contains(text, "[console]") {
		return text
	}
	return text + "\n[console]\nlisten = \"127.0.0.1:0\"\n"
}

// withPostgres returns the configuration text with its store in the
// PostgreSQL database at dsn.
func withPostgres(text, dsn string) string {
	keys := fmt.Sprintf("driver = %q\ndsn = %q\n", store.Postgres, dsn)
	text = storeEngineKeys.ReplaceAllString(text, "") // as in config.example.toml
	switch {
	case strings.HasPrefix(text, "[store]\n"):
		return "[store]\n" + keys + text[len("[store]\n"):]
	case strings.Contains(text, "\n[store]\n"):
		return strings.Replace(text, "\n[store]\n", "\n[store]\n"+keys, 1)
	}
	return text + "\n[store]\n" + keys
}

// storeEngineKeys are the lines that set the engine in [store].
var storeEngineKeys = regexp.MustCompile(`(?m)^(driver|dsn) = .*\n`)

// pgFiles lists where PostgreSQL keeps cfg's database on disk: the
// directory of its table files, the WAL (every database's) and the
// server's log, after a checkpoint has written out what the server held
// in memory.
func pgFiles(t testing.TB, cfg Config) []string {
	t.Helper()
	db := rawDB(t, cfg)
	var oid int64
	if err := db.QueryRow(`SELECT oid FROM pg_database WHERE datname = current_database()`).Scan(&oid); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CHECKPOINT`); err != nil {
		t.Fatal(err)
	}
	dir := pgtest.Shared(t).Dir
	return []string{
		filepath.Join(dir, "data", "base", strconv.FormatInt(oid, 10)),
		filepath.Join(dir, "data", "pg_wal"),
		filepath.Join(dir, "server.log"),
	}
}

// rawDB opens cfg's database with no store in between, for tests that
// look at its rows behind the store's back.
func rawDB(t testing.TB, cfg Config) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if cfg.Store.Driver == store.Postgres {
		db, err = sql.Open("pgx", cfg.Store.DSN)
	} else {
		db, err = sql.Open("sqlite3", "file:"+cfg.Path(cfg.Store.Path)+"?_busy_timeout=10000")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
