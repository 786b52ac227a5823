package store

import (
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
		if n := count(t, db, "sessions"); n != 1 {
			t.Errorf("%d sessions (%d before), want only the live one", n, before)
		}
	})

	if _, err := db.Session(ctx, "x", 0, absolute); err == nil {
		t.Error("Session without an idle limit worked")
	}
}
