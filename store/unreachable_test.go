package store

import (
	"context"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/pgtest"
)

// TestDatabaseDown stops a PostgreSQL server under an open store: every
// kind of call — reads that wrap their own errors, reads in a snapshot,
// writes — is an EUNAVAILABLE error (SMTP's 451 4.3.0, the portal's
// try-again page), never an internal one; when the server is back, the
// same store works again, without being opened anew.
func TestDatabaseDown(t *testing.T) {
	if !pgtest.Enabled() {
		t.Skip("needs PostgreSQL: runs with SECURETEXTD_TEST_ENGINE=postgres (make test's second pass)")
	}
	pgtest.Need(t)
	srv, err := pgtest.Start(false) // its own server: this test stops it
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	name, err := srv.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	db := openTestStore(t, Options{Driver: Postgres, DSN: srv.URL(name)}, testKeys(t))
	ctx := t.Context()
	if err := db.CreateSender(ctx, "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	phone := securetextd.Phone("+12125550123")
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"AuthenticateSender", func(ctx context.Context) error {
			_, err := db.AuthenticateSender(ctx, "dr.who@clinic.example", "correct horse battery")
			return err
		}},
		{"ConversationByToken", func(ctx context.Context) error {
			_, err := db.ConversationByToken(ctx, "unknown-token-unknown-token")
			return notFoundIsFine(err)
		}},
		{"Conversation", func(ctx context.Context) error { _, err := db.Conversation(ctx, 1); return notFoundIsFine(err) }},
		{"ConversationAccess", func(ctx context.Context) error { return notFoundIsFine(db.ConversationAccess(ctx, 1)) }},
		{"Session", func(ctx context.Context) error {
			_, err := db.Session(ctx, "unknown-session-token", time.Hour, 24*time.Hour)
			return notFoundIsFine(err)
		}},
		{"Recipient", func(ctx context.Context) error { _, err := db.Recipient(ctx, phone); return notFoundIsFine(err) }},
		{"CheckResetToken", func(ctx context.Context) error {
			_, err := db.CheckResetToken(ctx, "unknown-reset-token")
			return notFoundIsFine(err)
		}},
		{"AuthenticateAPIKey", func(ctx context.Context) error {
			_, err := db.AuthenticateAPIKey(ctx, securetextd.APIKeyPrefix+"unknown")
			if securetextd.ErrorCode(err) == securetextd.EUNAUTHORIZED {
				return nil
			}
			return err
		}},
		{"Inbox", func(ctx context.Context) error { _, err := db.Inbox(ctx, phone); return err }},
		{"CountSenders", func(ctx context.Context) error { _, err := db.CountSenders(ctx); return err }},
		{"ProbeWrite", db.ProbeWrite},
		{"CreateSender", func(ctx context.Context) error {
			return db.CreateSender(ctx, "dr.no@clinic.example", "correct horse battery")
		}},
	}
	for _, c := range calls {
		if err := c.call(ctx); err != nil {
			t.Fatalf("%s with the server up: %v", c.name, err)
		}
	}

	srv.Halt()
	for _, c := range calls {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.call(cctx)
		cancel()
		if securetextd.ErrorCode(err) != securetextd.EUNAVAILABLE {
			t.Errorf("%s with the server down: %v, want EUNAVAILABLE", c.name, err)
		}
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	for _, c := range calls[:len(calls)-1] {
		if err := c.call(ctx); err != nil {
			t.Errorf("%s with the server back: %v", c.name, err)
		}
	}
}

// notFoundIsFine drops an ENOTFOUND error: the call reached the database.
func notFoundIsFine(err error) error {
	if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
		return nil
	}
	return err
}
