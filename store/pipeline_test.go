package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/securetextd/securetextd"
)

// TestPipelinedErrors: grouped commits each append to the audit trail,
// and every fourth also queues a statement that breaks a CHECK. That
// statement waits in the connection's queue (later), on either engine:
// its error fails the batch, which runs again a commit at a time, and
// comes back to its own commit at its RELEASE, which rolls back that
// commit alone; the others stand, and the trail verifies.
func TestPipelinedErrors(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	const n = 60
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for i := range n {
		wg.Go(func() {
			err := db.updateGrouped(ctx, func(ctx context.Context, tx *sql.Tx) error {
				if err := db.audit(ctx, tx, securetextd.AuditEvent{Event: "test.pipelined", Actor: fmt.Sprint(i)}); err != nil {
					return err
				}
				if i%4 == 0 {
					if _, err := tx.ExecContext(later(ctx), `INSERT INTO ops_probe (id, at) VALUES (2, 0)`); err != nil {
						return err
					}
				}
				return nil
			})
			switch {
			case i%4 == 0 && err != nil:
				mu.Lock()
				failed++
				mu.Unlock()
			case err != nil:
				t.Errorf("commit %d: %v", i, err)
			case i%4 == 0:
				t.Errorf("commit %d broke a CHECK and committed", i)
			}
		})
	}
	wg.Wait()
	if failed != n/4 {
		t.Errorf("%d commits failed, want %d", failed, n/4)
	}
	if got := count(t, db, "audit"); got != n-n/4 {
		t.Errorf("%d audit rows, want %d", got, n-n/4)
	}
	check, err := db.VerifyAudit(ctx)
	if err != nil || check.Problem != "" {
		t.Fatalf("the trail: %+v, %v", check, err)
	}

	// A queued statement has no count to give yet, and says so; a query
	// after it in the transaction sees what it did.
	err = db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(later(ctx), `INSERT INTO ops_probe (id, at) VALUES (1, 7) ON CONFLICT (id) DO UPDATE SET at = excluded.at`)
		if err != nil {
			return err
		}
		if _, err = res.RowsAffected(); !errors.Is(err, errQueuedResult) {
			t.Errorf("a queued statement's RowsAffected: %v, want errQueuedResult", err)
		}
		var at int64
		if err := tx.QueryRowContext(ctx, `SELECT at FROM ops_probe WHERE id = 1`).Scan(&at); err != nil || at != 7 {
			t.Errorf("read after the queued statement: %d, %v; want 7", at, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A queued statement that fails fails the transaction's commit, and
	// nothing of the transaction stays.
	err = db.update(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(later(ctx), `UPDATE ops_probe SET at = 8 WHERE id = 1`); err != nil {
			return err
		}
		_, err := tx.ExecContext(later(ctx), `INSERT INTO ops_probe (id, at) VALUES (2, 0)`)
		return err
	})
	if err == nil {
		t.Error("a transaction whose queued statement broke a CHECK committed")
	}
	var at int64
	if err := db.read.QueryRowContext(ctx, `SELECT at FROM ops_probe WHERE id = 1`).Scan(&at); err != nil || at != 7 {
		t.Errorf("after the failed transaction: %d, %v; want 7, as before it", at, err)
	}
}
