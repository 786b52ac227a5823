package store

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"

	"github.com/securetextd/securetextd"
)

// TestOpenPragmas checks SQLite's settings on each connection and the
// modes of its files: it opens SQLite whatever the tests' engine.
func TestOpenPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "securetextd.db")
	db, err := Open(path, testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode %#o, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(filepath.Dir(path))
	if di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %#o, want 0700", di.Mode().Perm())
	}

	want := map[string]string{
		"journal_mode":  "wal",
		"foreign_keys":  "1",
		"synchronous":   "2", // FULL
		"secure_delete": "1",
		"busy_timeout":  "10000",
	}
	for _, pool := range []struct {
		name      string
		db        *sql.DB
		queryOnly string
	}{{"writer", db.write, "0"}, {"reader", db.read, "1"}} {
		for pragma, value := range want {
			var got string
			if err := pool.db.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != value {
				t.Errorf("%s: PRAGMA %s = %s, want %s", pool.name, pragma, got, value)
			}
		}
		var got string
		if err := pool.db.QueryRowContext(ctx, "PRAGMA query_only").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != pool.queryOnly {
			t.Errorf("%s: PRAGMA query_only = %s, want %s", pool.name, got, pool.queryOnly)
		}
	}
	if _, err := db.read.ExecContext(ctx, "DELETE FROM senders"); err == nil {
		t.Error("the reader pool could write")
	}

	for _, suffix := range []string{"-wal", "-shm"} {
		if fi, err := os.Stat(path + suffix); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %#o, want 0600", suffix, fi.Mode().Perm())
		}
	}
}

// TestMigrations: a new store is at the latest schema version; one at a
// version newer than the program's is refused; opening again applies
// nothing and keeps the data.
func TestMigrations(t *testing.T) {
	ctx := t.Context()
	opts, keys := testOptions(t), testKeys(t)
	db, err := OpenWith(ctx, opts, keys)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := migrationFS.ReadDir(db.eng.migrations)
	if v := schemaVersionOf(t, db); v != len(names) {
		t.Errorf("schema version %d, want %d", v, len(names))
	}
	if err := db.CreateSender(ctx, "a@example.org", "correct horse"); err != nil {
		t.Fatal(err)
	}
	// A newer program may have migrated the database further: refuse it.
	setSchemaVersion(t, db, 99)
	db.Close()
	if _, err := OpenWith(ctx, opts, keys); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: %v", err)
	}

	// Opening again applies nothing and keeps the data.
	setSchemaVersion(t, db, len(names))
	db, err = OpenWith(ctx, opts, keys)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, err := db.CountSenders(ctx); err != nil || n != 1 {
		t.Errorf("CountSenders after reopening = %d, %v", n, err)
	}
}

// schemaVersionOf reads the schema version of db's store.
func schemaVersionOf(t testing.TB, db *DB) int {
	t.Helper()
	var v int
	err := db.update(t.Context(), func(tx *sql.Tx) (err error) {
		v, err = db.eng.schemaVersion(t.Context(), tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// setSchemaVersion sets the schema version of db's store behind its back,
// as another program would. db may be closed.
func setSchemaVersion(t testing.TB, db *DB, v int) {
	t.Helper()
	tamper(t, db, onEngine(db,
		[]string{fmt.Sprintf("PRAGMA user_version = %d", v)},
		[]string{fmt.Sprintf("UPDATE schema_version SET version = %d", v)})...)
}

// TestOpenRefusesNoPath: SQLite's store is a file; nothing else will do.
func TestOpenRefusesNoPath(t *testing.T) {
	keys := testKeys(t)
	for _, path := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		if db, err := Open(path, keys); err == nil {
			db.Close()
			t.Errorf("Open(%q) worked", path)
		}
	}
	if _, err := Open(filepath.Join(t.TempDir(), "x.db"), nil); err == nil {
		t.Error("Open without keys worked")
	}
}

// TestOpenOddPath checks that a path with URI metacharacters is not
// mistaken for query parameters, in SQLite's URI filenames.
func TestOpenOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a?b#c%20d.db")
	db, err := Open(path, testKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateSender(t.Context(), "a@example.org", "correct horse"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "a?b#c%20d.db") {
			t.Errorf("stray file %q", e.Name())
		}
	}
}

// TestMigrateFromFirstSchema opens a database made by the first schema
// only, as an older gateway left it, and checks that it is brought up to
// date with its data kept.
func TestMigrateFromFirstSchema(t *testing.T) {
	opts := testOptions(t)
	// The schema version as the engine keeps it (engine.go), spelled out
	// here apart from the code under test.
	eng, versionOne := sqliteEngine, []string{"PRAGMA user_version = 1"}
	if opts.Driver == Postgres {
		eng, versionOne = postgresEngine, []string{
			"CREATE TABLE schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
			"INSERT INTO schema_version (id, version) VALUES (1, 1)",
		}
	}
	first, err := migrationFS.ReadFile(eng.migrations + "/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	tamperAt(t, opts, append(append([]string{string(first)}, versionOne...),
		`INSERT INTO conversations (id, phone, sender, created, last_activity) VALUES (1, '+12125550123', 'a@example.org', 1, 1)`)...)

	db := openTestStore(t, opts, testKeys(t))
	names, _ := migrationFS.ReadDir(eng.migrations)
	if v := schemaVersionOf(t, db); v != len(names) || v < 2 {
		t.Errorf("schema version %d, want %d", v, len(names))
	}
	entries, err := db.Inbox(t.Context(), "+12125550123")
	if err != nil || len(entries) != 1 || entries[0].Conversation.Sender != "a@example.org" {
		t.Errorf("Inbox after migrating = %+v, %v", entries, err)
	}
	if err := db.CreateRecipient(t.Context(), "+12125550123", "correct horse battery", ""); err != nil {
		t.Error(err)
	}
}

// TestStorageFull: SQLite's "database or disk is full", PostgreSQL's
// disk_full and the file system's ENOSPC become ESTORAGE errors, which the transports answer as a
// temporary failure (SMTP 452 4.3.1), keeping the cause for the log; other
// errors pass unchanged.
func TestStorageFull(t *testing.T) {
	for _, err := range []error{
		sqlite3.Error{Code: sqlite3.ErrFull},
		fmt.Errorf("insert chunk: %w", &pgconn.PgError{Code: "53100", Message: "could not extend file"}),
		fmt.Errorf("write chunk: %w", &os.PathError{Op: "write", Path: "db-wal", Err: syscall.ENOSPC}),
	} {
		got := storageFull(err)
		if securetextd.ErrorCode(got) != securetextd.ESTORAGE || !errors.Is(got, err) {
			t.Errorf("storageFull(%v) = %v: want ESTORAGE wrapping it", err, got)
		}
		if again := storageFull(got); again != got {
			t.Errorf("storageFull twice: %v", again)
		}
	}
	other := errors.New("constraint failed")
	if got := storageFull(other); got != other {
		t.Errorf("storageFull(%v) = %v", other, got)
	}
	if storageFull(nil) != nil {
		t.Error("storageFull(nil) is not nil")
	}
}

// TestWriteLockStats counts write transactions, grouped commits among
// them, and the time they held the write lock.
func TestWriteLockStats(t *testing.T) {
	db := openTestDB(t)
	txs0, held0 := db.WriteLockStats()
	if err := db.Audit(t.Context(), securetextd.AuditEvent{Event: "test.one", Actor: "tester"}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSender(t.Context(), "dr.who@example.org", "correct horse battery staple"); err != nil {
		t.Fatal(err)
	}
	txs, held := db.WriteLockStats()
	if txs-txs0 != 2 || held <= held0 {
		t.Errorf("after two commits: %d transactions (want 2 more than %d), %v held (was %v)", txs, txs0, held, held0)
	}
}
