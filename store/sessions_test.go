package store

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

func TestSessions(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	now := t0
	db.Now = func() time.Time { return now }
	const (
		phone    = securetextd.Phone("+12125550123")
		other    = securetextd.Phone("+12125550124")
		idle     = 30 * time.Minute
		absolute = 12 * time.Hour
	)
	for _, p := range []securetextd.Phone{phone, other} {
		if err := db.CreateRecipient(ctx, p, "correct horse battery", ""); err != nil {
			t.Fatal(err)
		}
	}
	_, err := db.CreateSession(ctx, "+12125550199")
	wantCode(t, err, securetextd.ENOTFOUND)

	// live asks for the session of token and checks it.
	live := func(token string) {
		t.Helper()
		s, err := db.Session(ctx, token, idle, absolute)
		if err != nil {
			t.Fatalf("at +%v: %v", now.Sub(t0), err)
		}
		if s.Phone != phone || !s.LastSeen.Equal(now) || s.Created.After(now) {
			t.Errorf("at +%v: session %+v", now.Sub(t0), s)
		}
	}
	ended := func(token string) {
		t.Helper()
		_, err := db.Session(ctx, token, idle, absolute)
		wantCode(t, err, securetextd.ENOTFOUND)
		if securetextd.ErrorMessage(err) != "This session has ended." {
			t.Errorf("message %q", securetextd.ErrorMessage(err))
		}
	}

	t.Run("idle", func(t *testing.T) {
		token, err := db.CreateSession(ctx, phone)
		if err != nil {
			t.Fatal(err)
		}
		if len(token) != 43 {
			t.Errorf("token %d characters long, want 43 (32 bytes)", len(token))
		}
		s, err := db.Session(ctx, token, idle, absolute)
		if err != nil || !s.Created.Equal(t0) || !s.LastSeen.Equal(t0) {
			t.Fatalf("Session = %+v, %v", s, err)
		}
		// Each visit renews the idle limit: 29 + 29 minutes is fine.
		now = now.Add(29 * time.Minute)
		live(token)
		now = now.Add(29 * time.Minute)
		live(token)
		now = now.Add(idle) // idle for exactly the limit: still live
		live(token)
		now = now.Add(idle + time.Nanosecond)
		ended(token)
		ended(token)
		// The ended session waits for the sweep, which deletes it.
		if n, err := db.SweepSessions(ctx, idle, absolute); err != nil || n != 1 {
			t.Errorf("SweepSessions = %d, %v; want 1", n, err)
		}
		if n := count(t, db, "sessions"); n != 0 {
			t.Errorf("%d sessions left", n)
		}
	})

	t.Run("absolute", func(t *testing.T) {
		start := now
		token, err := db.CreateSession(ctx, phone)
		if err != nil {
			t.Fatal(err)
		}
		for now.Sub(start) < absolute {
			now = now.Add(20 * time.Minute)
			live(token)
		}
		now = now.Add(time.Nanosecond) // seen a moment ago, but too old
		ended(token)
	})

	t.Run("delete", func(t *testing.T) {
		token, err := db.CreateSession(ctx, phone)
		if err != nil {
			t.Fatal(err)
		}
		keep, err := db.CreateSession(ctx, phone)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteSession(ctx, token); err != nil {
			t.Fatal(err)
		}
		ended(token)
		live(keep) // another browser of the same number
		for _, tok := range []string{token, "", "never issued"} {
			if err := db.DeleteSession(ctx, tok); err != nil {
				t.Errorf("DeleteSession(%q) = %v, want nil", tok, err)
			}
		}
		ended("never issued")
		ended("")
	})

	t.Run("ended sessions are swept", func(t *testing.T) {
		if _, err := db.CreateSession(ctx, other); err != nil { // never used again
			t.Fatal(err)
		}
		before := count(t, db, "sessions")
		now = now.Add(idle + time.Second)
		token, err := db.CreateSession(ctx, phone)
		if err != nil {
			t.Fatal(err)
		}
		live(token)
		if n := count(t, db, "sessions"); n != before+1 {
			t.Errorf("%d sessions (%d before): a lookup swept", n, before)
		}
		if n, err := db.SweepSessions(ctx, idle, absolute); err != nil || n != before {
			t.Errorf("SweepSessions = %d, %v; want %d", n, err, before)
		}
		if n := count(t, db, "sessions"); n != 1 {
			t.Errorf("%d sessions (%d before), want only the live one", n, before)
		}
		live(token)
	})

	if _, err := db.Session(ctx, "x", 0, absolute); err == nil {
		t.Error("Session without an idle limit worked")
	}
}

// TestUnknownSessionNoWrite: a cookie that matches no session, or one
// that has ended, is answered from the read path: no write transaction,
// no fsync, nothing queued behind the writer that SMTP commits share. So
// is logging out with one. A live session writes at most every idle/30.
func TestUnknownSessionNoWrite(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	const idle, absolute = 30 * time.Minute, 12 * time.Hour
	if err := db.CreateRecipient(ctx, "+12125550123", "correct horse battery", ""); err != nil {
		t.Fatal(err)
	}
	token, err := db.CreateSession(ctx, "+12125550123")
	if err != nil {
		t.Fatal(err)
	}
	ended, err := db.CreateSession(ctx, "+12125550123")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Session(ctx, token, idle, absolute); err != nil { // its first use writes
		t.Fatal(err)
	}
	now = now.Add(idle + time.Minute) // ended has ended; token is refreshed below
	if _, err := db.Session(ctx, token, idle, time.Hour*24); err == nil {
		t.Fatal("a session idle too long is live")
	}
	token, err = db.CreateSession(ctx, "+12125550123")
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if _, err := db.Session(ctx, token, idle, absolute); err != nil { // its first use writes
		t.Fatal(err)
	}

	writes := db.writeTxs.Load()
	for i := range 100 {
		_, err := db.Session(ctx, fmt.Sprintf("random-cookie-%d-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", i), idle, absolute)
		wantCode(t, err, securetextd.ENOTFOUND)
	}
	_, err = db.Session(ctx, ended, idle, absolute)
	wantCode(t, err, securetextd.ENOTFOUND)
	if err := db.DeleteSession(ctx, "random-cookie"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(idle / 60) // a live session seen a moment ago
	if _, err := db.Session(ctx, token, idle, absolute); err != nil {
		t.Fatal(err)
	}
	if n := db.writeTxs.Load() - writes; n != 0 {
		t.Errorf("%d write transactions for unknown and ended cookies", n)
	}
	// The ended session is still there, for the sweep.
	if n := count(t, db, "sessions"); n != 3 {
		t.Errorf("%d sessions, want 3 (one live, two ended)", n)
	}
	if n, err := db.SweepSessions(ctx, idle, absolute); err != nil || n != 2 {
		t.Errorf("SweepSessions = %d, %v; want 2", n, err)
	}
	if _, err := db.Session(ctx, token, idle, absolute); err != nil {
		t.Errorf("the live session was swept: %v", err)
	}
}

// TestSweepSessionsInBatches: more ended sessions than one batch are all
// swept, the live ones kept.
func TestSweepSessionsInBatches(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	if err := db.CreateRecipient(ctx, "+12125550123", "correct horse battery", ""); err != nil {
		t.Fatal(err)
	}
	err := db.update(ctx, func(tx *sql.Tx) error {
		for i := range sweepBatch*2 + 5 {
			h := hashToken(fmt.Sprint("old", i))
			if _, err := tx.Exec(`INSERT INTO sessions (token_hash, phone, created, last_seen) VALUES (?, ?, ?, ?)`,
				h[:], "+12125550123", nanos(now.Add(-2*time.Hour)), nanos(now.Add(-2*time.Hour))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	live, err := db.CreateSession(ctx, "+12125550123")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := db.SweepSessions(ctx, time.Hour, 12*time.Hour); err != nil || n != sweepBatch*2+5 {
		t.Errorf("SweepSessions = %d, %v", n, err)
	}
	if _, err := db.Session(ctx, live, time.Hour, 12*time.Hour); err != nil {
		t.Errorf("live session: %v", err)
	}
	if _, err := db.SweepSessions(ctx, 0, time.Hour); err == nil {
		t.Error("SweepSessions without an idle limit worked")
	}
}
