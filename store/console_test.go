package store

import (
	"bytes"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// TestTOTPStore: the secret is sealed at rest and opens for its account
// only, a time step is accepted once (a replayed code is refused),
// recovery codes work once each, and a reset clears everything and signs
// the account out of the console.
func TestTOTPStore(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	for _, a := range []string{drWho, "nurse@clinic.example"} {
		if err := db.CreateSender(ctx, a, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := db.TOTPSecret(ctx, drWho); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Fatalf("secret before enrolment: %v", err)
	}
	token, err := db.CreateConsoleSession(ctx, drWho, securetextd.LevelSignedIn)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	if err := db.EnrollTOTP(ctx, "Dr.Who@clinic.example", secret, 100, []string{"AAAA-BBBB-CCCC-DDDD", "EEEE-FFFF-GGGG-HHHH"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ConsoleSession(ctx, token, time.Hour, time.Hour); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("a session from before the enrolment lives on: %v", err)
	}
	a, err := db.SenderAccount(ctx, drWho)
	if err != nil || !a.TOTP || a.Admin {
		t.Fatalf("account %+v, %v", a, err)
	}
	got, step, err := db.TOTPSecret(ctx, drWho)
	if err != nil || got != secret || step != 100 {
		t.Fatalf("TOTPSecret = %q %d %v", got, step, err)
	}
	var sealed []byte
	if err := db.read.QueryRow(`SELECT totp_secret FROM senders WHERE address = ?`, drWho).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte(secret)) || bytes.Contains(sealed, []byte("JBSWY3DP")) {
		t.Error("the TOTP secret is in the database in clear")
	}
	// Moved to another account's row in plain SQL, it does not open.
	if _, err := db.write.Exec(`UPDATE senders SET totp_secret = ? WHERE address = ?`, sealed, "nurse@clinic.example"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.TOTPSecret(ctx, "nurse@clinic.example"); err == nil {
		t.Error("a secret copied to another account opened")
	}

	// Replay: the enrolment's own step, an earlier one, a step twice.
	wantCode(t, db.UseTOTPStep(ctx, drWho, 100), securetextd.EUNAUTHORIZED)
	wantCode(t, db.UseTOTPStep(ctx, drWho, 99), securetextd.EUNAUTHORIZED)
	if err := db.UseTOTPStep(ctx, drWho, 101); err != nil {
		t.Fatal(err)
	}
	wantCode(t, db.UseTOTPStep(ctx, drWho, 101), securetextd.EUNAUTHORIZED)

	// Recovery codes: typed loosely, once each.
	left, err := db.UseRecoveryCode(ctx, drWho, "aaaa bbbb cccc dddd")
	if err != nil || left != 1 {
		t.Fatalf("UseRecoveryCode = %d, %v", left, err)
	}
	_, err = db.UseRecoveryCode(ctx, drWho, "AAAA-BBBB-CCCC-DDDD")
	wantCode(t, err, securetextd.EUNAUTHORIZED)
	_, err = db.UseRecoveryCode(ctx, "nurse@clinic.example", "EEEE-FFFF-GGGG-HHHH")
	wantCode(t, err, securetextd.EUNAUTHORIZED)

	token, err = db.CreateConsoleSession(ctx, drWho, securetextd.LevelSignedIn)
	if err != nil {
		t.Fatal(err)
	}
	rctx := securetextd.WithOrigin(ctx, securetextd.Origin{Actor: "operator:alice"})
	if err := db.ResetTOTP(rctx, drWho); err != nil {
		t.Fatal(err)
	}
	wantCode(t, db.ResetTOTP(rctx, "nobody@clinic.example"), securetextd.ENOTFOUND)
	if _, _, err := db.TOTPSecret(ctx, drWho); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("secret after reset: %v", err)
	}
	if n := count(t, db, "sender_recovery_codes"); n != 0 {
		t.Errorf("%d recovery codes after reset", n)
	}
	if _, err := db.ConsoleSession(ctx, token, time.Hour, time.Hour); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("a session lives on after the reset: %v", err)
	}
	ev, err := db.LastAudit(ctx, securetextd.AuditTOTPReset)
	if err != nil || ev.Actor != "operator:alice" || ev.Detail != drWho {
		t.Errorf("reset audited as %+v, %v", ev, err)
	}
}

// TestConsoleSessions: levels, the idle and absolute limits, sign-out, a
// password change, and admin flags.
func TestConsoleSessions(t *testing.T) {
	db, clk := lifecycleDB(t, Policy{})
	ctx := t.Context()
	if err := db.CreateSender(ctx, drWho, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateConsoleSession(ctx, "nobody@clinic.example", securetextd.LevelSignedIn); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("session for no account: %v", err)
	}
	pw, err := db.CreateConsoleSession(ctx, drWho, securetextd.LevelPassword)
	if err != nil {
		t.Fatal(err)
	}
	s, err := db.ConsoleSession(ctx, pw, 15*time.Minute, time.Hour)
	if err != nil || s.Level != securetextd.LevelPassword || s.Address != drWho {
		t.Fatalf("session %+v, %v", s, err)
	}
	clk.advance(15*time.Minute + time.Second)
	if _, err := db.ConsoleSession(ctx, pw, 15*time.Minute, time.Hour); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("idle session: %v", err)
	}
	full, _ := db.CreateConsoleSession(ctx, drWho, securetextd.LevelSignedIn)
	for range 4 {
		clk.advance(14 * time.Minute)
		if _, err := db.ConsoleSession(ctx, full, 15*time.Minute, time.Hour); err != nil {
			t.Fatalf("active session ended: %v", err)
		}
	}
	clk.advance(5 * time.Minute)
	if _, err := db.ConsoleSession(ctx, full, 15*time.Minute, time.Hour); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("session past its absolute limit: %v", err)
	}
	if n, err := db.SweepConsoleSessions(ctx, 15*time.Minute, time.Hour); err != nil || n != 2 {
		t.Errorf("swept %d, %v", n, err)
	}
	out, _ := db.CreateConsoleSession(ctx, drWho, securetextd.LevelSignedIn)
	if err := db.DeleteConsoleSession(ctx, out); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ConsoleSession(ctx, out, time.Hour, time.Hour); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("signed-out session: %v", err)
	}
	live, _ := db.CreateConsoleSession(ctx, drWho, securetextd.LevelSignedIn)
	if err := db.SetSenderPassword(ctx, drWho, "another fine password"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ConsoleSession(ctx, live, time.Hour, time.Hour); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("session after a password change: %v", err)
	}

	if err := db.SetAdmin(ctx, "DR.WHO@clinic.example", true); err != nil {
		t.Fatal(err)
	}
	if a, _ := db.SenderAccount(ctx, drWho); !a.Admin {
		t.Error("not an admin after SetAdmin on")
	}
	if err := db.SetAdmin(ctx, drWho, false); err != nil {
		t.Fatal(err)
	}
	if a, _ := db.SenderAccount(ctx, drWho); a.Admin {
		t.Error("an admin after SetAdmin off")
	}
	wantCode(t, db.SetAdmin(ctx, "nobody@clinic.example", true), securetextd.ENOTFOUND)
	if n := countEvent(t, db, securetextd.AuditAdminChanged); n != 2 {
		t.Errorf("%d admin changes audited, want 2", n)
	}
}
