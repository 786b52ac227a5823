package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

func TestRecipients(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return t0 }
	const (
		phone = securetextd.Phone("+12125550123")
		other = securetextd.Phone("+12125550124")
		pw    = "correct horse battery"
	)

	_, err := db.Recipient(ctx, phone)
	wantCode(t, err, securetextd.ENOTFOUND)
	if err := db.CreateRecipient(ctx, phone, pw, " pat@example.com "); err != nil {
		t.Fatal(err)
	}
	r, err := db.Recipient(ctx, phone)
	if err != nil {
		t.Fatal(err)
	}
	if r.Phone != phone || !r.Created.Equal(t0) {
		t.Errorf("Recipient = %+v", r)
	}
	// No recovery address is allowed: the number just cannot reset.
	if err := db.CreateRecipient(ctx, other, "another good one", ""); err != nil {
		t.Fatal(err)
	}

	t.Run("create refuses", func(t *testing.T) {
		for _, tt := range []struct {
			phone              securetextd.Phone
			password, recovery string
			code               string
		}{
			{phone, pw, "", securetextd.ECONFLICT},
			{phone, "something else entirely", "x@example.com", securetextd.ECONFLICT},
			{"2125550125", pw, "", securetextd.EINVALID},
			{"+12125550125", "short", "", securetextd.EINVALID},
			{"+12125550125", pw, "Pat <pat@example.com>", securetextd.EINVALID},
			{"+12125550125", pw, "not an address", securetextd.EINVALID},
		} {
			err := db.CreateRecipient(ctx, tt.phone, tt.password, tt.recovery)
			wantCode(t, err, tt.code)
		}
		if _, err := db.Recipient(ctx, "+12125550125"); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
			t.Errorf("a refused account exists: %v", err)
		}
	})

	t.Run("authenticate", func(t *testing.T) {
		if err := db.AuthenticateRecipient(ctx, phone, pw); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			phone    securetextd.Phone
			password string
		}{
			{phone, pw + "!"},
			{phone, ""},
			{phone, "another good one"}, // the other number's
			{"+12125550199", pw},        // no account
			{"garbage", pw},
			{"", ""},
		} {
			err := db.AuthenticateRecipient(ctx, tt.phone, tt.password)
			wantCode(t, err, securetextd.EUNAUTHORIZED)
			// The same message for all, so that it tells nothing.
			if securetextd.ErrorMessage(err) != "Wrong password." {
				t.Errorf("message %q", securetextd.ErrorMessage(err))
			}
		}
	})

	t.Run("set password", func(t *testing.T) {
		mine, err := db.CreateSession(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := db.CreateSession(ctx, phone)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.SetRecipientPassword(ctx, other, "a new password"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, db.AuthenticateRecipient(ctx, other, "another good one"), securetextd.EUNAUTHORIZED)
		if err := db.AuthenticateRecipient(ctx, other, "a new password"); err != nil {
			t.Errorf("new password: %v", err)
		}
		// Every session of the number ends; others' do not.
		_, err = db.Session(ctx, mine, time.Hour, time.Hour)
		wantCode(t, err, securetextd.ENOTFOUND)
		if _, err := db.Session(ctx, theirs, time.Hour, time.Hour); err != nil {
			t.Errorf("another number's session ended: %v", err)
		}
		wantCode(t, db.SetRecipientPassword(ctx, "+12125550199", "a new password"), securetextd.ENOTFOUND)
		wantCode(t, db.SetRecipientPassword(ctx, other, "short"), securetextd.EINVALID)
	})
}

// TestAuthenticateUnknownHashes checks that an unknown account costs a
// password hash, as a known one does, so that timing does not tell them
// apart. With every hashing slot taken, a check must wait for one; an
// answer that comes without waiting skipped the hash.
func TestAuthenticateUnknownHashes(t *testing.T) {
	db := openTestDB(t)
	if err := db.CreateRecipient(t.Context(), "+12125550123", "correct horse battery", ""); err != nil {
		t.Fatal(err)
	}
	for range cap(db.hashing) {
		db.hashing <- struct{}{}
	}
	defer func() {
		for range cap(db.hashing) {
			<-db.hashing
		}
	}()
	recipient := func(phone securetextd.Phone) func(context.Context) error {
		return func(ctx context.Context) error { return db.AuthenticateRecipient(ctx, phone, "wrong password") }
	}
	checks := map[string]func(context.Context) error{
		"known number":   recipient("+12125550123"),
		"unknown number": recipient("+12125550199"),
		"not a number":   recipient("garbage"),
		"unknown sender": func(ctx context.Context) error {
			_, err := db.AuthenticateSender(ctx, "nobody@example.org", "wrong password")
			return err
		},
	}
	for name, check := range checks {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		err := check(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v without waiting for a hashing slot", name, err)
		}
	}
}

func TestPasswordReset(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	now := t0
	db.Now = func() time.Time { return now }
	const (
		phone     = securetextd.Phone("+12125550123")
		noAddress = securetextd.Phone("+12125550124")
		unknown   = securetextd.Phone("+12125550199")
		pw        = "correct horse battery"
	)
	if err := db.CreateRecipient(ctx, phone, pw, "pat@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRecipient(ctx, noAddress, pw, ""); err != nil {
		t.Fatal(err)
	}
	// Resets go only to a confirmed address (TestRecoveryConfirmation).
	confirmRecovery(t, db)

	// resetJobs returns the reset emails waiting, opened, and completes them.
	resetJobs := func() []securetextd.MailJob {
		t.Helper()
		var mails []securetextd.MailJob
		for {
			j, err := db.NextJob(ctx, now, securetextd.JobKindReset)
			if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
				return mails
			}
			if err != nil {
				t.Fatal(err)
			}
			var mj securetextd.MailJob
			if err := json.Unmarshal(j.Payload, &mj); err != nil {
				t.Fatal(err)
			}
			mails = append(mails, mj)
			if err := db.CompleteJob(ctx, j.ID); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("nothing for a number that cannot reset", func(t *testing.T) {
		wake := db.Wake()
		for _, p := range []securetextd.Phone{unknown, noAddress, "garbage"} {
			if err := db.RequestPasswordReset(ctx, p, time.Hour); err != nil {
				t.Errorf("RequestPasswordReset(%s) = %v, want nil", p, err)
			}
		}
		if n, m := len(mailJobs(t, db, securetextd.JobKindReset)), count(t, db, "reset_tokens"); n != 0 || m != 0 {
			t.Errorf("%d jobs, %d reset tokens", n, m)
		}
		select {
		case <-wake:
			t.Error("the outbox was woken for nothing")
		default:
		}
	})

	wake := db.Wake()
	for range 2 {
		if err := db.RequestPasswordReset(ctx, phone, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-wake:
	default:
		t.Error("RequestPasswordReset did not wake the outbox")
	}
	mails := resetJobs()
	if len(mails) != 2 {
		t.Fatalf("%d reset emails, want 2", len(mails))
	}
	for _, m := range mails {
		if m.To != "pat@example.com" || m.Phone != phone || len(m.Token) != 43 || m.MessageID != 0 || m.ConversationID != 0 {
			t.Errorf("reset email %+v", m)
		}
	}
	first, second := mails[0].Token, mails[1].Token
	if first == second {
		t.Fatal("two requests, one token")
	}

	session, err := db.CreateSession(ctx, phone)
	if err != nil {
		t.Fatal(err)
	}
	// Checking changes nothing: the form can be shown again.
	for range 2 {
		if p, err := db.CheckResetToken(ctx, first); err != nil || p != phone {
			t.Fatalf("CheckResetToken = %q, %v", p, err)
		}
	}
	for _, bad := range []string{"", "x", first[:42], first + "A"} {
		_, err := db.CheckResetToken(ctx, bad)
		wantCode(t, err, securetextd.ENOTFOUND)
	}
	// A password too short leaves the token for another try.
	_, err = db.ResetPassword(ctx, first, "short")
	wantCode(t, err, securetextd.EINVALID)
	if _, err := db.CheckResetToken(ctx, first); err != nil {
		t.Fatalf("token gone after a refused password: %v", err)
	}

	if p, err := db.ResetPassword(ctx, first, "a brand new password"); err != nil || p != phone {
		t.Fatalf("ResetPassword = %q, %v", p, err)
	}
	wantCode(t, db.AuthenticateRecipient(ctx, phone, pw), securetextd.EUNAUTHORIZED)
	if err := db.AuthenticateRecipient(ctx, phone, "a brand new password"); err != nil {
		t.Errorf("new password: %v", err)
	}
	// Single use, and the other token went with it.
	for _, token := range []string{first, second} {
		_, err := db.ResetPassword(ctx, token, "yet another password")
		wantCode(t, err, securetextd.ENOTFOUND)
		_, err = db.CheckResetToken(ctx, token)
		wantCode(t, err, securetextd.ENOTFOUND)
	}
	// Whoever was logged in is not any more.
	_, err = db.Session(ctx, session, time.Hour, time.Hour)
	wantCode(t, err, securetextd.ENOTFOUND)
	if n := count(t, db, "sessions"); n != 0 {
		t.Errorf("%d sessions left after the reset", n)
	}

	t.Run("expiry", func(t *testing.T) {
		if err := db.RequestPasswordReset(ctx, phone, 15*time.Minute); err != nil {
			t.Fatal(err)
		}
		token := resetJobs()[0].Token
		now = now.Add(15*time.Minute - time.Nanosecond)
		if _, err := db.CheckResetToken(ctx, token); err != nil {
			t.Errorf("a token just before it expires: %v", err)
		}
		now = now.Add(time.Nanosecond)
		_, err := db.CheckResetToken(ctx, token)
		wantCode(t, err, securetextd.ENOTFOUND)
		_, err = db.ResetPassword(ctx, token, "too late for this")
		wantCode(t, err, securetextd.ENOTFOUND)
		if err := db.AuthenticateRecipient(ctx, phone, "a brand new password"); err != nil {
			t.Errorf("an expired token changed the password: %v", err)
		}
		// The next request clears expired tokens away.
		if err := db.RequestPasswordReset(ctx, phone, time.Hour); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, "reset_tokens"); n != 1 {
			t.Errorf("%d reset tokens, want the new one only", n)
		}
	})
}
