package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// testClock is a clock that tests move by hand, shared by every handle
// set to it.
type testClock struct{ now time.Time }

func (c *testClock) Now() time.Time          { return c.now }
func (c *testClock) Advance(d time.Duration) { c.now = c.now.Add(d) }
func newTestClock() *testClock               { return &testClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }
func (c *testClock) set(dbs ...*DB) *testClock {
	for _, db := range dbs {
		db.Now = c.Now
	}
	return c
}

// twoNodes opens the same new store twice, as two gateway nodes would (a
// second SQLite handle on the same file, or a second pool on the same
// PostgreSQL database), both on one test clock. reopen opens it once more,
// as a node restarted.
func twoNodes(t *testing.T) (a, b *DB, clock *testClock, reopen func() *DB) {
	t.Helper()
	opts, keys := testOptions(t), testKeys(t)
	a, b = openTestStore(t, opts, keys), openTestStore(t, opts, keys)
	clock = newTestClock().set(a, b)
	reopen = func() *DB {
		db := openTestStore(t, opts, keys)
		clock.set(db)
		return db
	}
	return a, b, clock, reopen
}

var loginRule = StrikeRule{Max: 5, Window: 15 * time.Minute}

// TestStrikesShared: strikes on one node count on the other, a lockout
// earned on one holds on both and after both restart, and it ends with
// its window.
func TestStrikesShared(t *testing.T) {
	ctx := t.Context()
	a, b, clock, reopen := twoNodes(t)
	phone, addr := "phone:+12125550100", "addr:192.0.2.1"
	for i := range 4 {
		node := []*DB{a, b}[i%2]
		wait, left, err := node.Strike(ctx, "login", loginRule, phone, addr)
		if err != nil {
			t.Fatal(err)
		}
		if wait != 0 || left != 4-i {
			t.Fatalf("strike %d: locked for %v, %d left; want not locked, %d left", i+1, wait, left, 4-i)
		}
	}
	wait, _, err := b.Strike(ctx, "login", loginRule, phone, addr)
	if err != nil {
		t.Fatal(err)
	}
	if wait != 15*time.Minute {
		t.Fatalf("fifth strike, on the other node: locked for %v, want 15m", wait)
	}
	clock.Advance(time.Minute)
	a.Close()
	b.Close()
	c := reopen()
	for _, key := range []string{phone, addr} {
		got, err := c.StrikesLocked(ctx, "login", key)
		if err != nil {
			t.Fatal(err)
		}
		if got != 14*time.Minute {
			t.Errorf("%s a minute later, after a restart: locked for %v, want 14m", key, got)
		}
	}
	if got, _ := c.StrikesLocked(ctx, "reset", phone); got != 0 {
		t.Errorf("another kind locked: %v", got)
	}
	clock.Advance(14 * time.Minute)
	if got, _ := c.StrikesLocked(ctx, "login", phone, addr); got != 0 {
		t.Errorf("locked for %v after the window", got)
	}
}

// TestStrikesSlide: a strike counts for exactly one window after it was
// made, not from the first of a series.
func TestStrikesSlide(t *testing.T) {
	ctx := t.Context()
	db := openTestDB(t)
	clock := newTestClock().set(db)
	rule := StrikeRule{Max: 3, Window: 10 * time.Minute}
	for _, step := range []time.Duration{0, 6 * time.Minute, 6 * time.Minute} {
		clock.Advance(step)
		if wait, _, err := db.Strike(ctx, "login", rule, "k"); err != nil || wait != 0 {
			t.Fatalf("locked at %v (%v): the first strike had left the window", clock.now, err)
		}
	}
	clock.Advance(time.Minute)
	if wait, _, _ := db.Strike(ctx, "login", rule, "k"); wait == 0 {
		t.Error("three strikes within 10 minutes did not lock")
	}
}

// TestStrikeUnlessLocked: the reset limit's question, asked of two nodes
// in turn, lets through Max requests in all.
func TestStrikeUnlessLocked(t *testing.T) {
	ctx := t.Context()
	a, b, _, _ := twoNodes(t)
	allowed := 0
	for i := range 12 {
		ok, err := []*DB{a, b}[i%2].StrikeUnlessLocked(ctx, "reset", loginRule, "phone:+12125550100")
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			allowed++
		}
	}
	if allowed != loginRule.Max {
		t.Errorf("%d reset requests let through by two nodes, want %d", allowed, loginRule.Max)
	}
}

// TestForgetStrikes: a success clears its key everywhere; a success with
// nothing to clear, and every lockout check, cost no write transaction.
func TestForgetStrikes(t *testing.T) {
	ctx := t.Context()
	a, b, _, _ := twoNodes(t)
	for range 5 {
		a.Strike(ctx, "login", loginRule, "phone:+12125550100", "addr:192.0.2.1")
	}
	if err := b.ForgetStrikes(ctx, "login", "phone:+12125550100"); err != nil {
		t.Fatal(err)
	}
	if wait, _ := a.StrikesLocked(ctx, "login", "phone:+12125550100"); wait != 0 {
		t.Errorf("forgotten on one node, still locked on the other for %v", wait)
	}
	if wait, _ := a.StrikesLocked(ctx, "login", "addr:192.0.2.1"); wait == 0 {
		t.Error("forgetting the phone lifted the address's lockout")
	}
	writes := b.writeTxs.Load()
	for range 10 {
		if err := b.ForgetStrikes(ctx, "login", "phone:+12125550199"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.StrikesLocked(ctx, "login", "phone:+12125550199", "addr:198.51.100.7"); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.writeTxs.Load() - writes; n != 0 {
		t.Errorf("logins that followed no failure took the writer %d times", n)
	}
}

// TestStrikesBounded floods the strikes with distinct keys: the table
// keeps its cap, a lockout survives the flood, and what has expired goes
// first.
func TestStrikesBounded(t *testing.T) {
	ctx := t.Context()
	db := openTestDB(t)
	clock := newTestClock().set(db)
	db.limitKeys = 100
	for range 5 {
		db.Strike(ctx, "login", loginRule, "phone:victim")
	}
	for i := range 1000 {
		clock.Advance(time.Millisecond)
		if _, _, err := db.Strike(ctx, "login", loginRule, fmt.Sprintf("addr:10.0.%d.%d", i/256, i%256)); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			db.Strike(ctx, "reset", loginRule, "phone:other kind")
		}
	}
	if n := countRows(t, db, "login"); n > 100 {
		t.Errorf("%d login keys kept; the cap is 100", n)
	}
	if n := countRows(t, db, "reset"); n != 1 {
		t.Errorf("a flood of login keys left %d reset keys, want 1", n)
	}
	if wait, _ := db.StrikesLocked(ctx, "login", "phone:victim"); wait == 0 {
		t.Error("a flood of keys lifted a lockout")
	}
	// Once their window has passed, the next new key sweeps them all.
	clock.Advance(time.Hour)
	db.Strike(ctx, "login", loginRule, "addr:late")
	if n := countRows(t, db, ""); n != 1 {
		t.Errorf("%d keys an hour later, want 1", n)
	}
}

// countRows counts the rows of limit_strikes of kind ("": all).
func countRows(t *testing.T, db *DB, kind string) int {
	t.Helper()
	var n int
	err := db.read.QueryRowContext(t.Context(),
		`SELECT count(*) FROM limit_strikes WHERE kind = ? OR ? = ''`, kind, kind).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAuditUnlessFlooded: two nodes together record at most Max events
// of one key in a window, and the chain still verifies.
func TestAuditUnlessFlooded(t *testing.T) {
	ctx := t.Context()
	a, b, clock, _ := twoNodes(t)
	rule := StrikeRule{Max: 30, Window: time.Minute}
	recorded := 0
	for i := range 50 {
		ev := securetextd.AuditEvent{Event: securetextd.AuditLinkOpened, Actor: "+12125550100", ConversationID: 1, Client: "192.0.2.1"}
		ok, err := []*DB{a, b}[i%2].AuditUnlessFlooded(ctx, ev, "link 192.0.2.1 1", rule)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			recorded++
		}
	}
	if recorded != rule.Max {
		t.Errorf("%d events recorded by two nodes within a minute, want %d", recorded, rule.Max)
	}
	clock.Advance(time.Minute)
	if ok, err := a.AuditUnlessFlooded(ctx, securetextd.AuditEvent{Event: securetextd.AuditLinkOpened}, "link 192.0.2.1 1", rule); !ok || err != nil {
		t.Errorf("after the window: recorded %v, %v", ok, err)
	}
	if _, err := b.VerifyAudit(ctx); err != nil {
		t.Errorf("verify: %v", err)
	}
	var rows int
	b.read.QueryRowContext(ctx, `SELECT count(*) FROM audit`).Scan(&rows)
	if rows != rule.Max+1 {
		t.Errorf("%d audit rows, want %d", rows, rule.Max+1)
	}
}

// TestSweepLimits deletes what counts nothing any more, and only that.
func TestSweepLimits(t *testing.T) {
	ctx := t.Context()
	db := openTestDB(t)
	clock := newTestClock().set(db)
	db.Strike(ctx, "login", loginRule, "phone:old")
	if _, _, err := db.AuthFailed(ctx, authRule, "192.0.2.1/32", "old@clinic.example"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Minute)
	db.Strike(ctx, "login", loginRule, "phone:new")
	clock.Advance(6 * time.Minute)
	n, err := db.SweepLimits(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The old strike, and the address and account failures; the pair
	// is not known (it never succeeded) and goes too.
	if n != 4 {
		t.Errorf("swept %d rows, want 4", n)
	}
	if c := countRows(t, db, ""); c != 1 {
		t.Errorf("%d strike rows left, want the new one", c)
	}
}
