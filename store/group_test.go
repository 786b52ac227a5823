package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/securetextd/securetextd"
)

// TestGroupCommit commits from many goroutines at once: every commit that
// returns nil is stored with its job, the ones that fail (here: into an
// unknown conversation) store nothing, and the failures do not spoil the
// other commits that shared their transaction.
func TestGroupCommit(t *testing.T) {
	db := openTestDB(t)
	const n = 120
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := db.NewDraft()
			defer d.Discard()
			w, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
			if err != nil {
				t.Error(err)
				return
			}
			fmt.Fprintf(w, "message %d", i)
			w.Close()
			target := Target{Phone: securetextd.Phone(fmt.Sprintf("+1212555%04d", i))}
			if i%7 == 0 {
				target.ConversationID = 1 << 40 // no such conversation
			}
			m := &securetextd.Message{Sender: "dr@clinic.example", Subject: fmt.Sprint(i)}
			_, err = d.CommitTargets(context.Background(), m, []Target{target})
			switch {
			case err == nil:
				ok.Add(1)
			case i%7 == 0:
				refused.Add(1)
			default:
				t.Errorf("commit %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	want := int64(n - (n+6)/7)
	if ok.Load() != want || refused.Load() != n-want {
		t.Errorf("%d committed, %d refused; want %d and %d", ok.Load(), refused.Load(), want, n-want)
	}
	if got := count(t, db, "messages"); got != int(want) {
		t.Errorf("%d messages stored, want %d", got, want)
	}
	if got := count(t, db, "jobs"); got != int(want) {
		t.Errorf("%d jobs, want %d", got, want)
	}
	if got := count(t, db, "parts"); got != int(want) {
		t.Errorf("%d parts, want %d", got, want)
	}
	var orphans int
	if err := db.read.QueryRow(`SELECT count(*) FROM blobs WHERE id NOT IN (SELECT blob_id FROM parts)`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Errorf("%d blobs without a part", orphans)
	}
}

// TestGroupCommitMemo fails every third of many grouped commits after it
// appended to the audit trail and queued a job: the ids and the chain's
// head that the transaction remembers (txmemo.go) go back with the
// savepoint, so the trail still verifies, with one row per commit that
// stood, and the jobs that stood open under their ids.
func TestGroupCommitMemo(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	const n = 90
	var wg sync.WaitGroup
	errFail := fmt.Errorf("fails on purpose")
	var jobs sync.Map
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var id int64
			err := db.updateGrouped(ctx, func(ctx context.Context, tx *sql.Tx) error {
				if err := db.audit(ctx, tx, securetextd.AuditEvent{Event: "test.grouped", Actor: fmt.Sprint(i)}); err != nil {
					return err
				}
				var err error
				if id, err = db.addJob(ctx, tx, "test", []byte(fmt.Sprint("payload ", i)), db.Now()); err != nil {
					return err
				}
				if i%3 == 0 {
					return errFail
				}
				return nil
			})
			switch {
			case err == nil:
				jobs.Store(id, i)
			case i%3 == 0 && errors.Is(err, errFail):
			default:
				t.Errorf("commit %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	check, err := db.VerifyAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if check.Problem != "" {
		t.Fatalf("the audit trail does not verify: %s", check.Problem)
	}
	if got, want := count(t, db, "audit"), n-n/3; got != want {
		t.Errorf("%d audit rows, want %d", got, want)
	}
	seen := 0
	jobs.Range(func(k, v any) bool {
		seen++
		var sealed []byte
		if err := db.read.QueryRow(`SELECT payload FROM jobs WHERE id = ?`, k).Scan(&sealed); err != nil {
			t.Fatalf("job %v: %v", k, err)
		}
		plain, err := db.open(sealed, payloadPlace(k.(int64)))
		if err != nil || string(plain) != fmt.Sprint("payload ", v) {
			t.Errorf("job %v: %q, %v", k, plain, err)
		}
		return true
	})
	if seen != n-n/3 {
		t.Errorf("%d jobs stood, want %d", seen, n-n/3)
	}
}

// TestGroupAdmits: commits that queue while a batch runs join its
// transaction before its COMMIT, and share its fsync, rather than wait for
// the next batch; one of them that fails fails alone.
func TestGroupAdmits(t *testing.T) {
	db := openTestDB(t)
	errRefused := errors.New("refused")
	for _, failing := range []bool{false, true} {
		txs, _ := db.WriteLockStats()
		started, hold := make(chan struct{}), make(chan struct{})
		var once sync.Once
		errs := make(chan error, 3)
		go func() {
			errs <- db.updateGrouped(t.Context(), func(context.Context, *sql.Tx) error {
				once.Do(func() { close(started) })
				<-hold
				return nil
			})
		}()
		<-started
		late := []func(context.Context, *sql.Tx) error{func(context.Context, *sql.Tx) error { return nil }}
		if failing {
			late = append(late, func(context.Context, *sql.Tx) error { return errRefused })
		}
		for _, fn := range late {
			go func() { errs <- db.updateGrouped(t.Context(), fn) }()
		}
		for queued := 0; queued < len(late); {
			db.group.mu.Lock()
			queued = len(db.group.queue)
			db.group.mu.Unlock()
			runtime.Gosched()
		}
		close(hold)
		var refused int
		for range 1 + len(late) {
			switch err := <-errs; {
			case errors.Is(err, errRefused):
				refused++
			case err != nil:
				t.Fatal(err)
			}
		}
		after, _ := db.WriteLockStats()
		// A batch that fails runs again, each commit in its savepoint: a
		// second transaction.
		want := int64(1)
		if failing {
			want = 2
		}
		if after-txs != want || refused != len(late)-1 {
			t.Errorf("failing %v: %d write transactions, %d refused; want %d, %d", failing, after-txs, refused, want, len(late)-1)
		}
	}
}

// TestGroupRunsToItsEnd: a commit's statements run with its caller's
// context stripped of its cancellation. The transaction is the group's,
// and a caller that leaves while its commit runs must not cut it short
// (an interrupted SQLite statement rolls the whole transaction back); nor
// may a statement cost a goroutine of its own, which mattn/go-sqlite3
// starts to watch a context that can end.
func TestGroupRunsToItsEnd(t *testing.T) {
	db := openTestDB(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	err := db.updateGrouped(ctx, func(ctx context.Context, tx *sql.Tx) error {
		cancel() // the caller leaves
		if ctx.Done() != nil {
			return errors.New("the commit's context can still end")
		}
		return db.audit(ctx, tx, securetextd.AuditEvent{Event: "test.to-its-end", Actor: "t"})
	})
	if err != nil {
		t.Fatalf("commit whose caller left while it ran: %v, want it committed", err)
	}
	var n int
	if err := db.read.QueryRow(`SELECT count(*) FROM audit WHERE event = 'test.to-its-end'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d audit rows committed, want 1", n)
	}
}
