package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/securetextd/securetextd"

	"github.com/securetextd/securetextd/internal/pgtest"
)

// TestCommitRoundTrips: on PostgreSQL every round trip of a commit is
// taken while every node waits for the write lock. A message's commit
// takes two: BEGIN with the lock and the query for its ids and the audit
// trail's head (beginlocked.go, txmemo.go), then its rows with the COMMIT
// (pipeline.go).
func TestCommitRoundTrips(t *testing.T) {
	if !pgtest.Enabled() {
		t.Skip("needs PostgreSQL: runs with SECURETEXTD_TEST_ENGINE=postgres (make test's second pass)")
	}
	db := openTestDB(t)
	// The first commit also reads the data keys' table; count the second.
	if _, err := send(t, db, "first", Target{Phone: patient}); err != nil {
		t.Fatal(err)
	}
	before := db.trips.Load()
	if _, err := send(t, db, "second", Target{Phone: patient}); err != nil {
		t.Fatal(err)
	}
	if n := db.trips.Load() - before; n > 2 {
		t.Errorf("a message's commit took %d round trips to the server, want 2: BEGIN with the lock and its ids and the chain's head, then its rows with COMMIT", n)
	}

	// Joining the latest conversation (conversations.continue's default)
	// reads it ahead, outside the transaction, and queues the check that
	// it is still the latest with the rest: no round trip more under the
	// lock. An answer mailed to a conversation's reply address reads its
	// conversation in the transaction: one round trip more.
	db.Policy.ContinuePerSender = true
	before = db.trips.Load()
	r, err := send(t, db, "third", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	if n := db.trips.Load() - before; n > 2 {
		t.Errorf("a message joining its conversation took %d round trips to the server in its transaction, want 2: BEGIN with the lock, its ids and the chain's head; its rows, the check of the conversation read ahead, and COMMIT", n)
	}
	// And a second one starts none (the check held).
	r2, err := send(t, db, "fourth", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Conversations[0].ID != r.Conversations[0].ID {
		t.Errorf("the fourth message went to conversation %d, want the third's %d", r2.Conversations[0].ID, r.Conversations[0].ID)
	}
	before = db.trips.Load()
	if _, err := send(t, db, "answer", Target{Phone: patient, ConversationID: r.Conversations[0].ID}); err != nil {
		t.Fatal(err)
	}
	if n := db.trips.Load() - before; n > 3 {
		t.Errorf("an answer into its conversation took %d round trips to the server, want 3: BEGIN with the lock, its ids and the chain's head; the conversation; its rows with COMMIT", n)
	}
}

// TestGroupPipelined runs batches of ten grouped commits, each appending
// to the audit trail. A batch where all goes well costs PostgreSQL two
// round trips, as one commit does, not one or more per commit
// (runPipelined). A batch where
// one commit fails its own check, or queues a row the server refuses,
// commits the others all the same, each once, with the trail verifying:
// the failing commit alone is told so.
func TestGroupPipelined(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	errOwn := errors.New("fails its own check")
	const n = 10
	batch := func(name string, fail func(tx *sql.Tx) error) []error {
		reqs := make([]*groupReq, n)
		for i := range reqs {
			reqs[i] = &groupReq{ctx: ctx, done: make(chan groupResult, 1), fn: func(ctx context.Context, tx *sql.Tx) error {
				if err := db.audit(ctx, tx, securetextd.AuditEvent{Event: "test." + name, Actor: fmt.Sprint(i)}); err != nil {
					return err
				}
				if i == 3 && fail != nil {
					return fail(tx)
				}
				return nil
			}}
		}
		db.runGroup(reqs)
		errs := make([]error, n)
		for i, r := range reqs {
			errs[i] = (<-r.done).err
		}
		return errs
	}
	before := db.trips.Load()
	for i, err := range batch("ok", nil) {
		if err != nil {
			t.Errorf("commit %d: %v", i, err)
		}
	}
	if trips := db.trips.Load() - before; pgtest.Enabled() && trips > 2 {
		t.Errorf("a batch of %d commits took %d round trips, want 2: BEGIN with the lock, the ids and the chain's head, then the rows with COMMIT", n, trips)
	}
	for _, c := range []struct {
		name string
		fail func(tx *sql.Tx) error
		want func(error) bool
	}{
		{"own", func(*sql.Tx) error { return errOwn }, func(err error) bool { return errors.Is(err, errOwn) }},
		{"refused", func(tx *sql.Tx) error {
			_, err := tx.ExecContext(later(ctx), `INSERT INTO ops_probe (id, at) VALUES (2, 0)`) // breaks a CHECK
			return err
		}, func(err error) bool { return err != nil }},
	} {
		for i, err := range batch(c.name, c.fail) {
			switch {
			case i == 3 && !c.want(err):
				t.Errorf("%s: the failing commit: %v", c.name, err)
			case i != 3 && err != nil:
				t.Errorf("%s: commit %d: %v", c.name, i, err)
			}
		}
		var rows int
		if err := db.read.QueryRow(`SELECT count(*) FROM audit WHERE event = ?`, "test."+c.name).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != n-1 {
			t.Errorf("%s: %d audit rows, want %d", c.name, rows, n-1)
		}
	}
	if check, err := db.VerifyAudit(ctx); err != nil || check.Problem != "" {
		t.Fatalf("the audit trail: %+v %v", check, err)
	}
}
