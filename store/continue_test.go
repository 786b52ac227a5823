package store

import (
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// TestContinuePerSender: with Policy.ContinuePerSender a new message from a
// sender to a phone joins their latest conversation, renewing it; another
// sender, another phone, a withdrawn or a deleted conversation start anew.
func TestContinuePerSender(t *testing.T) {
	db, clk := lifecycleDB(t, Policy{ContinuePerSender: true, AccessExpiry: time.Hour})
	ctx := t.Context()
	first, err := send(t, db, "first", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	conv := first.Conversations[0].ID

	// Past its expiry, a second message still joins it, and renews access.
	clk.advance(2 * time.Hour)
	if err := db.ConversationAccess(ctx, conv); securetextd.ErrorCode(err) != securetextd.EEXPIRED {
		t.Fatalf("access after expiry: %v, want expired", err)
	}
	second, err := send(t, db, "second", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	if got := second.Conversations[0].ID; got != conv {
		t.Fatalf("second message in conversation %d, want %d", got, conv)
	}
	if err := db.ConversationAccess(ctx, conv); err != nil {
		t.Fatalf("access after the second message: %v", err)
	}
	msgs, err := db.ConversationMessages(ctx, conv)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("conversation holds %d messages (%v), want 2", len(msgs), err)
	}
	if n := len(jobsOf(t, db, securetextd.JobKindText)); n != 2 {
		t.Errorf("%d text jobs, want one per message", n)
	}

	// Another phone, and the same phone from another sender: their own.
	other := securetextd.Phone("+12025550143")
	r, err := send(t, db, "other phone", Target{Phone: other})
	if err != nil || r.Conversations[0].ID == conv {
		t.Fatalf("another phone: %+v %v", r, err)
	}
	d := db.NewDraft()
	defer d.Discard()
	r, err = d.Commit(ctx, &securetextd.Message{Sender: "nurse@clinic.example", Subject: "x"}, []securetextd.Phone{patient})
	if err != nil || r.Conversations[0].ID == conv {
		t.Fatalf("another sender: %+v %v", r, err)
	}
	// The sender's address matches without regard to case.
	d = db.NewDraft()
	defer d.Discard()
	r, err = d.Commit(ctx, &securetextd.Message{Sender: "Dr.Who@Clinic.Example", Subject: "x"}, []securetextd.Phone{patient})
	if err != nil || r.Conversations[0].ID != conv {
		t.Fatalf("the sender in capitals: %+v %v, want conversation %d", r, err, conv)
	}

	// Withdrawn: the next message starts a new conversation, which the
	// one after joins.
	if err := db.RevokeConversation(ctx, conv); err != nil {
		t.Fatal(err)
	}
	third, err := send(t, db, "third", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	fresh := third.Conversations[0].ID
	if fresh == conv {
		t.Fatalf("a message after the withdrawal joined the withdrawn conversation %d", conv)
	}
	if r, err := send(t, db, "fourth", Target{Phone: patient}); err != nil || r.Conversations[0].ID != fresh {
		t.Fatalf("fourth: %+v %v, want conversation %d", r, err, fresh)
	}

	// Deleted, and deleted while under hold: a new one each time.
	if _, err := db.DeleteConversation(ctx, fresh, drWho); err != nil {
		t.Fatal(err)
	}
	r, err = send(t, db, "after delete", Target{Phone: patient})
	if err != nil || r.Conversations[0].ID == fresh {
		t.Fatalf("after delete: %+v %v", r, err)
	}
	held := r.Conversations[0].ID
	if err := db.PlaceHold(ctx, held, "Audit 2026-14", "Pat Legal"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteConversation(ctx, held, drWho); err != nil {
		t.Fatal(err)
	}
	r, err = send(t, db, "after held delete", Target{Phone: patient})
	if err != nil || r.Conversations[0].ID == held {
		t.Fatalf("after a held delete: %+v %v", r, err)
	}

	// Retention purged the older of two messages: the conversation is
	// whole no more, and the next message starts a new one.
	long := r.Conversations[0].ID
	clk.advance(48 * time.Hour)
	if r, err := send(t, db, "newer", Target{Phone: patient}); err != nil || r.Conversations[0].ID != long {
		t.Fatalf("newer: %+v %v, want conversation %d", r, err, long)
	}
	db.Policy.Retention = 24 * time.Hour
	clk.advance(time.Hour)
	if res, err := db.Purge(ctx); err != nil || res.Messages == 0 {
		t.Fatalf("purge: %+v %v", res, err)
	}
	r, err = send(t, db, "after purge", Target{Phone: patient})
	if err != nil || r.Conversations[0].ID == long {
		t.Fatalf("after a purge: %+v %v, want a new conversation", r, err)
	}
	// Nor does an answer mailed to its reply address join it.
	_, err = send(t, db, "answer after purge", Target{Phone: patient, ConversationID: long})
	if securetextd.ErrorCode(err) != securetextd.EINVALID || !strings.Contains(err.Error(), "past its retention period") {
		t.Fatalf("an answer into the purged conversation: %v, want it refused", err)
	}
}

// TestContinueNever: without ContinuePerSender, each message starts its
// own conversation.
func TestContinueNever(t *testing.T) {
	db, _ := lifecycleDB(t, Policy{})
	a, err := send(t, db, "first", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	b, err := send(t, db, "second", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	if a.Conversations[0].ID == b.Conversations[0].ID {
		t.Fatalf("both messages in conversation %d", a.Conversations[0].ID)
	}
}

// TestContinueConcurrent: messages committed at once, through two handles
// on the same database (two nodes on PostgreSQL), all land in one
// conversation.
func TestContinueConcurrent(t *testing.T) {
	opts, keys := testOptions(t), testKeys(t)
	db := openTestStore(t, opts, keys)
	db.Policy = Policy{ContinuePerSender: true}
	dbs := []*DB{db}
	if opts.Driver == Postgres {
		other := openTestStore(t, opts, keys)
		other.Policy = db.Policy
		dbs = append(dbs, other)
	}
	const n = 8
	ids := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, err := send(t, dbs[i%len(dbs)], "at once", Target{Phone: patient})
			if err == nil {
				ids[i] = r.Conversations[0].ID
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("conversations %v: want one", ids)
		}
	}
}

// TestContinueGuard: a commit reads the conversation it joins ahead of
// its transaction, and queues a check that it is still the
// latest between phone and sender, and as open (continueGuard). The check
// fails when another commit started a conversation since, or the one
// read was withdrawn; it holds when nothing changed, or when the only
// newer conversation is the one the commit itself starts.
func TestContinueGuard(t *testing.T) {
	db := openTestDB(t)
	db.Policy.ContinuePerSender = true
	ctx := t.Context()
	check := func(h latest, own int64) error {
		return db.update(ctx, func(tx *sql.Tx) error { return db.continueGuard(ctx, tx, h, drWho, own) })
	}
	none, err := readLatest(ctx, db.read, patient, drWho)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(none, 0); err != nil {
		t.Fatalf("nothing changed, and the check failed: %v", err)
	}
	first, err := send(t, db, "first", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	conv := first.Conversations[0].ID
	if err := check(none, conv); err != nil {
		t.Errorf("the only conversation is the commit's own, and the check failed: %v", err)
	}
	if err := check(none, 0); err == nil {
		t.Error("a conversation started since the read, and the check held")
	}
	open, err := readLatest(ctx, db.read, patient, strings.ToUpper(drWho))
	if err != nil {
		t.Fatal(err)
	}
	if open.id != conv || !open.open {
		t.Fatalf("read ahead %+v, want conversation %d open", open, conv)
	}
	if err := check(open, 0); err != nil {
		t.Errorf("nothing changed, and the check failed: %v", err)
	}
	if err := db.RevokeConversation(ctx, conv); err != nil {
		t.Fatal(err)
	}
	if err := check(open, 0); err == nil {
		t.Error("the conversation read ahead was withdrawn since, and the check held")
	}
	second, err := send(t, db, "second", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	if second.Conversations[0].ID == conv {
		t.Error("a message joined the withdrawn conversation")
	}
}

// TestContinueOneBatch holds two messages between the same two, the
// first between them, in one group commit. Each found no conversation
// when it read ahead (on PostgreSQL), so the second's read is stale by the
// time its commit runs after the first's: its check fails the batch, which
// is committed again reading in the transaction. One conversation, and
// both messages in it.
func TestContinueOneBatch(t *testing.T) {
	db := openTestDB(t)
	db.Policy.ContinuePerSender = true
	g := &db.group
	g.mu.Lock()
	g.leading = true // the commits queue, as behind a running batch
	g.mu.Unlock()
	var wg sync.WaitGroup
	receipts := make([]*Receipt, 2)
	errs := make([]error, 2)
	for i := range receipts {
		wg.Go(func() { receipts[i], errs[i] = send(t, db, "at once", Target{Phone: patient}) })
	}
	var batch []*groupReq
	for deadline := time.Now().Add(10 * time.Second); len(batch) < 2; {
		if time.Now().After(deadline) {
			t.Fatal("the two commits did not queue")
		}
		time.Sleep(time.Millisecond)
		g.mu.Lock()
		batch = append([]*groupReq(nil), g.queue...)
		g.mu.Unlock()
	}
	g.mu.Lock()
	g.queue = nil
	g.mu.Unlock()
	db.runGroup(batch)
	wg.Wait()
	g.mu.Lock()
	g.leading = false
	g.mu.Unlock()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if a, b := receipts[0].Conversations[0].ID, receipts[1].Conversations[0].ID; a != b {
		t.Errorf("conversations %d and %d: want one", a, b)
	}
}

// TestContinueRemembered: a node remembers the conversation that each
// phone and sender last committed to, and takes it as the next message's
// hint (latestSeen). When another node withdrew that conversation since,
// the check catches the stale hint: the message starts a new
// conversation, which both nodes then join.
func TestContinueRemembered(t *testing.T) {
	opts, keys := testOptions(t), testKeys(t)
	a := openTestStore(t, opts, keys)
	a.Policy = Policy{ContinuePerSender: true}
	b := a
	if opts.Driver == Postgres {
		b = openTestStore(t, opts, keys)
		b.Policy = a.Policy
	}
	first, err := send(t, a, "first", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	withdrawn := first.Conversations[0].ID
	if h, ok := a.latests.get(patient, drWho); !ok || h.id != withdrawn || !h.open {
		t.Fatalf("node a remembers %+v, %v; want conversation %d, open", h, ok, withdrawn)
	}
	if err := b.RevokeConversation(t.Context(), withdrawn); err != nil {
		t.Fatal(err)
	}
	second, err := send(t, a, "second", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	conv := second.Conversations[0].ID
	if conv == withdrawn {
		t.Fatal("a message joined the conversation another node withdrew")
	}
	for _, db := range []*DB{b, a} {
		r, err := send(t, db, "more", Target{Phone: patient})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Conversations[0].ID; got != conv {
			t.Errorf("a later message went to conversation %d, want %d", got, conv)
		}
	}
}

// TestJoinsRenewCoarsely: a message that joins a conversation renews its
// last activity only when that moves it by more than renewStep (a minute,
// or a thousandth of the access period), so that a burst of messages to
// one patient does not rewrite the conversation's row and index entries
// once each. Access still ends no sooner than the period less that step
// after the last message.
func TestJoinsRenewCoarsely(t *testing.T) {
	db := openTestDB(t)
	db.Policy.ContinuePerSender = true
	db.Policy.AccessExpiry = 72 * time.Hour
	start := time.Now().Truncate(time.Second)
	now := start
	db.Now = func() time.Time { return now }
	lastActivity := func(id int64) time.Time {
		t.Helper()
		c, err := db.Conversation(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return c.LastActivity
	}
	r, err := send(t, db, "first", Target{Phone: patient})
	if err != nil {
		t.Fatal(err)
	}
	conv := r.Conversations[0].ID
	for _, step := range []struct {
		after time.Duration // since start
		want  time.Duration // the last activity stored, since start
	}{
		{30 * time.Second, 0},                // within a minute of the last renewal: not written
		{60 * time.Second, 60 * time.Second}, // a minute on: written
		{90 * time.Second, 60 * time.Second},
		{3 * time.Minute, 3 * time.Minute},
	} {
		now = start.Add(step.after)
		r, err := send(t, db, "next", Target{Phone: patient})
		if err != nil {
			t.Fatal(err)
		}
		if r.Conversations[0].ID != conv {
			t.Fatalf("the message at +%v started conversation %d; want it to join %d", step.after, r.Conversations[0].ID, conv)
		}
		if got := lastActivity(conv).Sub(start); got != step.want {
			t.Errorf("after a message at +%v, last activity +%v; want +%v", step.after, got, step.want)
		}
	}
	// Access lasts the period from the last renewal: here 72h less 30s
	// after the last message, at +3m30s.
	now = start.Add(3*time.Minute + 30*time.Second)
	if _, err := send(t, db, "last", Target{Phone: patient}); err != nil {
		t.Fatal(err)
	}
	now = start.Add(3*time.Minute + 72*time.Hour - time.Nanosecond)
	if err := db.ConversationAccess(t.Context(), conv); err != nil {
		t.Errorf("access just before the period's end: %v", err)
	}
	now = start.Add(3*time.Minute + 72*time.Hour)
	if err := db.ConversationAccess(t.Context(), conv); securetextd.ErrorCode(err) != securetextd.EEXPIRED {
		t.Errorf("access at the period's end from the last renewal: %v; want expired", err)
	}

	// A short period renews more finely: a thousandth of it.
	db.Policy.AccessExpiry = 10 * time.Second
	now = start.Add(time.Hour)
	if _, err := send(t, db, "short", Target{Phone: patient}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(20 * time.Millisecond)
	if _, err := send(t, db, "short again", Target{Phone: patient}); err != nil {
		t.Fatal(err)
	}
	if got := lastActivity(conv).Sub(start); got != time.Hour+20*time.Millisecond {
		t.Errorf("with a 10s period, a message 20ms on left last activity +%v; want +1h0m0.02s", got)
	}
}
