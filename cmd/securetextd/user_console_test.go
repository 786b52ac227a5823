package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/securetextd/securetextd"
)

// TestUserConsoleCommands: user add --admin, user admin on|off, and user
// totp reset --by, each audited, with their usage errors.
func TestUserConsoleCommands(t *testing.T) {
	cfgPath, cfg := writeTestConfig(t, "http://127.0.0.1:9", "")
	run1 := func(stdin string, args ...string) string {
		t.Helper()
		return runCLI(t, stdin, append(args, "--config", cfgPath)...)
	}
	run1("correct horse battery staple\n", "user", "add", "boss@clinic.example", "--admin", "--password-stdin")
	run1("correct horse battery staple\n", "user", "add", "dr.who@clinic.example", "--password-stdin")
	if got := run1("", "user", "admin", "dr.who@clinic.example", "on"); got != "dr.who@clinic.example is an admin\n" {
		t.Errorf("user admin on: %q", got)
	}
	run1("", "user", "admin", "boss@clinic.example", "off")

	db, err := openStore(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := db.EnrollTOTP(ctx, "dr.who@clinic.example", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", 1, []string{"AAAA-BBBB-CCCC-DDDD"}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	if got := run1("", "user", "totp", "reset", "dr.who@clinic.example", "--by", "alice"); !strings.HasPrefix(got, "cleared the second factor of dr.who@clinic.example") {
		t.Errorf("user totp reset: %q", got)
	}
	db, err = openStore(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for addr, admin := range map[string]bool{"dr.who@clinic.example": true, "boss@clinic.example": false} {
		a, err := db.SenderAccount(ctx, addr)
		if err != nil || a.Admin != admin || a.TOTP {
			t.Errorf("%s: %+v, %v", addr, a, err)
		}
	}
	ev, err := db.LastAudit(ctx, securetextd.AuditTOTPReset)
	if err != nil || ev.Actor != "operator:alice" || ev.Detail != "dr.who@clinic.example" {
		t.Errorf("reset audited as %+v, %v", ev, err)
	}
	ev, err = db.LastAudit(ctx, securetextd.AuditAdminChanged)
	if err != nil || ev.Actor != "operator" || ev.Detail != "off boss@clinic.example" {
		t.Errorf("admin change audited as %+v, %v", ev, err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "totp", "reset", "dr.who@clinic.example"}, "user totp reset needs --by NAME"},
		{[]string{"user", "admin", "dr.who@clinic.example", "maybe"}, "user admin needs ADDRESS and on or off"},
		{[]string{"user", "passwd", "dr.who@clinic.example", "--admin"}, "--admin is for user add"},
		{[]string{"user", "admin", "nobody@clinic.example", "on"}, "no sender nobody@clinic.example"},
	} {
		err := run(append(tc.args, "--config", cfgPath), strings.NewReader(""), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
