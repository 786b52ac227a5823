package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/securetextd/securetextd/store"
)

// doctorStore checks the database: on SQLite the file, its mode and its
// schema version; on PostgreSQL that the server answers, its version and
// the schema version (the file-mode checks have no file to look at).
func doctorStore(cfg Config, timeout time.Duration, line func(level, what, detail string)) {
	opts := cfg.storeOptions()
	where := opts.Path
	if opts.Driver == store.Postgres {
		where = "PostgreSQL at " + redactDSN(opts.DSN)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := store.Inspect(ctx, opts)
	switch {
	case opts.Driver != store.Postgres && errors.Is(err, os.ErrNotExist):
		line("ok", "database", where+" does not exist yet: it is created at the first start")
		return
	case err != nil:
		line("FAIL", "database", where+": "+err.Error())
		return
	}
	if st.Engine == store.Postgres {
		line("ok", "database", fmt.Sprintf("%s answers: PostgreSQL %s", where, st.Server))
	}
	switch {
	case st.Engine == store.Postgres && st.Have == 0:
		line("ok", "database", fmt.Sprintf("schema version 0: the first start makes the tables (version %d)", st.Want))
	case st.Have > st.Want:
		line("FAIL", "database", fmt.Sprintf("schema version %d is newer than this program's %d: run the newer securetextd", st.Have, st.Want))
	case st.Have < st.Want:
		line("warn", "database", fmt.Sprintf("schema version %d; the next start migrates it to %d (take a backup first)", st.Have, st.Want))
	case st.Engine == store.Postgres:
		line("ok", "database", fmt.Sprintf("schema version %d (current)", st.Have))
	default:
		if fi, err := os.Stat(where); err == nil && fi.Mode().Perm()&0o077 != 0 {
			line("FAIL", "database", fmt.Sprintf("%s has mode %#o: run chmod 600 %s", where, fi.Mode().Perm(), where))
		} else {
			line("ok", "database", fmt.Sprintf("%s, SQLite %s, schema version %d (current)", where, st.Server, st.Have))
		}
	}
}

// redactDSN shows where a PostgreSQL URL points, host and database,
// without its user, password or parameters (a password may be in any of
// them).
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return "store.dsn"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// errBackupPostgres is what backup says on PostgreSQL, whose server has
// its own tools for copies that stay consistent while nodes write.
func errBackupPostgres(cfg Config) error {
	return fmt.Errorf("backup copies SQLite's file, but the store is on PostgreSQL (%s): back it up with PostgreSQL's own tools, "+
		"pg_dump for a copy of the database or pg_basebackup with WAL archiving for point-in-time recovery, "+
		"and keep a copy of the key file (%s) apart from it",
		redactDSN(cfg.Store.DSN), cfg.Path(cfg.Store.KeyFile))
}
