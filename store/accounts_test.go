package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// mailJobs returns the emails of kind waiting in the outbox, opened, and
// completes their jobs.
func mailJobs(t *testing.T, db *DB, kind string) []securetextd.MailJob {
	t.Helper()
	var mails []securetextd.MailJob
	for {
		j, err := db.NextJob(t.Context(), db.Now().Add(time.Second), kind)
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
		if err := db.CompleteJob(t.Context(), j.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// confirmRecovery opens every confirmation link waiting in the outbox.
func confirmRecovery(t *testing.T, db *DB) {
	t.Helper()
	for _, m := range mailJobs(t, db, securetextd.JobKindConfirm) {
		if _, err := db.ConfirmRecoveryAddress(t.Context(), m.Token); err != nil {
			t.Fatalf("confirm %s: %v", m.To, err)
		}
	}
}

// TestRecoveryConfirmation: the address given at the first visit is sent
// a confirmation link and no reset until the link is used; the token is
// stored hashed, works once and expires; a new address waits for its own
// confirmation while the confirmed one stays in force.
func TestRecoveryConfirmation(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	const phone = securetextd.Phone("+12125550123")
	if err := db.CreateRecipient(ctx, phone, "correct horse battery", "pat@example.com"); err != nil {
		t.Fatal(err)
	}
	confirmed := func(want string) {
		t.Helper()
		got, ok, err := db.ConfirmedRecoveryAddress(ctx, phone)
		if err != nil || got != want || ok != (want != "") {
			t.Errorf("ConfirmedRecoveryAddress = %q, %v, %v; want %q", got, ok, err, want)
		}
	}

	// Unconfirmed: a reset request sends nothing.
	confirmed("")
	if err := db.RequestPasswordReset(ctx, phone, time.Hour); err != nil {
		t.Fatal(err)
	}
	if m := mailJobs(t, db, securetextd.JobKindReset); len(m) != 0 {
		t.Fatalf("a reset mailed to an unconfirmed address: %+v", m)
	}
	mails := mailJobs(t, db, securetextd.JobKindConfirm)
	if len(mails) != 1 || mails[0].To != "pat@example.com" || mails[0].Phone != phone || len(mails[0].Token) != 43 {
		t.Fatalf("confirmation emails %+v", mails)
	}
	token := mails[0].Token
	if n := count(t, db, "confirm_tokens"); n != 1 {
		t.Fatalf("%d confirmation tokens", n)
	}
	// Only the hash is kept; the address is sealed.
	for _, table := range []string{"confirm_tokens", "recipients"} {
		if dump := dumpTable(t, db, table); bytes.Contains(dump, []byte(token)) || bytes.Contains(dump, []byte("pat@example.com")) {
			t.Errorf("%s holds the token or the address in clear", table)
		}
	}
	if p, addr, err := db.CheckConfirmToken(ctx, token); err != nil || p != phone || addr != "pat@example.com" {
		t.Fatalf("CheckConfirmToken = %q, %q, %v", p, addr, err)
	}
	if p, err := db.ConfirmRecoveryAddress(ctx, token); err != nil || p != phone {
		t.Fatalf("ConfirmRecoveryAddress = %q, %v", p, err)
	}
	confirmed("pat@example.com")
	// Single use.
	_, err := db.ConfirmRecoveryAddress(ctx, token)
	wantCode(t, err, securetextd.ENOTFOUND)
	_, _, err = db.CheckConfirmToken(ctx, token)
	wantCode(t, err, securetextd.ENOTFOUND)
	if err := db.RequestPasswordReset(ctx, phone, time.Hour); err != nil {
		t.Fatal(err)
	}
	if m := mailJobs(t, db, securetextd.JobKindReset); len(m) != 1 || m[0].To != "pat@example.com" {
		t.Fatalf("reset emails to the confirmed address: %+v", m)
	}

	// A new address: the old one stays in force until it is confirmed; a
	// newer one replaces the link of the one before.
	if err := db.SetRecoveryAddress(ctx, phone, "typo@exampel.com"); err != nil {
		t.Fatal(err)
	}
	stale := mailJobs(t, db, securetextd.JobKindConfirm)[0].Token
	if err := db.SetRecoveryAddress(ctx, phone, "new@example.com"); err != nil {
		t.Fatal(err)
	}
	fresh := mailJobs(t, db, securetextd.JobKindConfirm)[0]
	confirmed("pat@example.com")
	a, err := db.Account(ctx, phone)
	if err != nil || a.Recovery != "pat@example.com" || !a.Confirmed || a.Pending != "new@example.com" {
		t.Fatalf("Account = %+v, %v", a, err)
	}
	_, err = db.ConfirmRecoveryAddress(ctx, stale)
	wantCode(t, err, securetextd.ENOTFOUND)
	// It expires.
	now = now.Add(securetextd.ConfirmValidFor)
	_, err = db.ConfirmRecoveryAddress(ctx, fresh.Token)
	wantCode(t, err, securetextd.ENOTFOUND)
	confirmed("pat@example.com")
	now = now.Add(time.Minute)
	if err := db.SetRecoveryAddress(ctx, phone, "new@example.com"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "confirm_tokens"); n != 1 {
		t.Errorf("%d confirmation tokens: the expired one was not deleted", n)
	}
	confirmRecovery(t, db)
	confirmed("new@example.com")
	if err := db.SetRecoveryAddress(ctx, phone, "Pat <pat@example.com>"); securetextd.ErrorCode(err) != securetextd.EINVALID {
		t.Errorf("a display name: %v", err)
	}

	// Each step is audited.
	for _, want := range []string{securetextd.AuditConfirmSent, securetextd.AuditRecoveryConfirmed} {
		if countEvent(t, db, want) == 0 {
			t.Errorf("no %s in the audit trail", want)
		}
	}
}

// TestRecipientRepairs: the operator's unlock, reset and delete, and the
// account list they work from.
func TestRecipientRepairs(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	const phone, other = securetextd.Phone("+12125550123"), securetextd.Phone("+12125550124")
	for _, p := range []securetextd.Phone{phone, other} {
		if err := db.CreateRecipient(ctx, p, "correct horse battery", "pat@example.com"); err != nil {
			t.Fatal(err)
		}
	}
	confirmRecovery(t, db)
	if _, err := db.CreateSession(ctx, phone); err != nil {
		t.Fatal(err)
	}
	rule := StrikeRule{Max: 2, Window: 15 * time.Minute}
	for range 2 {
		if _, _, err := db.Strike(ctx, StrikesLogin, rule, "phone:"+string(phone)); err != nil {
			t.Fatal(err)
		}
	}
	list, err := db.Accounts(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("Accounts = %v, %v", list, err)
	}
	if a := list[0]; a.Phone != phone || !a.Confirmed || a.LockedUntil.IsZero() || a.Sessions != 1 || a.LastSeen.IsZero() || a.Recovery != "" {
		t.Errorf("listed %+v", a)
	}

	if err := db.UnlockRecipient(ctx, phone); err != nil {
		t.Fatal(err)
	}
	if wait, err := db.StrikesLocked(ctx, StrikesLogin, "phone:"+string(phone)); err != nil || wait != 0 {
		t.Errorf("after unlock: locked %v, %v", wait, err)
	}

	if err := db.ResetRecipient(ctx, phone); err != nil {
		t.Fatal(err)
	}
	_, err = db.Recipient(ctx, phone)
	wantCode(t, err, securetextd.ENOTFOUND) // set up again at the next visit
	wantCode(t, db.AuthenticateRecipient(ctx, phone, "correct horse battery"), securetextd.EUNAUTHORIZED)
	if a, err := db.Account(ctx, phone); err != nil || !a.NeedsSetup || a.Recovery != "" || a.Confirmed || a.Sessions != 0 {
		t.Errorf("after reset: %+v, %v", a, err)
	}
	if _, ok, _ := db.ConfirmedRecoveryAddress(ctx, phone); ok {
		t.Error("a reset account still has a recovery address")
	}
	if err := db.CreateRecipient(ctx, phone, "a fresh new password", ""); err != nil {
		t.Fatalf("setting up a reset account again: %v", err)
	}
	if err := db.AuthenticateRecipient(ctx, phone, "a fresh new password"); err != nil {
		t.Error(err)
	}

	if err := db.DeleteRecipient(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Account(ctx, other); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("deleted account: %v", err)
	}
	for _, f := range []func() error{
		func() error { return db.DeleteRecipient(ctx, other) },
		func() error { return db.ResetRecipient(ctx, other) },
		func() error { return db.UnlockRecipient(ctx, other) },
	} {
		wantCode(t, f(), securetextd.ENOTFOUND)
	}
	for _, want := range []string{securetextd.AuditRecipientUnlocked, securetextd.AuditRecipientReset, securetextd.AuditRecipientDeleted} {
		if n := countEvent(t, db, want); n != 1 {
			t.Errorf("%d %s in the audit trail", n, want)
		}
	}
}

// TestSignIns: the account page's list keeps the latest ten, newest
// first, sealed; signing out everywhere ends every session.
func TestSignIns(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	const phone = securetextd.Phone("+12125550123")
	if err := db.CreateRecipient(ctx, phone, "correct horse battery", ""); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		now = now.Add(time.Minute)
		if err := db.RecordSignIn(ctx, phone, securetextd.SignIn{Device: "Firefox on Linux", Network: "198.51.100.0/24", Private: i%2 == 0}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := db.SignIns(ctx, phone)
	if err != nil || len(list) != 10 {
		t.Fatalf("SignIns = %d, %v", len(list), err)
	}
	if !list[0].Time.Equal(now) || list[0].Device != "Firefox on Linux" || list[0].Network != "198.51.100.0/24" || list[0].Private {
		t.Errorf("newest sign-in %+v", list[0])
	}
	if bytes.Contains(dumpTable(t, db, "sign_ins"), []byte("198.51.100")) {
		t.Error("sign_ins holds the network in clear")
	}
	for range 3 {
		if _, err := db.CreateSession(ctx, phone); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := db.SignOutEverywhere(ctx, phone); err != nil || n != 3 {
		t.Fatalf("SignOutEverywhere = %d, %v", n, err)
	}
	if n := count(t, db, "sessions"); n != 0 {
		t.Errorf("%d sessions left", n)
	}
	if err := db.SetRecipientLanguage(ctx, phone, "es"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, db.SetRecipientLanguage(ctx, phone, "fr"), securetextd.EINVALID)
	if a, err := db.Account(ctx, phone); err != nil || a.Language != "es" {
		t.Errorf("language: %+v, %v", a, err)
	}
}

// dumpTable returns every value of every row of table, concatenated: to
// look for what must not be there in clear.
func dumpTable(t *testing.T, db *DB, table string) []byte {
	t.Helper()
	rows, err := db.read.QueryContext(t.Context(), `SELECT * FROM `+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			out = fmt.Appendf(out, "%s|", v)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
