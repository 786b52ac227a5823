package store

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/securetextd/securetextd"
)

// TestInspect reads a store's engine, server version and schema version
// without changing it: before the first open (nothing yet) and after.
func TestInspect(t *testing.T) {
	ctx := t.Context()
	opts := testOptions(t)
	st, err := Inspect(ctx, opts)
	switch opts.Driver {
	case SQLite:
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("SQLite, before the first open: %+v, %v; want a missing file", st, err)
		}
	case Postgres:
		if err != nil || st.Have != 0 || st.Want < 6 || st.Server == "" {
			t.Fatalf("PostgreSQL, before the first open: %+v, %v; want schema version 0 of at least 6", st, err)
		}
	}
	db := openTestStore(t, opts, testKeys(t))
	st, err = Inspect(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.Engine != db.Engine() || st.Have != st.Want || st.Want < 6 || st.Server == "" {
		t.Errorf("after the first open: %+v; want engine %s at the current schema version", st, db.Engine())
	}
}

// TestInspectUnreachable: a PostgreSQL server that cannot be reached is an
// EUNAVAILABLE error, which never quotes the DSN's password.
func TestInspectUnreachable(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := Inspect(ctx, Options{Driver: Postgres, DSN: "postgres://securetextd:hunter2-hunter2@127.0.0.1:1/securetextd?connect_timeout=5"})
	if securetextd.ErrorCode(err) != securetextd.EUNAVAILABLE {
		t.Errorf("err = %v, want EUNAVAILABLE", err)
	}
	if err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error quotes the password: %v", err)
	}
}
