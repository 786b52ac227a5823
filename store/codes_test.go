package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

const codePhone = securetextd.Phone("+12125550123")

// sentCode sends a code to phone by text and returns it, read from the
// job that carries it.
func sentCode(t *testing.T, db *DB, phone securetextd.Phone) string {
	t.Helper()
	ctx := t.Context()
	if err := db.SMSCodes().SendCode(ctx, phone); err != nil {
		t.Fatal(err)
	}
	var code string
	for {
		job, err := db.NextJob(ctx, db.Now(), securetextd.JobKindCode)
		if err != nil {
			t.Fatalf("no code job: %v", err)
		}
		var cj securetextd.CodeJob
		if err := json.Unmarshal(job.Payload, &cj); err != nil {
			t.Fatal(err)
		}
		if err := db.CompleteJob(ctx, job.ID); err != nil {
			t.Fatal(err)
		}
		if cj.To == phone {
			code = cj.Code
			break
		}
	}
	if !validCode(code) {
		t.Fatalf("code %q is not %d digits", code, securetextd.CodeDigits)
	}
	return code
}

// wrongCode returns a code of the right form that is not code.
func wrongCode(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

// TestCodeSingleUse: a right code works once; a second use finds none.
func TestCodeSingleUse(t *testing.T) {
	db := openTestDB(t)
	newTestClock().set(db)
	code := sentCode(t, db, codePhone)
	if err := db.CheckCode(t.Context(), codePhone, code); err != nil {
		t.Fatalf("right code: %v", err)
	}
	if err := db.CheckCode(t.Context(), codePhone, code); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Fatalf("code used twice: %v, want ENOTFOUND", err)
	}
}

// TestCodeExpires: a code works for CodeValidFor, not a moment longer.
func TestCodeExpires(t *testing.T) {
	db := openTestDB(t)
	clock := newTestClock().set(db)
	code := sentCode(t, db, codePhone)
	clock.Advance(CodeValidFor)
	if err := db.CheckCode(t.Context(), codePhone, code); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Fatalf("code after %v: %v, want ENOTFOUND", CodeValidFor, err)
	}

	clock.Advance(time.Hour)
	code = sentCode(t, db, codePhone)
	clock.Advance(CodeValidFor - time.Second)
	if err := db.CheckCode(t.Context(), codePhone, code); err != nil {
		t.Fatalf("code a second before it expires: %v", err)
	}
}

// TestCodeTries: CodeMaxTries wrong answers use a code up, the right one
// included after them; fewer leave it working.
func TestCodeTries(t *testing.T) {
	db := openTestDB(t)
	clock := newTestClock().set(db)
	ctx := t.Context()
	code := sentCode(t, db, codePhone)
	for range CodeMaxTries - 1 {
		if err := db.CheckCode(ctx, codePhone, wrongCode(code)); securetextd.ErrorCode(err) != securetextd.EUNAUTHORIZED {
			t.Fatalf("wrong code: %v, want EUNAUTHORIZED", err)
		}
	}
	if err := db.CheckCode(ctx, codePhone, code); err != nil {
		t.Fatalf("right code after %d wrong: %v", CodeMaxTries-1, err)
	}

	clock.Advance(CodeResendAfter)
	code = sentCode(t, db, codePhone)
	for range CodeMaxTries {
		if err := db.CheckCode(ctx, codePhone, wrongCode(code)); securetextd.ErrorCode(err) != securetextd.EUNAUTHORIZED {
			t.Fatalf("wrong code: %v, want EUNAUTHORIZED", err)
		}
	}
	if err := db.CheckCode(ctx, codePhone, code); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Fatalf("right code after %d wrong: %v, want ENOTFOUND", CodeMaxTries, err)
	}
	// Not a code at all counts as a wrong one.
	clock.Advance(CodeResendAfter)
	code = sentCode(t, db, codePhone)
	if err := db.CheckCode(ctx, codePhone, "12 456"); securetextd.ErrorCode(err) != securetextd.EUNAUTHORIZED {
		t.Fatalf("garbage code: %v", err)
	}
	if err := db.CheckCode(ctx, codePhone, code); err != nil {
		t.Fatal(err)
	}
}

// TestCodeReplaced: a new code replaces the last; only the latest works.
func TestCodeReplaced(t *testing.T) {
	db := openTestDB(t)
	clock := newTestClock().set(db)
	first := sentCode(t, db, codePhone)
	clock.Advance(CodeResendAfter)
	second := sentCode(t, db, codePhone)
	if first != second {
		if err := db.CheckCode(t.Context(), codePhone, first); securetextd.ErrorCode(err) != securetextd.EUNAUTHORIZED {
			t.Fatalf("replaced code: %v, want EUNAUTHORIZED", err)
		}
	}
	if err := db.CheckCode(t.Context(), codePhone, second); err != nil {
		t.Fatalf("latest code: %v", err)
	}
}

// TestCodeResendLimit: one code per number per CodeResendAfter, and
// CodesPerHour in an hour; other numbers are not held up.
func TestCodeResendLimit(t *testing.T) {
	db := openTestDB(t)
	clock := newTestClock().set(db)
	ctx := t.Context()
	codes := db.SMSCodes()
	if err := codes.SendCode(ctx, codePhone); err != nil {
		t.Fatal(err)
	}
	err := codes.SendCode(ctx, codePhone)
	var lim *CodeLimitError
	if !errors.As(err, &lim) || securetextd.ErrorCode(err) != securetextd.ELIMIT || lim.Wait != CodeResendAfter {
		t.Fatalf("second code at once: %v, want a CodeLimitError of %v", err, CodeResendAfter)
	}
	if err := codes.SendCode(ctx, "+12125550199"); err != nil {
		t.Fatalf("another number: %v", err)
	}
	for i := 1; i < CodesPerHour; i++ {
		clock.Advance(CodeResendAfter)
		if err := codes.SendCode(ctx, codePhone); err != nil {
			t.Fatalf("code %d: %v", i+1, err)
		}
	}
	clock.Advance(CodeResendAfter)
	err = codes.SendCode(ctx, codePhone)
	if !errors.As(err, &lim) || lim.Wait <= CodeResendAfter {
		t.Fatalf("code %d in an hour: %v, want a CodeLimitError of most of an hour", CodesPerHour+1, err)
	}
	clock.Advance(time.Hour)
	if err := codes.SendCode(ctx, codePhone); err != nil {
		t.Fatalf("an hour later: %v", err)
	}
	n := 0
	for {
		job, err := db.NextJob(ctx, db.Now(), securetextd.JobKindCode)
		if err != nil {
			break
		}
		if err := db.CompleteJob(ctx, job.ID); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if want := CodesPerHour + 2; n != want {
		t.Errorf("%d code texts queued, want %d", n, want)
	}
}

// TestCodeStoredKeyed: the database holds neither the code nor its plain
// SHA-256, and a code row copied to another number matches nothing there.
func TestCodeStoredKeyed(t *testing.T) {
	db := openTestDB(t)
	newTestClock().set(db)
	ctx := t.Context()
	code := sentCode(t, db, codePhone)
	var mac []byte
	if err := db.read.QueryRowContext(ctx, `SELECT mac FROM recipient_codes WHERE phone = ?`, codePhone).Scan(&mac); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(mac, []byte(code)) || bytes.Equal(mac, sha(code)) {
		t.Fatal("the code is kept plainly or as its SHA-256")
	}
	other := securetextd.Phone("+12125550177")
	tamper(t, db, `INSERT INTO recipient_codes (phone, mac, key_id, channel, created, expires, tries)
		SELECT '+12125550177', mac, key_id, channel, created, expires, 0 FROM recipient_codes WHERE phone = '+12125550123'`)
	if err := db.CheckCode(ctx, other, code); securetextd.ErrorCode(err) != securetextd.EUNAUTHORIZED {
		t.Fatalf("copied code on another number: %v, want EUNAUTHORIZED", err)
	}
}

// TestDevices: a remembered browser is known for its number until it
// expires, to no other number, keeps its token when it proves a second
// number, and ForgetDevices forgets it.
func TestDevices(t *testing.T) {
	db := openTestDB(t)
	clock := newTestClock().set(db)
	ctx := t.Context()
	other := securetextd.Phone("+12125550177")
	tok, err := db.RememberDevice(ctx, codePhone, "", 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	known := func(phone securetextd.Phone, token string) bool {
		t.Helper()
		ok, err := db.KnownDevice(ctx, phone, token)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !known(codePhone, tok) || known(other, tok) || known(codePhone, "") || known(codePhone, tok+"x") {
		t.Fatal("a device is known only to the number it proved")
	}
	var hashes int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM recipient_devices WHERE token_hash = ?`, sha(tok)).Scan(&hashes); err != nil || hashes != 1 {
		t.Fatalf("device kept as its SHA-256: %d rows (%v)", hashes, err)
	}
	tok2, err := db.RememberDevice(ctx, other, tok, 30*24*time.Hour)
	if err != nil || tok2 != tok {
		t.Fatalf("second number: token %q (%v), want the same", tok2, err)
	}
	if !known(other, tok) {
		t.Fatal("second number not known")
	}
	clock.Advance(30*24*time.Hour - time.Second)
	if !known(codePhone, tok) {
		t.Fatal("device forgotten before its time")
	}
	clock.Advance(time.Second)
	if known(codePhone, tok) {
		t.Fatal("device known after portal.remember_device")
	}
	// An expired token is not taken again.
	tok3, err := db.RememberDevice(ctx, codePhone, tok, time.Hour)
	if err != nil || tok3 == tok {
		t.Fatalf("after expiry: token %q (%v), want a fresh one", tok3, err)
	}
	tok4, err := db.RememberDevice(ctx, codePhone, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	n, err := db.ForgetDevices(ctx, codePhone)
	if err != nil || n != 2 {
		t.Fatalf("ForgetDevices = %d, %v; want 2", n, err)
	}
	if known(codePhone, tok3) || known(codePhone, tok4) {
		t.Fatal("a device is known after ForgetDevices")
	}

	// The patient's "sign out of every device" forgets them too; the other
	// number keeps its own.
	tok5, err := db.RememberDevice(ctx, codePhone, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok6, err := db.RememberDevice(ctx, other, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SignOutEverywhere(ctx, codePhone); err != nil {
		t.Fatal(err)
	}
	if known(codePhone, tok5) || !known(other, tok6) {
		t.Fatal("SignOutEverywhere: the number's browsers not forgotten, or another number's forgotten")
	}
}

// TestDateOfBirth: kept as argon2id only, checked exactly, the latest
// given counts, and an unfit date is refused when given.
func TestDateOfBirth(t *testing.T) {
	db := openTestDB(t)
	newTestClock().set(db)
	ctx := t.Context()
	if has, err := db.HasDateOfBirth(ctx, codePhone); err != nil || has {
		t.Fatalf("HasDateOfBirth before = %v, %v", has, err)
	}
	if err := db.CheckDateOfBirth(ctx, codePhone, "1980-04-02"); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Fatalf("check with none kept: %v", err)
	}
	for _, bad := range []string{"", "1980-4-2", "02/04/1980", "1980-02-30", "1899-12-31", "2030-01-01"} {
		if err := db.SetDateOfBirth(ctx, codePhone, bad); securetextd.ErrorCode(err) != securetextd.EINVALID {
			t.Errorf("SetDateOfBirth(%q) = %v, want EINVALID", bad, err)
		}
	}
	if err := db.SetDateOfBirth(ctx, codePhone, "1980-04-02"); err != nil {
		t.Fatal(err)
	}
	if has, err := db.HasDateOfBirth(ctx, codePhone); err != nil || !has {
		t.Fatalf("HasDateOfBirth after = %v, %v", has, err)
	}
	var kept string
	if err := db.read.QueryRowContext(ctx, `SELECT date_of_birth FROM recipient_checks WHERE phone = ?`, codePhone).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix([]byte(kept), []byte("$argon2id$")) || bytes.Contains([]byte(kept), []byte("1980")) {
		t.Fatalf("kept %q, want an argon2id hash", kept)
	}
	for dob, want := range map[string]string{
		"1980-04-02": "", "1980-02-04": securetextd.EUNAUTHORIZED, "garbage": securetextd.EUNAUTHORIZED, "": securetextd.EUNAUTHORIZED,
	} {
		if err := db.CheckDateOfBirth(ctx, codePhone, dob); securetextd.ErrorCode(err) != want {
			t.Errorf("CheckDateOfBirth(%q) = %v, want %q", dob, err, want)
		}
	}
	if err := db.SetDateOfBirth(ctx, codePhone, "1981-05-03"); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckDateOfBirth(ctx, codePhone, "1980-04-02"); securetextd.ErrorCode(err) != securetextd.EUNAUTHORIZED {
		t.Errorf("the earlier date still works: %v", err)
	}
	if err := db.CheckDateOfBirth(context.Background(), codePhone, "1981-05-03"); err != nil {
		t.Errorf("the latest date: %v", err)
	}
}

func sha(s string) []byte { h := hashToken(s); return h[:] }

// TestEmailCodes: Codes sends a number's code by text and an address's by
// email (a JobKindEmailCode job for the mail drain), under the same rules:
// the resend limit, single use, a remembered device. Each channel refuses
// the other's recipients, and an address not as ParseEmail makes it.
func TestEmailCodes(t *testing.T) {
	db := openTestDB(t)
	newTestClock().set(db)
	ctx := t.Context()
	const jane = securetextd.Phone("jane@example.net")
	if err := db.Codes().SendCode(ctx, jane); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NextJob(ctx, db.Now(), securetextd.JobKindCode); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Fatalf("an address's code went as a text: %v", err)
	}
	job, err := db.NextJob(ctx, db.Now(), securetextd.JobKindEmailCode)
	if err != nil {
		t.Fatalf("no email code job: %v", err)
	}
	var cj securetextd.CodeJob
	if err := json.Unmarshal(job.Payload, &cj); err != nil || cj.To != jane || !validCode(cj.Code) {
		t.Fatalf("email code job %+v, %v", cj, err)
	}
	var limited *CodeLimitError
	if err := db.Codes().SendCode(ctx, jane); !errors.As(err, &limited) {
		t.Errorf("a second code at once: %v, want a CodeLimitError", err)
	}
	if err := db.Codes().CheckCode(ctx, jane, cj.Code); err != nil {
		t.Fatalf("right code: %v", err)
	}
	if err := db.Codes().CheckCode(ctx, jane, cj.Code); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("code used twice: %v, want ENOTFOUND", err)
	}
	device, err := db.RememberDevice(ctx, jane, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if known, err := db.KnownDevice(ctx, jane, device); err != nil || !known {
		t.Errorf("the address's device: %v, %v", known, err)
	}

	if err := db.Codes().SendCode(ctx, codePhone); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NextJob(ctx, db.Now(), securetextd.JobKindCode); err != nil {
		t.Errorf("a number's code did not go as a text: %v", err)
	}
	for _, tc := range []struct {
		name string
		send func() error
	}{
		{"text to an address", func() error { return db.SMSCodes().SendCode(ctx, jane) }},
		{"email to a number", func() error { return db.EmailCodes().SendCode(ctx, codePhone) }},
		{"email to an address not lowercased", func() error { return db.EmailCodes().SendCode(ctx, "Jane@example.net") }},
	} {
		if err := tc.send(); securetextd.ErrorCode(err) != securetextd.EINVALID {
			t.Errorf("%s: %v, want EINVALID", tc.name, err)
		}
	}
}
