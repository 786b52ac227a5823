package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"

	"github.com/mattn/go-sqlite3"
)

// Status is what Inspect finds of a store: which engine keeps it, the
// version of what runs it, and how far its schema is migrated.
type Status struct {
	// Engine is SQLite or Postgres.
	Engine string
	// Server is the PostgreSQL server's version ("15.10"), or the SQLite
	// library's that this program links.
	Server string
	// Have is the database's schema version, Want this program's: the
	// number of migrations each knows. Have is 0 for a database that no
	// gateway has opened yet.
	Have, Want int
}

// Inspect reads the status of the store that opts describe without
// changing anything: no migration, no write, no table made. A SQLite file
// that does not exist is an error that wraps fs.ErrNotExist; a PostgreSQL
// server that cannot be reached is an EUNAVAILABLE *securetextd.Error
// that wraps the driver's error (which never quotes a password).
func Inspect(ctx context.Context, opts Options) (*Status, error) {
	switch opts.Driver {
	case SQLite, "":
		have, want, err := SchemaVersion(opts.Path)
		if err != nil {
			return nil, err
		}
		v, _, _ := sqlite3.Version()
		return &Status{Engine: SQLite, Server: v, Have: have, Want: want}, nil
	case Postgres:
		return inspectPostgres(ctx, opts)
	}
	return nil, fmt.Errorf("store: inspect: no engine %q (want %q or %q)", opts.Driver, SQLite, Postgres)
}

func inspectPostgres(ctx context.Context, opts Options) (*Status, error) {
	want, err := migrationCount(postgresEngine)
	if err != nil {
		return nil, err
	}
	db, err := openPostgres(opts.DSN, 1, doctorApp)
	if err != nil {
		return nil, fmt.Errorf("store: inspect: %w", err)
	}
	defer db.Close()
	st := &Status{Engine: Postgres, Want: want}
	err = func() error {
		if err := db.QueryRowContext(ctx, `SHOW server_version`).Scan(&st.Server); err != nil {
			return err
		}
		// The table is made by the first gateway that opens the database.
		var table sql.NullString
		if err := db.QueryRowContext(ctx, `SELECT CAST(to_regclass('schema_version') AS TEXT)`).Scan(&table); err != nil || !table.Valid {
			return err
		}
		err := db.QueryRowContext(ctx, `SELECT version FROM schema_version WHERE id = 1`).Scan(&st.Have)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	}()
	if err != nil {
		return nil, fmt.Errorf("store: inspect: %w", unreachable(err))
	}
	return st, nil
}

// migrationCount is the schema version this program brings e to.
func migrationCount(e *engine) (int, error) {
	names, err := fs.Glob(migrationFS, e.migrations+"/*.sql")
	if err != nil {
		return 0, fmt.Errorf("store: migrations: %w", err)
	}
	return len(names), nil
}
