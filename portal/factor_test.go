package portal

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/storetest"
)

// The second factor against the real store, its clock moved by hand.

// newFactorFixture is newLiveFixture with "sms-code", and a date of birth
// for phoneA when dob is not "".
func newFactorFixture(t *testing.T, dob string) *liveFixture {
	t.Helper()
	db := storetest.Open(t, storetest.Keys(t))
	f := &liveFixture{t: t, db: db, now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	db.Now = func() time.Time { return f.now }
	cfg := testConfig()
	cfg.Secure = false // httptest serves plain HTTP
	cfg.IdleTimeout, cfg.SessionLifetime = 100*24*time.Hour, 100*24*time.Hour
	cfg.SecondFactor, cfg.Codes = SecondFactorSMSCode, db.SMSCodes()
	srv, err := New(cfg, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(srv)
	t.Cleanup(f.srv.Close)
	f.newClient()
	if dob != "" {
		if err := db.SetDateOfBirth(t.Context(), phoneA, dob); err != nil {
			t.Fatal(err)
		}
	}
	d := db.NewDraft()
	w, _ := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
	io.WriteString(w, "BODY-MARKER all normal")
	w.Close()
	if _, err := d.Commit(t.Context(), &securetextd.Message{
		Sender: "dr.who@clinic.example", Subject: "Results", MessageID: "r1@clinic.example", Auth: "smtp-auth",
	}, []securetextd.Phone{phoneA}); err != nil {
		t.Fatal(err)
	}
	job, err := db.NextJob(t.Context(), f.now, securetextd.JobKindText)
	if err != nil {
		t.Fatal(err)
	}
	var tj securetextd.TextJob
	json.Unmarshal(job.Payload, &tj)
	f.token = tj.Token
	db.CompleteJob(t.Context(), job.ID)
	return f
}

// newClient is another browser: a cookie jar of its own.
func (f *liveFixture) newClient() {
	jar, _ := cookiejar.New(nil)
	f.c = &http.Client{Jar: jar}
}

// code asks for a code and returns the one texted, read from the outbox.
func (f *liveFixture) code() string {
	f.t.Helper()
	status, body := f.do("POST", "/m/"+f.token+"/code", url.Values{})
	if status != http.StatusOK || !strings.Contains(body, "We texted a 6-digit code") {
		f.t.Fatalf("ask for a code: %d %s", status, body)
	}
	job, err := f.db.NextJob(f.t.Context(), f.now, securetextd.JobKindCode)
	if err != nil {
		f.t.Fatalf("no code queued: %v", err)
	}
	f.db.CompleteJob(f.t.Context(), job.ID)
	var cj securetextd.CodeJob
	json.Unmarshal(job.Payload, &cj)
	if cj.To != phoneA {
		f.t.Fatalf("code texted to %s", cj.To)
	}
	return cj.Code
}

func otherCode(code string) string {
	if code == "123456" {
		return "654321"
	}
	return "123456"
}

// TestFactorRemembered: a link asks a new browser for a code and texts
// nothing until asked; the right code remembers the browser with a cookie
// like the session's, which spares it the code until remember_device has
// passed; another browser is asked again.
func TestFactorRemembered(t *testing.T) {
	f := newFactorFixture(t, "")
	link := "/m/" + f.token
	status, body := f.do("GET", link, nil)
	if status != http.StatusOK || !strings.Contains(body, "Text me a code") || strings.Contains(body, "password") {
		t.Fatalf("first visit: %d %s", status, body)
	}
	if n := f.pending(securetextd.JobKindCode); n != 0 {
		t.Fatalf("a GET queued %d codes", n)
	}
	code := f.code()
	req, _ := http.NewRequest("POST", f.srv.URL+link+"/verify", strings.NewReader(url.Values{"code": {code[:3] + " " + code[3:]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var device *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "device" {
			device = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != link || device == nil ||
		!device.HttpOnly || device.SameSite != http.SameSiteStrictMode || device.Path != "/" || device.MaxAge != int(DefaultRememberDevice.Seconds()) {
		t.Fatalf("right code: %d %q %+v", resp.StatusCode, resp.Header.Get("Location"), device)
	}
	u, _ := url.Parse(f.srv.URL)
	f.c.Jar.SetCookies(u, []*http.Cookie{device})
	if status, body := f.do("GET", link, nil); status != http.StatusOK || !strings.Contains(body, "Choose a password") {
		t.Fatalf("after the code: %d %s", status, body)
	}
	f.signIn()
	f.do("POST", "/logout", url.Values{})

	f.now = f.now.Add(DefaultRememberDevice - time.Minute)
	if _, body := f.do("GET", link, nil); !strings.Contains(body, "Enter your password") {
		t.Fatalf("a remembered browser: %s", body)
	}
	f.now = f.now.Add(time.Minute)
	if _, body := f.do("GET", link, nil); !strings.Contains(body, "Text me a code") {
		t.Fatalf("after remember_device: %s", body)
	}
	// Posting the password without the code goes back to the code.
	if status, body := f.do("POST", link+"/login", url.Values{"password": {password}}); status != http.StatusOK || !strings.Contains(body, "Text me a code") {
		t.Fatalf("login without the code: %d %s", status, body)
	}

	f.newClient()
	if _, body := f.do("GET", link, nil); !strings.Contains(body, "Text me a code") {
		t.Fatalf("another browser: %s", body)
	}
}

// TestFactorLockout: wrong codes and wrong dates of birth count together
// toward the lockout of wrong passwords; at the limit even right answers
// are refused until the window has passed. A date of birth is asked with
// the first password and with a reset, where wrong ones have a count of
// their own, since a reset is the way out of a lockout.
func TestFactorLockout(t *testing.T) {
	f := newFactorFixture(t, "1980-04-27")
	link := "/m/" + f.token
	code := f.code()
	for range 2 {
		if status, body := f.do("POST", link+"/verify", url.Values{"code": {otherCode(code)}}); status != http.StatusUnauthorized || !strings.Contains(body, "That code is not right") {
			t.Fatalf("wrong code: %d %s", status, body)
		}
	}
	if status, body := f.do("POST", link+"/verify", url.Values{"code": {code}}); status != http.StatusOK || !strings.Contains(body, "Your date of birth") {
		t.Fatalf("right code: %d %s", status, body)
	}
	setup := func(month, day, year string) (int, string) {
		return f.do("POST", link+"/setup", url.Values{"dob-month": {month}, "dob-day": {day}, "dob-year": {year},
			"password": {password}, "confirm": {password}, "email": {"ana@example.org"}})
	}
	// No date at all is asked for, not counted.
	if status, body := f.do("POST", link+"/setup", url.Values{"password": {password}, "confirm": {password}}); status != http.StatusUnauthorized || !strings.Contains(body, "Enter your date of birth") {
		t.Fatalf("setup without a date: %d %s", status, body)
	}
	if status, body := setup("4", "28", "1980"); status != http.StatusUnauthorized || !strings.Contains(body, "does not match") {
		t.Fatalf("wrong date: %d %s", status, body)
	}
	if _, body := setup("27", "4", "1980"); !strings.Contains(body, "1 try left") {
		t.Fatalf("fourth wrong answer: %s", body)
	}
	if status, body := setup("4", "27", "1981"); status != http.StatusTooManyRequests || !strings.Contains(body, "Try again in 15 minutes") {
		t.Fatalf("fifth wrong answer: %d %s", status, body)
	}
	if status, _ := setup("4", "27", "1980"); status != http.StatusTooManyRequests {
		t.Fatalf("the right date while locked: %d", status)
	}
	f.now = f.now.Add(15 * time.Minute)
	if status, body := setup("04", "27", "1980"); status != http.StatusOK || !strings.Contains(body, "BODY-MARKER") {
		t.Fatalf("the right date after the window: %d %s", status, body)
	}

	// A reset asks the date again; five wrong ones stop it.
	f.confirmRecovery()
	if err := f.db.RequestPasswordReset(t.Context(), phoneA, time.Hour); err != nil {
		t.Fatal(err)
	}
	job, err := f.db.NextJob(t.Context(), f.now, securetextd.JobKindReset)
	if err != nil {
		t.Fatal(err)
	}
	var mj securetextd.MailJob
	json.Unmarshal(job.Payload, &mj)
	reset := "/reset/" + mj.Token
	if _, body := f.do("GET", reset, nil); !strings.Contains(body, "Your date of birth") {
		t.Fatalf("reset page: %s", body)
	}
	resetWith := func(year string) (int, string) {
		return f.do("POST", reset, url.Values{"dob-month": {"4"}, "dob-day": {"27"}, "dob-year": {year},
			"password": {"a brand new password"}, "confirm": {"a brand new password"}})
	}
	for i := range 4 {
		if status, _ := resetWith("197" + string(rune('0'+i))); status != http.StatusBadRequest {
			t.Fatalf("wrong date %d at reset: %d", i+1, status)
		}
	}
	if status, _ := resetWith("1975"); status != http.StatusTooManyRequests {
		t.Fatalf("fifth wrong date at reset: %d", status)
	}
	f.now = f.now.Add(15 * time.Minute)
	if status, body := resetWith("1980"); status != http.StatusOK || !strings.Contains(body, "Your messages") {
		t.Fatalf("reset with the right date: %d %s", status, body)
	}
	if err := f.db.AuthenticateRecipient(t.Context(), phoneA, "a brand new password"); err != nil {
		t.Fatalf("the new password: %v", err)
	}
	if locked, err := f.db.StrikesLocked(t.Context(), limitDOB, phoneLimitKey(phoneA)); err != nil || locked != 0 {
		t.Fatalf("dates still counted after the reset: %v %v", locked, err)
	}
}

// TestFactorResetNewBrowser: a reset from a browser the account has not
// seen changes the password but signs nothing in: the link asks that
// browser for the code first.
func TestFactorResetNewBrowser(t *testing.T) {
	f := newFactorFixture(t, "")
	link := "/m/" + f.token
	code := f.code()
	f.do("POST", link+"/verify", url.Values{"code": {code}})
	f.signIn()
	f.confirmRecovery()

	f.newClient()
	if err := f.db.RequestPasswordReset(t.Context(), phoneA, time.Hour); err != nil {
		t.Fatal(err)
	}
	job, err := f.db.NextJob(t.Context(), f.now, securetextd.JobKindReset)
	if err != nil {
		t.Fatal(err)
	}
	var mj securetextd.MailJob
	json.Unmarshal(job.Payload, &mj)
	status, body := f.do("POST", "/reset/"+mj.Token, url.Values{"password": {"a brand new password"}, "confirm": {"a brand new password"}})
	if status != http.StatusOK || !strings.Contains(body, "Your password is changed") || strings.Contains(body, "BODY-MARKER") {
		t.Fatalf("reset from a new browser: %d %s", status, body)
	}
	if status, _ := f.do("GET", "/inbox", nil); status == http.StatusOK {
		t.Fatal("the reset signed a new browser in without the code")
	}
	if _, body := f.do("GET", link, nil); !strings.Contains(body, "Text me a code") {
		t.Fatalf("the link after the reset: %s", body)
	}
}
