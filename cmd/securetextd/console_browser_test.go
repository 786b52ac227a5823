package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/emersion/go-sasl"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// axeScript returns axe-core's script, which scripts/test-deps.sh puts in
// .cache/npm (SECURETEXTD_AXE names another copy). Missing, the test
// fails, or is skipped under go test -short, saying how to get it.
func axeScript(t *testing.T) string {
	t.Helper()
	path := os.Getenv("SECURETEXTD_AXE")
	if path == "" {
		path = filepath.Join("..", "..", ".cache", "npm", "node_modules", "axe-core", "axe.min.js")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		msg := "axe-core is missing (" + err.Error() + "): run scripts/test-deps.sh (make test does)"
		if testing.Short() {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	return string(b)
}

// axeViolation is what axe-core reports of one rule a page breaks.
type axeViolation struct {
	ID    string `json:"id"`
	Help  string `json:"help"`
	Nodes []struct {
		Target []any `json:"target"`
	} `json:"nodes"`
}

// checkA11y runs axe-core in the page for WCAG 2.0, 2.1 and 2.2 at
// levels A and AA and fails on any violation, naming the rule and where.
// The script is evaluated through DevTools, which the page's CSP does not
// govern.
func checkA11y(t *testing.T, ctx context.Context, axe, page string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Evaluate[any](axe+";0")); err != nil {
		t.Fatalf("%s: load axe-core: %v", page, err)
	}
	out, err := chromedp.Run(c, chromedp.Evaluate[string](`axe.run(document, {runOnly: {type: "tag",
		values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}}).then(r => JSON.stringify(r.violations))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: axe.run: %v", page, err)
	}
	var vs []axeViolation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		var where []string
		for _, n := range v.Nodes {
			b, _ := json.Marshal(n.Target)
			where = append(where, string(b))
		}
		t.Errorf("%s: axe-core: %s (%s) at %s", page, v.ID, v.Help, strings.Join(where, ", "))
	}
}

// desktop makes a browser window 1280×800, as a clinic's screen.
func desktop(t *testing.T) context.Context {
	t.Helper()
	ctx := newBrowser(t)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
	return ctx
}

func value(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("value of %s: %v", sel, err)
	}
	return v
}

// TestBrowserConsole drives the console in a desktop-sized Chromium
// against the real gateway: a clinician signs in, enrols TOTP (the code
// computed here from the secret the page holds), signs in again with a
// code, sees the message they sent by SMTP on the Sent page and its page,
// and, while Sent stays open, sees it turn "opened" when the patient
// opens it in a second browser, with no reload. axe-core checks every
// page for WCAG 2.2 A and AA; each leaves a screenshot in
// artifacts/browser.
func TestBrowserConsole(t *testing.T) {
	axe := axeScript(t)
	ctx := desktop(t)
	vonage := newFakeVonage(t)
	relay := newTestRelay(t)
	cfg := testConfig(t, t.TempDir(), vonage.URL)
	cfg.Mail.Relay = relay.addr
	cfg.SMS.Org = "North Clinic"
	cfg.Console.RequireTOTP = "all"
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), MailTLS: relay.client}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	const doctor, password = "dr.who@clinic.example", "correct horse battery"
	if err := m.db.CreateSender(t.Context(), doctor, password); err != nil {
		t.Fatal(err)
	}
	pdf := []byte("%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
	if err := send(t, m.SubmissionAddr, tlsConfigFor(t, cfg), sasl.NewPlainClient("", doctor, password), doctor,
		[]string{"2125550123@secure.text"}, clinicalEmail(t, "console-1@clinic.example", testPNG(t), pdf)); err != nil {
		t.Fatal(err)
	}
	link := linkRE.FindStringSubmatch(vonage.waitTexts(t, 1, 10*time.Second)[0].Text)[1]
	console := "http://" + m.ConsoleAddr

	// Sign in: the password, then (console.require_totp = "all") the
	// authenticator is set up before anything else shows.
	navigate(t, ctx, console+"/")
	if loc := location(t, ctx); !strings.HasSuffix(loc, "/login") {
		t.Fatalf("the console opened at %s, want the sign-in page", loc)
	}
	shot(t, ctx, "console-01-sign-in")
	checkA11y(t, ctx, axe, "sign-in")
	step(t, ctx, "fill sign-in",
		chromedp.SendKeys(chromedp.ID("address"), doctor),
		chromedp.SendKeys(chromedp.ID("password"), password))
	submit(t, ctx, "main form button[type=submit]")
	if body := pageText(t, ctx); !strings.Contains(body, "Set up your authenticator") {
		t.Fatalf("after the password: %s", body)
	}
	shot(t, ctx, "console-02-enrol")
	checkA11y(t, ctx, axe, "enrol")
	secret := value(t, ctx, `input[name=secret]`)
	code := totpCode(t, secret, time.Now())
	step(t, ctx, "fill the first code", chromedp.SendKeys(chromedp.ID("code"), code))
	submit(t, ctx, "main form button[type=submit]")
	if body := pageText(t, ctx); !strings.Contains(body, "Your recovery codes") || strings.Count(body, "-") < 30 {
		t.Fatalf("after enrolment: %s", body)
	}
	shot(t, ctx, "console-03-recovery-codes")
	checkA11y(t, ctx, axe, "recovery codes")

	// Sign out, and in again with a code of the next step (the
	// enrolment's is spent).
	submit(t, ctx, "nav form button")
	shot(t, ctx, "console-04-signed-out")
	checkA11y(t, ctx, axe, "signed out")
	navigate(t, ctx, console+"/login")
	step(t, ctx, "fill sign-in again",
		chromedp.SendKeys(chromedp.ID("address"), doctor),
		chromedp.SendKeys(chromedp.ID("password"), password))
	submit(t, ctx, "main form button[type=submit]")
	if body := pageText(t, ctx); !strings.Contains(body, "Enter your code") {
		t.Fatalf("second sign-in: %s", body)
	}
	shot(t, ctx, "console-05-code")
	checkA11y(t, ctx, axe, "code")
	step(t, ctx, "fill the code", chromedp.SendKeys(chromedp.ID("code"), totpCode(t, secret, time.Now().Add(30*time.Second))))
	submit(t, ctx, "main form button[type=submit]")

	// Sent: the message mailed by SMTP.
	body := pageText(t, ctx)
	if !strings.Contains(body, "Your results") || !strings.Contains(body, "12125550123") {
		t.Fatalf("Sent: %s", body)
	}
	shot(t, ctx, "console-06-sent")
	checkA11y(t, ctx, axe, "sent")

	// The message's page: what was sent, read back; its recipient.
	submit(t, ctx, "table.sent a")
	body = pageText(t, ctx)
	for _, want := range []string{"Your results", "blood test", "results.pdf", "12125550123", "Accepted by the gateway"} {
		if !strings.Contains(body, want) {
			t.Errorf("message page lacks %q:\n%s", want, body)
		}
	}
	shot(t, ctx, "console-07-message")
	checkA11y(t, ctx, axe, "message")

	// Back on Sent, left open: the patient opens the message in another
	// browser, and the status turns "opened" without a reload.
	navigate(t, ctx, console+"/sent")
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.notReloaded = true`)); err != nil {
		t.Fatal(err)
	}
	patient := newBrowser(t)
	navigate(t, patient, "http://"+m.PortalAddr+"/m/"+link)
	step(t, patient, "fill setup",
		chromedp.SendKeys(chromedp.ID("password"), "maple syrup on pancakes"),
		chromedp.SendKeys(chromedp.ID("confirm"), "maple syrup on pancakes"),
		chromedp.SendKeys(chromedp.ID("email"), "patient@home.example"))
	submit(t, patient, "main form button[type=submit]")
	if !strings.Contains(pageText(t, patient), "blood test") {
		t.Fatal("the patient did not see the message")
	}
	wait, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if _, err := chromedp.Run(wait, chromedp.Poll[bool](
		`document.querySelector("[data-row]").textContent === "opened" && window.notReloaded === true`,
		chromedp.WithPollingInterval(250*time.Millisecond))); err != nil {
		t.Fatalf("Sent did not show \"opened\" without a reload: %v\n%s", err, pageText(t, ctx))
	}
	shot(t, ctx, "console-08-sent-opened")
	checkA11y(t, ctx, axe, "sent, opened")

	// The access history says who opened it, when and with what.
	submit(t, ctx, "table.sent a")
	body = pageText(t, ctx)
	for _, want := range []string{"opened", "Message opened", "Link opened", "Chrome on Linux"} {
		if !strings.Contains(body, want) {
			t.Errorf("message page lacks %q:\n%s", want, body)
		}
	}
	shot(t, ctx, "console-09-access-history")
	checkA11y(t, ctx, axe, "access history")

	// The patient replies; the clinician reads it here, and answers.
	replyPath := consoleReadsReply(t, ctx, patient, axe, relay, console)
	consoleAnswers(t, ctx, patient, axe, vonage, console, "http://"+m.PortalAddr, replyPath)

	// A page that is not there.
	navigate(t, ctx, console+"/m/999")
	shot(t, ctx, "console-10-not-found")
	checkA11y(t, ctx, axe, "not found")
}

// totpCode is the code an authenticator app shows for secret at t.
func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
