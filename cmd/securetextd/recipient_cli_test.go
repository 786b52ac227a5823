package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// TestRecipientCommands: through the real command line, an operator lists
// the accounts (masked unless --full), shows one, lifts a lockout, resets
// an account so that the next visit sets it up again, and deletes one
// while its conversation stays; each run is in the audit trail under the
// name --by gives, and --by is required.
func TestRecipientCommands(t *testing.T) {
	cfgPath, cfg := writeTestConfig(t, "http://127.0.0.1:9", "")
	const locked, plain = securetextd.Phone("+12125550123"), securetextd.Phone("+12125550124")
	db, err := openStore(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// plain has a conversation, which must outlive its account.
	d := db.NewDraft()
	w, _ := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
	io.WriteString(w, "Your results are in.")
	w.Close()
	if _, err := d.Commit(ctx, &securetextd.Message{Sender: "dr.who@clinic.example", Subject: "Results", MessageID: "r1@clinic.example", Auth: "smtp-auth"},
		[]securetextd.Phone{plain}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRecipient(ctx, locked, "correct horse battery", "pat@example.com"); err != nil {
		t.Fatal(err)
	}
	job, err := db.NextJob(ctx, time.Now().Add(time.Hour), securetextd.JobKindConfirm)
	if err != nil {
		t.Fatal(err)
	}
	var mj securetextd.MailJob
	json.Unmarshal(job.Payload, &mj)
	if _, err := db.ConfirmRecoveryAddress(ctx, mj.Token); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRecipient(ctx, plain, "another good password", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateSession(ctx, locked); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, _, err := db.Strike(ctx, store.StrikesLogin, store.StrikeRule{Max: 5, Window: time.Hour}, "phone:"+string(locked)); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	cli := func(args ...string) string {
		t.Helper()
		stdout, stderr, code := runBinary(t, append(args, "--config", cfgPath)...)
		if code != 0 {
			t.Fatalf("securetextd %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		}
		return stdout
	}
	want := func(what, out string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("%s does not say %q:\n%s", what, w, out)
			}
		}
	}

	// --by is required, and must be a name.
	for _, args := range [][]string{{"recipient", "list"}, {"recipient", "reset", "+12125550123"}, {"recipient", "unlock", "+12125550123", "--by", "two words"}} {
		_, stderr, code := runBinary(t, append(args, "--config", cfgPath)...)
		if code != 2 || !strings.Contains(stderr, "--by") || !strings.Contains(stderr, "securetextd help recipient") {
			t.Errorf("securetextd %s: exit %d, %s", strings.Join(args, " "), code, stderr)
		}
	}

	list := cli("recipient", "list", "--by", "jane")
	want("list", list, "phone", "last seen", locked.Masked(), plain.Masked(), " confirmed ", " none ", "until ")
	if strings.Contains(list, string(locked)) {
		t.Errorf("list shows a whole number without --full:\n%s", list)
	}
	want("list --full", cli("recipient", "list", "--full", "--by", "jane"), string(locked), string(plain))
	want("show", cli("recipient", "show", "212-555-0123", "--by", "jane"),
		"phone:", string(locked), "recovery address:", "p…@example.com, confirmed", "sessions:", "1", "locked:", "until ")

	want("unlock", cli("recipient", "unlock", string(locked), "--by", "jane"), "unlocked "+string(locked))
	if out := cli("recipient", "show", string(locked), "--by", "jane"); !strings.Contains(out, "locked:") || strings.Contains(out, "until ") {
		t.Errorf("still locked after unlock:\n%s", out)
	}

	want("reset", cli("recipient", "reset", string(locked), "--by", "jane"), "reset "+string(locked), "sets the account up again")
	want("show after reset", cli("recipient", "show", string(locked), "--by", "jane"),
		"cleared by a reset", "none (reset)", "sessions:")

	want("delete", cli("recipient", "delete", string(plain), "--by", "jane"), "deleted the account of "+string(plain))
	if _, stderr, code := runBinary(t, "recipient", "show", string(plain), "--by", "jane", "--config", cfgPath); code != 1 || !strings.Contains(stderr, "no account for this number") {
		t.Errorf("show after delete: exit %d, %s", code, stderr)
	}

	db, err = openStore(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Recipient(ctx, locked); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("after reset, the account is not set up again at the next visit: %v", err)
	}
	if err := db.AuthenticateRecipient(ctx, locked, "correct horse battery"); err == nil {
		t.Error("the old password works after reset")
	}
	if inbox, err := db.Inbox(ctx, plain); err != nil || len(inbox) != 1 {
		t.Errorf("the deleted account's conversation: %d, %v", len(inbox), err)
	}
	// Each run is audited under its operator.
	seen := map[string]int{}
	err = db.AuditTrail(ctx, time.Time{}, func(ev securetextd.AuditEvent) error {
		if ev.Actor == "operator:jane" {
			seen[ev.Event]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for ev, n := range map[string]int{
		securetextd.AuditRecipientListed: 2, securetextd.AuditRecipientShown: 3, securetextd.AuditRecipientUnlocked: 1,
		securetextd.AuditRecipientReset: 1, securetextd.AuditRecipientDeleted: 1,
	} {
		if seen[ev] != n {
			t.Errorf("%d %s events by operator:jane, want %d (all: %v)", seen[ev], ev, n, seen)
		}
	}
}
