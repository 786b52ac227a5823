package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/portal"
)

// codeRE finds a one-time code in a text.
var codeRE = regexp.MustCompile(`^([0-9]{6}) is your North Clinic code`)

// waitCode waits for the n-th text (counting from 1) and returns the code
// it carries.
func waitCode(t *testing.T, vonage *fakeVonage, n int) string {
	t.Helper()
	texts := vonage.waitTexts(t, n, 10*time.Second)
	if len(texts) < n {
		t.Fatalf("%d texts, want %d", len(texts), n)
	}
	m := codeRE.FindStringSubmatch(texts[n-1].Text)
	if m == nil {
		t.Fatalf("text %d carries no code: %q", n, texts[n-1].Text)
	}
	return m[1]
}

// typeDOB fills the date-of-birth fields.
func typeDOB(t *testing.T, ctx context.Context, month, day, year string) {
	t.Helper()
	step(t, ctx, "date of birth",
		chromedp.Clear(chromedp.ID("dob-month")), chromedp.SendKeys(chromedp.ID("dob-month"), month),
		chromedp.Clear(chromedp.ID("dob-day")), chromedp.SendKeys(chromedp.ID("dob-day"), day),
		chromedp.Clear(chromedp.ID("dob-year")), chromedp.SendKeys(chromedp.ID("dob-year"), year))
}

// TestBrowserSecondFactor walks the second factor at phone width against
// the real gateway: a message sent through the API with the patient's
// date of birth; the first visit asks for a code texted when the patient
// asks (the fake Vonage server receives it), then the date of birth with
// the new password; a second browser is asked for a code again; the
// remembered browser is not, after logging out; a password reset asks the
// date of birth; and five wrong codes lock signing in. Screenshots in
// artifacts/browser/factor-*.
func TestBrowserSecondFactor(t *testing.T) {
	ctx := newBrowser(t)
	vonage := newFakeVonage(t)
	relay := newTestRelay(t)
	cfg := testConfig(t, t.TempDir(), vonage.URL)
	cfg.Portal.SecondFactor = portal.SecondFactorSMSCode
	cfg.Mail.Relay = relay.addr
	cfg.SMS.Org = "North Clinic"
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), MailTLS: relay.client}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	if err := m.db.CreateSender(t.Context(), "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	key, _, err := m.db.CreateAPIKey(t.Context(), "dr.who@clinic.example", "ehr")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + m.PortalAddr

	// The sender gives the date of birth per recipient; an unfit one is
	// refused, naming the field.
	status, _, resp := apiCall(t, "POST", base+"/api/v1/messages", key, "application/json",
		strings.NewReader(`{"to": [{"to": "212-555-0123", "verify": {"date_of_birth": "27/04/1980"}}], "text": "x"}`))
	if status != http.StatusUnprocessableEntity || !strings.Contains(string(resp), `to[0].verify.date_of_birth`) {
		t.Fatalf("a bad date of birth: %d %s", status, resp)
	}
	status, _, resp = apiCall(t, "POST", base+"/api/v1/messages", key, "application/json",
		strings.NewReader(`{"to": [{"to": "212-555-0123", "verify": {"date_of_birth": "1980-04-27"}}],
			"subject": "Your results", "text": "Your blood test results are normal."}`))
	if status != http.StatusCreated {
		t.Fatalf("send: %d %s", status, resp)
	}
	link := linkRE.FindStringSubmatch(vonage.waitTexts(t, 1, 10*time.Second)[0].Text)[1]

	// First visit: nothing shows, and nothing is texted, until asked.
	navigate(t, ctx, base+"/m/"+link)
	body := pageText(t, ctx)
	if !strings.Contains(body, "Check it is you") || !strings.Contains(body, "ending in 23") ||
		strings.Contains(body, "blood test") || strings.Contains(body, "password") {
		t.Fatalf("first visit: %s", body)
	}
	shot(t, ctx, "factor-01-first-visit")
	submit(t, ctx, "main form button[type=submit]")
	if body := pageText(t, ctx); !strings.Contains(body, "We texted a 6-digit code") {
		t.Fatalf("after asking for a code: %s", body)
	}
	code := waitCode(t, vonage, 2)
	shot(t, ctx, "factor-02-code-sent")

	// A wrong code is refused; the right one goes on to the password,
	// with the date of birth the sender gave.
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	step(t, ctx, "wrong code", chromedp.SendKeys(chromedp.ID("code"), wrong))
	submit(t, ctx, "form[action$='/verify'] button")
	if body := pageText(t, ctx); !strings.Contains(body, "That code is not right") {
		t.Fatalf("wrong code: %s", body)
	}
	step(t, ctx, "code", chromedp.Clear(chromedp.ID("code")), chromedp.SendKeys(chromedp.ID("code"), code))
	submit(t, ctx, "form[action$='/verify'] button")
	body = pageText(t, ctx)
	if !strings.Contains(body, "Your date of birth") || !strings.Contains(body, "Choose a password") || strings.Contains(body, "blood test") {
		t.Fatalf("after the code: %s", body)
	}
	shot(t, ctx, "factor-03-setup-with-date-of-birth")
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	var device *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == "device" {
			device = c
		}
	}
	if device == nil || !device.HTTPOnly || device.SameSite != network.CookieSameSiteStrict || len(device.Value) < 43 ||
		device.Expires < float64(time.Now().Add(29*24*time.Hour).Unix()) {
		t.Fatalf("device cookie: %+v", device)
	}

	fill := func(month, day, year string) {
		typeDOB(t, ctx, month, day, year)
		step(t, ctx, "password",
			chromedp.Clear(chromedp.ID("password")), chromedp.SendKeys(chromedp.ID("password"), "maple syrup on pancakes"),
			chromedp.Clear(chromedp.ID("confirm")), chromedp.SendKeys(chromedp.ID("confirm"), "maple syrup on pancakes"),
			chromedp.Clear(chromedp.ID("email")), chromedp.SendKeys(chromedp.ID("email"), "patient@home.example"))
		submit(t, ctx, "main form button[type=submit]")
	}
	fill("4", "28", "1980")
	if body := pageText(t, ctx); !strings.Contains(body, "does not match") || strings.Contains(body, "blood test") {
		t.Fatalf("a wrong date of birth: %s", body)
	}
	fill("4", "27", "1980")
	if body := pageText(t, ctx); !strings.Contains(body, "blood test") {
		t.Fatalf("after the date of birth: %s", body)
	}
	shot(t, ctx, "factor-04-conversation")

	// Another browser, with no device cookie, is asked for a code again.
	other, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer cancel()
	if err := chromedp.Do(other, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	navigate(t, other, base+"/m/"+link)
	if body := pageText(t, other); !strings.Contains(body, "Check it is you") || strings.Contains(body, "blood test") {
		t.Fatalf("a second browser: %s", body)
	}
	shot(t, other, "factor-05-second-browser")

	// The remembered browser, logged out, is asked for the password only.
	submit(t, ctx, "nav form button")
	navigate(t, ctx, base+"/m/"+link)
	if body := pageText(t, ctx); !strings.Contains(body, "Enter your password") || strings.Contains(body, "Check it is you") {
		t.Fatalf("the remembered browser: %s", body)
	}
	shot(t, ctx, "factor-06-remembered")

	// Resets go only to a confirmed address: confirm the one given at
	// the first visit, from its email.
	confirm := relay.waitFor(t, "a confirmation link", func(m relayedMail) bool { return confirmLinkRE.Match(m.Data) })
	navigate(t, ctx, base+"/confirm/"+string(confirmLinkRE.FindSubmatch(confirm.Data)[1]))
	submit(t, ctx, "main form button[type=submit]")
	if body := pageText(t, ctx); !strings.Contains(body, "Your email address is confirmed") {
		t.Fatalf("after confirming: %s", body)
	}

	// A password reset asks the date of birth before anything.
	navigate(t, ctx, base+"/reset")
	step(t, ctx, "reset request", chromedp.SendKeys(chromedp.ID("phone"), "212-555-0123"))
	submit(t, ctx, "main form button[type=submit]")
	reset := relay.waitFor(t, "a reset link", func(m relayedMail) bool { return resetLinkRE.Match(m.Data) })
	tok := resetLinkRE.FindStringSubmatch(string(reset.Data))[1]
	navigate(t, ctx, base+"/reset/"+tok)
	if body := pageText(t, ctx); !strings.Contains(body, "Your date of birth") {
		t.Fatalf("reset page: %s", body)
	}
	shot(t, ctx, "factor-07-reset-with-date-of-birth")
	resetWith := func(month, day, year string) {
		typeDOB(t, ctx, month, day, year)
		step(t, ctx, "new password",
			chromedp.Clear(chromedp.ID("password")), chromedp.SendKeys(chromedp.ID("password"), "blueberry waffles at noon"),
			chromedp.Clear(chromedp.ID("confirm")), chromedp.SendKeys(chromedp.ID("confirm"), "blueberry waffles at noon"))
		submit(t, ctx, "main form button[type=submit]")
	}
	resetWith("1", "1", "1970")
	if body := pageText(t, ctx); !strings.Contains(body, "does not match") {
		t.Fatalf("reset with a wrong date: %s", body)
	}
	resetWith("04", "27", "1980")
	if loc := location(t, ctx); !strings.HasSuffix(loc, "/inbox") {
		t.Fatalf("reset ended at %s, want the inbox", loc)
	}
	shot(t, ctx, "factor-08-reset-done")

	// Wrong codes count toward the lockout: the fifth pauses signing in,
	// and then even a right code is refused. (Asked within a minute of
	// the first, the code may be refused as too soon: the form is shown
	// either way, and wrong answers count the same.)
	submit(t, other, "main form button[type=submit]")
	for i := range 5 {
		step(t, other, "wrong code", chromedp.SendKeys(chromedp.ID("code"), fmt.Sprintf("99999%d", i)))
		submit(t, other, "form[action$='/verify'] button")
	}
	if body := pageText(t, other); !strings.Contains(body, "Try again in 15 minutes.") {
		t.Fatalf("after five wrong codes: %s", body)
	}
	shot(t, other, "factor-09-locked")

	// Each outcome is in the audit trail; none carries the code or date.
	counts := map[string]int{}
	if err := m.db.AuditTrail(t.Context(), time.Time{}, func(ev securetextd.AuditEvent) error {
		if strings.HasPrefix(ev.Event, "factor.") {
			counts[ev.Event+" "+strings.SplitN(ev.Detail, ":", 2)[0]]++
			if strings.Contains(ev.Detail, code) || strings.Contains(ev.Detail, "1980") {
				t.Errorf("audit detail %q holds a secret", ev.Detail)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for ev, atLeast := range map[string]int{
		securetextd.AuditFactorSent + " sms":                                1,
		securetextd.AuditFactorOK + " " + securetextd.FactorSMSCode:         1,
		securetextd.AuditFactorFailed + " " + securetextd.FactorSMSCode:     6,
		securetextd.AuditFactorOK + " " + securetextd.FactorDateOfBirth:     2,
		securetextd.AuditFactorFailed + " " + securetextd.FactorDateOfBirth: 2,
	} {
		if counts[ev] < atLeast {
			t.Errorf("audit: %d %q events, want at least %d (%v)", counts[ev], ev, atLeast, counts)
		}
	}
}
