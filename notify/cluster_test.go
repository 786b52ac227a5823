package notify

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/pgtest"
	"github.com/securetextd/securetextd/store"
)

// Workers on two nodes of a cluster: two stores on one database (on
// SQLite, one file), each drained by its own worker, as two gateway
// processes would. The tests run in a synctest bubble: the stores' own
// clock is the bubble's, and time stands still while the database works,
// so send times are exact.

// clusterStore says where the nodes' database is: a new PostgreSQL
// database when the tests run on PostgreSQL, a new SQLite file otherwise.
// It is called outside the bubble; the stores are opened inside it.
func clusterStore(t *testing.T) (store.Options, *store.Keyring) {
	t.Helper()
	dir := t.TempDir()
	if _, err := store.WriteKeyFile(filepath.Join(dir, "key.txt"), true); err != nil {
		t.Fatal(err)
	}
	keys, err := store.LoadKeyFile(filepath.Join(dir, "key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if pgtest.Enabled() {
		return store.Options{Driver: store.Postgres, DSN: pgtest.Shared(t).NewDatabase(t)}, keys
	}
	return store.Options{Driver: store.SQLite, Path: filepath.Join(dir, "securetextd.db")}, keys
}

// openNode opens one node's store in the bubble, closed when the test ends.
func openNode(t *testing.T, opts store.Options, keys *store.Keyring) *store.DB {
	t.Helper()
	db, err := store.OpenWith(t.Context(), opts, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// queueTexts commits one message to n phones: n text jobs.
func queueTexts(t *testing.T, db *store.DB, n int) []securetextd.Phone {
	t.Helper()
	phones := make([]securetextd.Phone, n)
	for i := range phones {
		phones[i] = securetextd.Phone(fmt.Sprintf("+1212555%04d", i))
	}
	d := db.NewDraft()
	defer d.Discard()
	if _, err := d.Commit(t.Context(), &securetextd.Message{Sender: "dr.who@clinic.example"}, phones); err != nil {
		t.Fatal(err)
	}
	return phones
}

// TestClusterSMSRate: two nodes drain one outbox at sms.rate = 2. Each
// text goes once, both nodes send, and the texts of the whole cluster are
// half a second apart: the rate is the cluster's, not each node's.
func TestClusterSMSRate(t *testing.T) {
	opts, keys := clusterStore(t)
	synctest.Test(t, func(t *testing.T) {
		a, b := openNode(t, opts, keys), openNode(t, opts, keys)
		phones := queueTexts(t, a, 12)
		smsA, smsB := &fakeSMS{}, &fakeSMS{}
		for _, n := range []struct {
			db  *store.DB
			sms *fakeSMS
		}{{a, smsA}, {b, smsB}} {
			w := newWorker(n.db, n.sms)
			w.Rate = 2
			w.Poll = time.Second // b hears nothing of a's commit
			startWorker(t, w)
		}
		time.Sleep(time.Minute)
		synctest.Wait()

		sent := append(smsA.sends(), smsB.sends()...)
		slices.SortFunc(sent, func(x, y sentSMS) int { return x.at.Compare(y.at) })
		if got := sendsTo(sent); len(sent) != len(phones) || len(got) != len(phones) {
			t.Fatalf("%d texts to %d phones, want each of %d phones once", len(sent), len(got), len(phones))
		}
		if len(smsA.sends()) == 0 || len(smsB.sends()) == 0 {
			t.Errorf("node a sent %d, node b %d: want both to send", len(smsA.sends()), len(smsB.sends()))
		}
		for i, g := range gaps(sent) {
			if g < 500*time.Millisecond {
				t.Errorf("text %d went %v after the one before, on any node: want 500ms at least", i+1, g)
			}
		}
		for _, db := range []*store.DB{a, b} {
			if _, err := db.ClaimJob(t.Context(), time.Now(), time.Minute, nil); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
				t.Errorf("a job left: %v", err)
			}
		}
	})
}

// TestClusterTakeOver: a node claims a text and vanishes before sending
// it. The other node's worker sends it when the lease ends, not before
// (while the first might still be sending it), and completes it.
func TestClusterTakeOver(t *testing.T) {
	opts, keys := clusterStore(t)
	synctest.Test(t, func(t *testing.T) {
		a, b := openNode(t, opts, keys), openNode(t, opts, keys)
		queueTexts(t, a, 1)
		claimed := time.Now()
		held, err := a.ClaimJob(t.Context(), claimed, textLease, nil, securetextd.JobKindText)
		if err != nil {
			t.Fatal(err)
		}
		a.Close() // the node dies

		sms := &fakeSMS{}
		startWorker(t, newWorker(b, sms))
		time.Sleep(time.Hour)
		synctest.Wait()
		sent := sms.sends()
		if len(sent) != 1 || !sent[0].at.Equal(claimed.Add(textLease)) {
			for _, s := range sent {
				t.Logf("sent after %v", s.at.Sub(claimed))
			}
			t.Fatalf("%d texts sent; want one, when the lease ended (%v)", len(sent), textLease)
		}
		if state, attempts, err := b.JobState(t.Context(), held.ID); state != store.JobDone || attempts != 1 || err != nil {
			t.Errorf("job %s after %d attempts (%v), want done", state, attempts, err)
		}
	})
}
