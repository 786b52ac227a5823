package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// TestStorageFullRemembered: a commit that fails for lack of space is
// remembered, with its time; other failures change nothing; the next
// commit that succeeds clears it, the readiness probe's included when
// there is room (TestProbeWaitsForRoom).
func TestStorageFullRemembered(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return t0 }
	if _, full := db.StorageFull(); full {
		t.Fatal("full at start")
	}

	// A commit that runs out of space, as the file system reports it.
	errFull := fmt.Errorf("disk: %w", syscall.ENOSPC)
	err := db.update(ctx, func(*sql.Tx) error { return errFull })
	wantCode(t, err, securetextd.ESTORAGE)
	if at, full := db.StorageFull(); !full || !at.Equal(t0) {
		t.Fatalf("StorageFull = %v, %v; want full at %v", at, full, t0)
	}
	// Another failure is not about space: still full.
	db.update(ctx, func(*sql.Tx) error { return errors.New("constraint failed") })
	if _, full := db.StorageFull(); !full {
		t.Fatal("a failure not about space cleared it")
	}

	// The probe commits, which clears it (with any room at all on
	// SQLite's file system: TestProbeWaitsForRoom).
	db.space.room = 1
	if err := db.ProbeWrite(ctx); err != nil {
		t.Fatalf("ProbeWrite with room = %v", err)
	}
	if _, full := db.StorageFull(); full {
		t.Fatal("still full after a commit succeeded")
	}

	// A grouped commit (messages) that runs out of space sets it too, and
	// one that succeeds clears it.
	if err := db.updateGrouped(ctx, func(context.Context, *sql.Tx) error { return errFull }); securetextd.ErrorCode(err) != securetextd.ESTORAGE {
		t.Fatalf("grouped = %v", err)
	}
	if _, full := db.StorageFull(); !full {
		t.Fatal("a grouped commit out of space did not set it")
	}
	commitTest(t, db, &securetextd.Message{Sender: "a@example.org"}, nil, "+12125550101")
	if _, full := db.StorageFull(); full {
		t.Fatal("a message committed, and it is still set")
	}
}

// TestProbeWaitsForRoom: while commits fail for lack of space, the
// readiness probe fails, and commits (clearing it) only once the file
// system that holds the database has room. It opens SQLite whatever the
// tests' engine: a PostgreSQL server's disk is out of the gateway's sight,
// and there the probe's own commit decides.
func TestProbeWaitsForRoom(t *testing.T) {
	db := openTestStore(t, Options{Driver: SQLite, Path: filepath.Join(t.TempDir(), "securetextd.db")}, testKeys(t))
	ctx := t.Context()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return t0 }
	err := db.update(ctx, func(*sql.Tx) error { return fmt.Errorf("disk: %w", syscall.ENOSPC) })
	wantCode(t, err, securetextd.ESTORAGE)

	// The probe fails while there is no room to speak of...
	db.space.room = 1 << 62
	err = db.ProbeWrite(ctx)
	if err == nil || !strings.Contains(err.Error(), "commits fail for lack of space (last at 2026-11-23T10:00:00Z") {
		t.Fatalf("ProbeWrite = %v; want a failure that says commits fail for lack of space", err)
	}
	wantCode(t, err, securetextd.ESTORAGE)
	if _, full := db.StorageFull(); !full {
		t.Fatal("a failed probe cleared it")
	}
	// A small commit that fits (the outbox recording an outcome) does not
	// clear it either while there is no room to speak of.
	if err := db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO ops_probe (id, at) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET at = excluded.at`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, full := db.StorageFull(); !full {
		t.Fatal("a small commit cleared it with no room on the file system")
	}
	// ...and commits, which clears it, once there is.
	db.space.room = 1
	if err := db.ProbeWrite(ctx); err != nil {
		t.Fatalf("ProbeWrite with room = %v", err)
	}
	if _, full := db.StorageFull(); full {
		t.Fatal("still full after the probe committed")
	}
}
