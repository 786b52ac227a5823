package store

import (
	"fmt"
	"testing"
	"time"
)

var authRule = AuthRule{Window: 15 * time.Minute, Known: 24 * time.Hour}

const (
	guesser   = "192.0.2.66/32"
	clinician = "192.0.2.10/32"
	account   = "jane@clinic.example"
)

// TestAuthFailuresShared: failures counted on one node slow the account
// on the other; a success clears only its own pair's failures, is known
// on every node, and all of it outlives a restart.
func TestAuthFailuresShared(t *testing.T) {
	ctx := t.Context()
	a, b, clock, reopen := twoNodes(t)
	for i := range 3 {
		byClient, byAccount, err := a.AuthFailed(ctx, authRule, guesser, account)
		if err != nil {
			t.Fatal(err)
		}
		if byClient != i+1 || byAccount != i+1 {
			t.Fatalf("failure %d: %d by the client, %d against the account", i+1, byClient, byAccount)
		}
	}
	// The clinician mistypes once, on the other node: the account's count
	// is the cluster's.
	byClient, byAccount, err := b.AuthFailed(ctx, authRule, clinician, account)
	if err != nil {
		t.Fatal(err)
	}
	if byClient != 1 || byAccount != 4 {
		t.Errorf("on the other node: %d by the client, %d against the account; want 1 and 4", byClient, byAccount)
	}
	if err := b.AuthSucceeded(ctx, authRule, clinician, account); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	c := reopen()
	for _, tc := range []struct {
		client          string
		known           bool
		byClient, byAcc int
	}{
		{clinician, true, 1, 4}, // the clinician's mistake is cleared
		{guesser, false, 4, 5},  // the guesser's three stand
	} {
		known, err := c.AuthKnown(ctx, authRule, tc.client, account)
		if err != nil || known != tc.known {
			t.Errorf("%s known after a restart: %v, %v; want %v", tc.client, known, err, tc.known)
		}
		byClient, byAccount, err := c.AuthFailed(ctx, authRule, tc.client, account)
		if err != nil {
			t.Fatal(err)
		}
		if byClient != tc.byClient || byAccount != tc.byAcc {
			t.Errorf("%s after a restart: %d by the client, %d against the account; want %d and %d",
				tc.client, byClient, byAccount, tc.byClient, tc.byAcc)
		}
	}
	clock.Advance(15*time.Minute + time.Nanosecond)
	if byClient, byAccount, _ := c.AuthFailed(ctx, authRule, guesser, account); byClient != 1 || byAccount != 1 {
		t.Errorf("after the window: %d and %d, want 1 and 1", byClient, byAccount)
	}
	clock.Advance(24 * time.Hour)
	if known, _ := c.AuthKnown(ctx, authRule, clinician, account); known {
		t.Error("still known a day after the success")
	}
}

// TestAuthSuccessWrites: a login that follows no failure, by a client
// seen lately, costs no write transaction; one that follows a failure
// clears it.
func TestAuthSuccessWrites(t *testing.T) {
	ctx := t.Context()
	db := openTestDB(t)
	clock := newTestClock().set(db)
	if err := db.AuthSucceeded(ctx, authRule, clinician, account); err != nil {
		t.Fatal(err)
	}
	writes := db.writeTxs.Load()
	for range 10 {
		clock.Advance(5 * time.Minute)
		if err := db.AuthSucceeded(ctx, authRule, clinician, account); err != nil {
			t.Fatal(err)
		}
		if _, err := db.AuthKnown(ctx, authRule, clinician, account); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.writeTxs.Load() - writes; n != 0 {
		t.Errorf("logins by a known client without failures took the writer %d times", n)
	}
	// An hour (Known/24) after the success it recorded, it is recorded again.
	clock.Advance(15 * time.Minute)
	db.AuthSucceeded(ctx, authRule, clinician, account)
	if n := db.writeTxs.Load() - writes; n != 1 {
		t.Errorf("a success an hour on: %d writes, want 1", n)
	}
	db.AuthFailed(ctx, authRule, clinician, account)
	db.AuthSucceeded(ctx, authRule, clinician, account)
	if _, byAccount, _ := db.AuthFailed(ctx, authRule, guesser, account); byAccount != 1 {
		t.Errorf("the clinician's failure was not cleared by the success: %d against the account", byAccount)
	}
}

// TestAuthFailuresBounded floods the throttle's counts with addresses and
// accounts: each kind keeps its cap, and the account under attack and
// the clinician's known pair keep theirs.
func TestAuthFailuresBounded(t *testing.T) {
	ctx := t.Context()
	db := openTestDB(t)
	clock := newTestClock().set(db)
	db.limitKeys = 100
	db.AuthSucceeded(ctx, authRule, clinician, account)
	for range 20 {
		db.AuthFailed(ctx, authRule, guesser, account)
	}
	for i := range 1000 {
		clock.Advance(time.Millisecond)
		client := fmt.Sprintf("10.0.%d.%d/32", i/256, i%256)
		if _, _, err := db.AuthFailed(ctx, authRule, client, fmt.Sprintf("user%d@clinic.example", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range []string{authAddr, authAccount, authPair} {
		var n int
		if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM auth_failures WHERE kind = ?`, kind).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 100 {
			t.Errorf("%d %s keys kept; the cap is 100", n, kind)
		}
	}
	if _, byAccount, _ := db.AuthFailed(ctx, authRule, "198.51.100.7/32", account); byAccount != 21 {
		t.Errorf("the attacked account counts %d failures after the flood, want 21", byAccount)
	}
	if known, _ := db.AuthKnown(ctx, authRule, clinician, account); !known {
		t.Error("the flood made the clinician's client unknown")
	}
}
