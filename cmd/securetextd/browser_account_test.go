package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/emersion/go-sasl"

	"github.com/securetextd/securetextd"
)

// TestBrowserAccountPage: at phone width, a patient sets up an account
// (the password form names the phone number as its username for password
// managers), confirms the recovery address from the real email, finds the
// account page from the conversation, sees the sign-in, changes the
// password, changes the address (the old one stays in force until the
// new one is confirmed), chooses Spanish, and signs out of every device;
// then the operator's `recipient reset` makes the next link visit a first
// visit again.
func TestBrowserAccountPage(t *testing.T) {
	ctx := newBrowser(t)
	vonage := newFakeVonage(t)
	relay := newTestRelay(t)
	cfgPath, cfg := writeTestConfig(t, vonage.URL, "") // a file, for the operator's command
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
	base := "http://" + m.PortalAddr
	clinician := sasl.NewPlainClient("", "dr.who@clinic.example", "correct horse battery")
	if err := send(t, m.SubmissionAddr, tlsConfigFor(t, cfg), clinician, "dr.who@clinic.example", []string{"2125550123@secure.text"},
		"From: dr.who@clinic.example\r\nSubject: Your results\r\n\r\nYour results are in.\r\n"); err != nil {
		t.Fatal(err)
	}
	link := linkRE.FindStringSubmatch(vonage.waitTexts(t, 1, 10e9)[0].Text)[1]
	const phone = securetextd.Phone("+12125550123")
	confirmed := func(want string) {
		t.Helper()
		got, ok, err := m.db.ConfirmedRecoveryAddress(t.Context(), phone)
		if err != nil || got != want || ok != (want != "") {
			t.Errorf("confirmed recovery address %q, %v, %v; want %q", got, ok, err, want)
		}
	}
	confirmFrom := func(address string) {
		t.Helper()
		mail := relay.waitFor(t, "a confirmation to "+address, func(m relayedMail) bool {
			return len(m.To) == 1 && m.To[0] == address && confirmLinkRE.Match(m.Data)
		})
		navigate(t, ctx, base+"/confirm/"+string(confirmLinkRE.FindSubmatch(mail.Data)[1]))
		submit(t, ctx, "main form button[type=submit]")
		if body := pageText(t, ctx); !strings.Contains(body, "Your email address is confirmed") {
			t.Fatalf("confirming %s: %s", address, body)
		}
	}

	// First visit: the username field holds the number; the address is
	// optional and the page says what leaving it out means.
	navigate(t, ctx, base+"/m/"+link)
	user, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const u = document.querySelector('input[autocomplete=username]'); return u ? u.value : '' })()`))
	if err != nil || user != string(phone) {
		t.Errorf("username field %q (%v), want %s", user, err, phone)
	}
	if body := pageText(t, ctx); !strings.Contains(body, "optional") || !strings.Contains(body, "ask whoever sent you the message") {
		t.Errorf("first visit does not say what skipping the address means: %s", body)
	}
	step(t, ctx, "fill setup",
		chromedp.SendKeys(chromedp.ID("password"), "maple syrup on pancakes"),
		chromedp.SendKeys(chromedp.ID("confirm"), "maple syrup on pancakes"),
		chromedp.SendKeys(chromedp.ID("email"), "patient@home.example"))
	submit(t, ctx, "main form button[type=submit]")
	confirmed("")
	confirmFrom("patient@home.example")
	confirmed("patient@home.example")

	// The account page, from the conversation's navigation.
	navigate(t, ctx, base+"/inbox")
	submit(t, ctx, `nav a[href="/account"]`)
	body := pageText(t, ctx)
	for _, want := range []string{"Your account", "patient@home.example (confirmed)", "Recent sign-ins", "Chrome on Linux", "127.0.0.0/24, a private network", "Sign out of every device"} {
		if !strings.Contains(body, want) {
			t.Errorf("account page lacks %q:\n%s", want, body)
		}
	}
	shot(t, ctx, "acct-01-account")

	// Change the password: the current one is required.
	step(t, ctx, "wrong current password",
		chromedp.SendKeys(chromedp.ID("current"), "not my password"),
		chromedp.SendKeys(chromedp.ID("password"), "a brand new long passphrase"),
		chromedp.SendKeys(chromedp.ID("confirm"), "a brand new long passphrase"))
	submit(t, ctx, `form[action="/account/password"] button`)
	if body := pageText(t, ctx); !strings.Contains(body, "Your current password is not right.") {
		t.Fatalf("wrong current password: %s", body)
	}
	step(t, ctx, "change password",
		chromedp.SendKeys(chromedp.ID("current"), "maple syrup on pancakes"),
		chromedp.SendKeys(chromedp.ID("password"), "a brand new long passphrase"),
		chromedp.SendKeys(chromedp.ID("confirm"), "a brand new long passphrase"))
	submit(t, ctx, `form[action="/account/password"] button`)
	if body := pageText(t, ctx); !strings.Contains(body, "Your password is changed.") {
		t.Fatalf("after changing the password: %s", body)
	}
	shot(t, ctx, "acct-02-password-changed")
	if err := m.db.AuthenticateRecipient(t.Context(), phone, "a brand new long passphrase"); err != nil {
		t.Errorf("the new password: %v", err)
	}

	// Change the address: confirmed only from the new mailbox; the old
	// one stays in force meanwhile.
	step(t, ctx, "change address",
		chromedp.SendKeys(chromedp.ID("email"), "new@home.example"),
		chromedp.SendKeys(chromedp.ID("email-current"), "a brand new long passphrase"))
	submit(t, ctx, `form[action="/account/email"] button`)
	if body := pageText(t, ctx); !strings.Contains(body, "Waiting for confirmation: we sent a link to new@home.example") ||
		!strings.Contains(body, "patient@home.example (confirmed)") {
		t.Fatalf("after changing the address: %s", body)
	}
	shot(t, ctx, "acct-03-address-pending")
	confirmed("patient@home.example")
	confirmFrom("new@home.example")
	confirmed("new@home.example")
	shot(t, ctx, "acct-04-new-address-confirmed")

	// Choose a language.
	navigate(t, ctx, base+"/account")
	step(t, ctx, "choose Spanish", chromedp.SetValue(chromedp.ID("language"), "es"))
	submit(t, ctx, `form[action="/account/language"] button`)
	// The page is in the language chosen at once.
	if body := pageText(t, ctx); !strings.Contains(body, "Se guardó su idioma.") {
		t.Fatalf("after choosing a language: %s", body)
	}
	if a, err := m.db.Account(t.Context(), phone); err != nil || a.Language != "es" {
		t.Errorf("language stored: %+v, %v", a, err)
	}
	// The switch every page shows takes it back to English.
	submit(t, ctx, `form[action="/language"] button[lang="en"]`)
	if body := pageText(t, ctx); !strings.Contains(body, "Your account") {
		t.Fatalf("after the switch to English: %s", body)
	}

	// Sign out of every device: another browser's session ends too.
	other, err := m.db.CreateSession(t.Context(), phone)
	if err != nil {
		t.Fatal(err)
	}
	submit(t, ctx, `form[action="/account/signout"] button`)
	if body := pageText(t, ctx); !strings.Contains(body, "You are signed out everywhere") {
		t.Fatalf("after signing out everywhere: %s", body)
	}
	shot(t, ctx, "acct-05-signed-out-everywhere")
	if _, err := m.db.Session(t.Context(), other, cfg.Portal.IdleTimeout, cfg.Portal.SessionLifetime); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("the other browser's session: %v", err)
	}
	navigate(t, ctx, base+"/account")
	if body := pageText(t, ctx); !strings.Contains(body, "You are not signed in") {
		t.Errorf("this browser after signing out everywhere: %s", body)
	}

	// The operator resets the account, with the daemon running: the link
	// asks for a new password, as at the first visit.
	if out := runCLI(t, "", "recipient", "reset", "212-555-0123", "--by", "jane", "--config", cfgPath); !strings.Contains(out, "sets the account up again") {
		t.Errorf("recipient reset: %s", out)
	}
	navigate(t, ctx, base+"/m/"+link)
	if body := pageText(t, ctx); !strings.Contains(body, "choose a password") {
		t.Fatalf("the link after an operator's reset: %s", body)
	}
	shot(t, ctx, "acct-06-after-operator-reset")
	step(t, ctx, "set up again",
		chromedp.SendKeys(chromedp.ID("password"), "pancakes on a sunday"),
		chromedp.SendKeys(chromedp.ID("confirm"), "pancakes on a sunday"))
	submit(t, ctx, "main form button[type=submit]")
	if body := pageText(t, ctx); !strings.Contains(body, "Your results are in.") {
		t.Fatalf("after setting up again: %s", body)
	}
	if err := m.db.AuthenticateRecipient(t.Context(), phone, "pancakes on a sunday"); err != nil {
		t.Errorf("the new password: %v", err)
	}
	if err := m.db.AuthenticateRecipient(t.Context(), phone, "a brand new long passphrase"); err == nil {
		t.Error("the password from before the reset still works")
	}
	confirmed("")
}
