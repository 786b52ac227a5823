package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Opening the two sides of store copy, and what it refuses before it
// copies a row: a source a gateway may be writing to, or that this
// program's migrations have not brought up to date; a destination that
// holds anything but a copy of the source cut short; a table it does not
// know, on either side.

// openCopy opens and checks both sides of a copy from from to to.
func openCopy(ctx context.Context, from, to Options) (*copier, error) {
	if same, err := sameStore(from, to); err != nil || same {
		if err == nil {
			err = errors.New("the source and the destination are the same store")
		}
		return nil, fmt.Errorf("store copy: %w", err)
	}
	src, err := openSource(ctx, from)
	if err != nil {
		return nil, fmt.Errorf("store copy: source: %w", err)
	}
	dst, err := openDestination(ctx, to)
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("store copy: destination: %w", err)
	}
	c := &copier{src: src, dst: dst, batchBytes: copyBatchBytes, batchRows: copyBatchRows}
	if err := c.plan(ctx); err != nil {
		c.close()
		return nil, fmt.Errorf("store copy: %w", err)
	}
	return c, nil
}

// sameStore reports whether a and b name the same database.
func sameStore(a, b Options) (bool, error) {
	if a.Driver == "" {
		a.Driver = SQLite
	}
	if b.Driver == "" {
		b.Driver = SQLite
	}
	switch {
	case a.Driver != b.Driver:
		return false, nil
	case a.Driver == SQLite:
		pa, err1 := filepath.Abs(a.Path)
		pb, err2 := filepath.Abs(b.Path)
		if err := errors.Join(err1, err2); err != nil {
			return false, err
		}
		fa, err1 := os.Stat(pa)
		fb, err2 := os.Stat(pb)
		return pa == pb || (err1 == nil && err2 == nil && os.SameFile(fa, fb)), nil
	default:
		ca, err1 := pgx.ParseConfig(a.DSN)
		cb, err2 := pgx.ParseConfig(b.DSN)
		if err1 != nil || err2 != nil {
			return false, errors.New("store.dsn is not a PostgreSQL URL (postgres://user@host:port/database)")
		}
		return ca.Host == cb.Host && ca.Port == cb.Port && ca.Database == cb.Database, nil
	}
}

// openRaw opens the store at opts as it is, to read: no migration, no
// keys. A SQLite file must exist.
func openRaw(opts Options) (*DB, error) {
	db := &DB{Now: time.Now}
	switch opts.Driver {
	case SQLite, "":
		if _, err := os.Stat(opts.Path); err != nil {
			return nil, err
		}
		pool, err := sql.Open("sqlite3", "file:"+uriPath(opts.Path)+"?_busy_timeout=10000&_query_only=on")
		if err != nil {
			return nil, err
		}
		pool.SetMaxOpenConns(2)
		db.eng, db.path, db.write, db.read = sqliteEngine, opts.Path, pool, pool
	case Postgres:
		pool, err := openPostgres(opts.DSN, 4, copyApp)
		if err != nil {
			return nil, err
		}
		db.eng, db.write, db.read = postgresEngine, pool, pool
	default:
		return nil, fmt.Errorf("no engine %q (want %q or %q)", opts.Driver, SQLite, Postgres)
	}
	return db, nil
}

// notRunning refuses a store that a gateway may be using: a SQLite file
// that another process holds open, or a PostgreSQL database that other
// securetextd sessions are connected to (store copy's own sessions have
// a name of their own, copyApp).
func (db *DB) notRunning(ctx context.Context) error {
	if db.eng.name == SQLite {
		pid, err := sqliteHolder(db.path)
		if err != nil {
			return err
		}
		if pid != 0 {
			return fmt.Errorf("%s is open in process %d: stop the gateway (and any securetextd command using it) first", db.path, pid)
		}
		return nil
	}
	var n int
	var clients, pids string
	err := db.read.QueryRowContext(ctx, `
		SELECT count(*),
			coalesce(string_agg(DISTINCT coalesce(host(client_addr), 'a local socket'), ', '), ''),
			coalesce(string_agg(CAST(pid AS TEXT), ', ' ORDER BY pid), '')
		FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = ?`, gatewayApp).Scan(&n, &clients, &pids)
	if err != nil {
		return unreachable(err)
	}
	if n > 0 {
		return fmt.Errorf("%d securetextd %s connected to the database (from %s): stop every gateway node (and any securetextd command using it) first; "+
			"a node that died without closing its connection leaves its session until PostgreSQL notices: end it with pg_terminate_backend(pid) (pid %s)",
			n, plural(int64(n), "session is", "sessions are"), clients, pids)
	}
	return nil
}

// latestVersion is the schema version this program's migrations reach.
func latestVersion() (int, error) {
	names, err := fs.Glob(migrationFS, sqliteEngine.migrations+"/*.sql")
	return len(names), err
}

// rawSchemaVersion reads the schema version without changing anything
// (engine.schemaVersion makes PostgreSQL's table when it is missing).
func (db *DB) rawSchemaVersion(ctx context.Context, tables []string) (int, error) {
	var v int
	err := db.view(ctx, func(tx *sql.Tx) error {
		if db.eng.name == SQLite {
			return tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
		}
		if !slices.Contains(tables, "schema_version") {
			return nil
		}
		err := tx.QueryRowContext(ctx, "SELECT version FROM schema_version WHERE id = 1").Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	})
	return v, err
}

// openSource opens the store to copy from, read only, once it has checked
// that no gateway is using it and that its schema is this program's.
func openSource(ctx context.Context, opts Options) (*DB, error) {
	db, err := openRaw(opts)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist", opts.Path)
	}
	if err != nil {
		return nil, err
	}
	if err := db.sourceReady(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// copyState checks that no gateway uses db, and reads its tables, its
// schema version and the version this program brings a store to.
func (db *DB) copyState(ctx context.Context) (tables []string, have, want int, err error) {
	if err := db.notRunning(ctx); err != nil {
		return nil, 0, 0, err
	}
	if tables, err = db.tableNames(ctx); err != nil || len(tables) == 0 {
		return tables, 0, 0, err
	}
	if have, err = db.rawSchemaVersion(ctx, tables); err != nil {
		return nil, 0, 0, err
	}
	want, err = latestVersion()
	return tables, have, want, err
}

func (db *DB) sourceReady(ctx context.Context) error {
	_, have, want, err := db.copyState(ctx)
	if err != nil {
		return err
	}
	switch {
	case have == 0:
		return errors.New("it holds no securetextd store (schema version 0)")
	case have < want:
		return fmt.Errorf("its schema is at version %d, this program's at %d: run this version of securetextd on it once (serve, or doctor) so that its migrations run, stop it, then copy", have, want)
	case have > want:
		return fmt.Errorf("its schema is at version %d, newer than this program's %d: copy it with the securetextd that wrote it", have, want)
	}
	var unbound int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM bind_migration`).Scan(&unbound); err != nil {
		return unreachable(err)
	}
	if unbound > 0 {
		return errors.New("migration 0006 has not finished binding its sealed values to their places: start the gateway on it once, stop it, then copy")
	}
	return nil
}

// openDestination opens the store to copy into, through the store's own
// migrations (openSchema), once it has checked that no gateway is using
// it and that it is empty or a store at this program's version (a copy
// cut short, which resumeAt judges): it never migrates a database that
// holds something else.
func openDestination(ctx context.Context, opts Options) (*DB, error) {
	raw, err := openRaw(opts)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A new SQLite file.
	case err != nil:
		return nil, err
	default:
		err := raw.destinationReady(ctx)
		raw.Close()
		if err != nil {
			return nil, err
		}
	}
	return openSchema(ctx, opts, copyApp)
}

func (db *DB) destinationReady(ctx context.Context) error {
	tables, have, want, err := db.copyState(ctx)
	if err != nil || len(tables) == 0 {
		return err
	}
	if have != want {
		slices.Sort(tables)
		return fmt.Errorf("it is not empty: it holds the tables %s (schema version %d); copy into an empty database (a new PostgreSQL database, or a new SQLite file)",
			strings.Join(tables, ", "), have)
	}
	return nil
}

// plan lists the tables to copy, with the columns both sides have. It
// refuses a table that neither copyTables nor schemaTables names, on
// either side: its rows would be left behind.
func (c *copier) plan(ctx context.Context) error {
	for _, side := range []struct {
		name string
		db   *DB
	}{{"source", c.src}, {"destination", c.dst}} {
		names, err := side.db.tableNames(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", side.name, err)
		}
		var unknown []string
		for _, n := range names {
			if _, ok := schemaTables[n]; !ok && !slices.ContainsFunc(copyTables, func(t copyTable) bool { return t.name == n }) {
				unknown = append(unknown, n)
			}
		}
		if len(unknown) > 0 {
			slices.Sort(unknown)
			return fmt.Errorf("the %s has %s %s, which this copy does not know: it would be left behind, so nothing is copied "+
				"(a table a migration adds needs its line in copyTables, store/copy.go)",
				side.name, plural(int64(len(unknown)), "the table", "the tables"), strings.Join(unknown, ", "))
		}
	}
	for _, t := range copyTables {
		sc, err := c.src.columns(ctx, t.name)
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		dc, err := c.dst.columns(ctx, t.name)
		if err != nil {
			return fmt.Errorf("destination: %w", err)
		}
		if len(sc) == 0 || len(dc) == 0 {
			return fmt.Errorf("the table %s is missing from the %s", t.name, map[bool]string{true: "source", false: "destination"}[len(sc) == 0])
		}
		if !sameColumns(sc, dc) {
			return fmt.Errorf("the table %s has other columns in the source (%s) than in the destination (%s)", t.name, showColumns(sc), showColumns(dc))
		}
		c.tables = append(c.tables, &tableState{copyTable: t, cols: sc})
	}
	return nil
}

// sameColumns reports whether a and b have the same columns, in any order.
func sameColumns(a, b []column) bool {
	if len(a) != len(b) {
		return false
	}
	for _, c := range a {
		if !slices.Contains(b, c) {
			return false
		}
	}
	return true
}

func showColumns(cols []column) string {
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = c.name + " " + c.kind.String()
	}
	return strings.Join(s, ", ")
}
