package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/securetextd/securetextd"
)

// walkLanguage is one language the patient's walk runs in.
type walkLanguage struct {
	Tag            string // the language <html lang> must name (its primary subtag)
	AcceptLanguage string // what the patient's browser asks for
	Subject, HTML  string // the clinic's message, written in the patient's language
	Reply          string // the patient's reply
}

// walkLanguages are the portal's languages. The walk finds its way by
// ids, names and form actions, never by the pages' words, so a language
// is one more line here.
var walkLanguages = []walkLanguage{
	{
		Tag: "en", AcceptLanguage: "en-US,en;q=0.9",
		Subject: "Your results",
		HTML:    "<p>Hello,</p><p>Your <b>blood test</b> results are normal. The full report is attached.</p><p>Dr Ada Jones</p>",
		Reply:   "Thank you, doctor. Here is a photo of the rash.",
	},
	{
		Tag: "es", AcceptLanguage: "es-US,es;q=0.9",
		Subject: "Sus resultados",
		HTML:    "<p>Hola:</p><p>Los resultados de su <b>análisis de sangre</b> son normales. El informe completo va adjunto.</p><p>Dra. Ada Jones</p>",
		Reply:   "Gracias, doctora. Le envío una foto del sarpullido.",
	},
}

// TestBrowserPatientWalk walks what a patient does, in each of the
// portal's languages, at phone width (390×844) against the real gateway
// with the second factor on (portal.second_factor = "sms-code"): the
// first visit with the texted code and the date of birth the sender gave
// through the API; a reply with a photo; the confirmation of the recovery
// address from its email; the account page (change the password, change
// the address and confirm the new one, sign out of every device); a
// password reset with the date of birth; and the operator's `securetextd
// recipient reset` followed by a fresh setup. The language comes from the
// browser's Accept-Language, on every request as a browser sends it.
//
// Every page it lands on is checked (walker.page): a screenshot in
// artifacts/browser (walk-LANG-NN-*.png), <html lang>, zero axe-core
// violations of WCAG 2.2 A and AA, and nothing cut off at 320 CSS px or
// at 200% zoom. With SECURETEXTD_SCREENSHOTS=DIR it also composes the
// conversation page of each language side by side into
// DIR/portal-conversation.png, the README's picture.
func TestBrowserPatientWalk(t *testing.T) {
	axe := axeScript(t)
	shots := make([]string, len(walkLanguages))
	for i, lang := range walkLanguages {
		t.Run(lang.Tag, func(t *testing.T) {
			shots[i] = walkPatient(t, axe, lang)
		})
	}
	dir := screenshotDir(t)
	if dir == "" {
		return
	}
	for i, s := range shots {
		if s == "" {
			t.Fatalf("no conversation page in %s to put in the README's picture", walkLanguages[i].Tag)
		}
	}
	out := filepath.Join(dir, "portal-conversation.png")
	if err := composeSideBySide(out, shots...); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", out)
}

// dateOfBirth is the patient's, as the sender gives it and as typed.
const dateOfBirth = "1980-04-27"

// codeTextRE finds the one-time code in a text: six digits on their own.
var codeTextRE = regexp.MustCompile(`(?:^|[^0-9])([0-9]{6})(?:[^0-9]|$)`)

// walkPatient walks the portal in lang and returns the path of the
// screenshot of its conversation page, with the patient's reply.
func walkPatient(t *testing.T, axe string, lang walkLanguage) string {
	ctx := newBrowser(t)
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Accept-Language": lang.AcceptLanguage},
	}); err != nil {
		t.Fatal(err)
	}
	// The patient's phone is where the number is, as a phone is.
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "America/New_York"}); err != nil {
		t.Fatal(err)
	}
	vonage := newFakeVonage(t)
	relay := newTestRelay(t)
	// A file, for the operator's command; the second factor on, as by
	// default.
	cfgPath, cfg := writeConfigText(t, strings.Replace(testConfigText(t, vonage.URL),
		`second_factor = "none"`, `second_factor = "sms-code"`, 1))
	cfg.Mail.Relay = relay.addr
	cfg.SMS.Org = "North Clinic"
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), MailTLS: relay.client}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	const doctor, number = "dr.who@clinic.example", securetextd.Phone("+12125550123")
	if err := m.db.CreateSender(t.Context(), doctor, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	key, _, err := m.db.CreateAPIKey(t.Context(), doctor, "ehr")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + m.PortalAddr
	w := &walker{t: t, ctx: ctx, axe: axe, lang: lang}

	// texts counts the texts read so far; nextText waits for the next.
	texts := 0
	nextText := func() string {
		t.Helper()
		texts++
		got := vonage.waitTexts(t, texts, 10*time.Second)
		if len(got) < texts {
			t.Fatalf("%d texts, want %d", len(got), texts)
		}
		return got[texts-1].Text
	}
	nextCode := func() string {
		t.Helper()
		text := nextText()
		c := codeTextRE.FindStringSubmatch(text)
		if c == nil || linkRE.MatchString(text) {
			t.Fatalf("text %d carries no code: %q", texts, text)
		}
		return c[1]
	}
	// mailTo waits for the email to address whose link re finds, and
	// returns the link's token.
	mailTo := func(address string, re *regexp.Regexp) string {
		t.Helper()
		mail := relay.waitFor(t, "a link to "+address, func(m relayedMail) bool {
			return len(m.To) == 1 && m.To[0] == address && re.Match(m.Data)
		})
		return string(re.FindSubmatch(mail.Data)[1])
	}
	// has fails unless the page has an element sel finds.
	has := func(what, sel string) {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
		if err != nil || n == 0 {
			t.Fatalf("%s: no %s on the page at %s (%v):\n%s", what, sel, location(t, ctx), err, pageText(t, ctx))
		}
	}
	confirmed := func(want string) {
		t.Helper()
		got, ok, err := m.db.ConfirmedRecoveryAddress(t.Context(), number)
		if err != nil || got != want || ok != (want != "") {
			t.Errorf("confirmed recovery address %q, %v, %v; want %q", got, ok, err, want)
		}
	}
	password := func(want string) {
		t.Helper()
		if err := m.db.AuthenticateRecipient(t.Context(), number, want); err != nil {
			t.Errorf("the password %q: %v", want, err)
		}
	}
	// secondFactor asks for the code on the link's page, and gives it;
	// a wrong one first, when asked.
	secondFactor := func(name string, wrongFirst bool) {
		t.Helper()
		has("the code page", `form[action$="/code"] button[type=submit]`)
		w.page(name)
		submit(t, ctx, `form[action$="/code"] button[type=submit]`)
		has("the code sent", "input#code")
		w.page(name + "-code-sent")
		code := nextCode()
		if wrongFirst {
			wrong := "000000"
			if code == wrong {
				wrong = "000001"
			}
			step(t, ctx, "a wrong code", chromedp.SendKeys(chromedp.ID("code"), wrong))
			submit(t, ctx, `form[action$="/verify"] button[type=submit]`)
			has("a wrong code", `[role=alert]`)
			w.page(name + "-wrong-code")
			step(t, ctx, "clear the code", chromedp.Clear(chromedp.ID("code")))
		}
		step(t, ctx, "type the code", chromedp.SendKeys(chromedp.ID("code"), code))
		submit(t, ctx, `form[action$="/verify"] button[type=submit]`)
	}
	// setUp fills the first visit's form: the date of birth, a password,
	// and a recovery address when one is given.
	setUp := func(name, pw, email string) {
		t.Helper()
		has("the setup form", `form[action$="/setup"] input#dob-month`)
		w.page(name)
		typeDOB(t, ctx, "4", "27", "1980")
		step(t, ctx, "fill setup",
			chromedp.SendKeys(chromedp.ID("password"), pw),
			chromedp.SendKeys(chromedp.ID("confirm"), pw))
		if email != "" {
			step(t, ctx, "recovery address", chromedp.SendKeys(chromedp.ID("email"), email))
		}
		submit(t, ctx, `form[action$="/setup"] button[type=submit]`)
		if loc := location(t, ctx); !strings.Contains(loc, "/c/") {
			t.Fatalf("set up: at %s, want the conversation:\n%s", loc, pageText(t, ctx))
		}
	}

	// The sender gives the patient's date of birth through the API, with
	// a PDF report.
	pdf := []byte("%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n" + strings.Repeat("% report\n", 2000))
	msg, err := json.Marshal(map[string]any{
		"to":      []any{map[string]any{"to": "212-555-0123", "verify": map[string]string{"date_of_birth": dateOfBirth}}},
		"subject": lang.Subject,
		"html":    lang.HTML,
		"attachments": []any{map[string]string{
			"filename": "report.pdf", "content_type": "application/pdf", "content": base64.StdEncoding.EncodeToString(pdf),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if status, _, resp := apiCall(t, "POST", base+"/api/v1/messages", key, "application/json", strings.NewReader(string(msg))); status != http.StatusCreated {
		t.Fatalf("send: %d %s", status, resp)
	}
	link := linkRE.FindStringSubmatch(nextText())
	if link == nil {
		t.Fatalf("text 1 carries no link")
	}
	linkURL := base + "/m/" + link[1]

	// First visit: the code texted when asked, then the date of birth
	// with a new password and a recovery address.
	navigate(t, ctx, linkURL)
	secondFactor("first-visit", true)
	setUp("setup", "maple syrup on pancakes", "patient@home.example")
	has("the conversation", "a.file")
	w.page("conversation")

	// A reply with a photo: the page the README shows.
	photo := filepath.Join(t.TempDir(), "photo.jpg")
	if err := os.WriteFile(photo, testJPEG(t), 0o600); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "fill reply",
		chromedp.SendKeys(chromedp.ID("text"), lang.Reply),
		chromedp.SetUploadFiles(chromedp.ID("photo"), []string{photo}))
	submit(t, ctx, "#reply button[type=submit]")
	has("the reply", ".msg.mine")
	if body := pageText(t, ctx); !strings.Contains(body, lang.Reply) {
		t.Errorf("the reply is not on the page:\n%s", body)
	}
	conversation := w.page("replied")
	submit(t, ctx, `nav a[href="/inbox"]`)
	has("the inbox", ".inbox a")
	w.page("inbox")

	// The recovery address is confirmed from its email.
	confirmed("")
	navigate(t, ctx, base+"/confirm/"+mailTo("patient@home.example", confirmLinkRE))
	has("the confirmation page", `form[action^="/confirm/"] button[type=submit]`)
	w.page("confirm-address")
	submit(t, ctx, `form[action^="/confirm/"] button[type=submit]`)
	confirmed("patient@home.example")
	w.page("address-confirmed")

	// The account page, from the navigation: change the password (the
	// current one first), change the address (the password first;
	// confirmed from the new mailbox), sign out of every device.
	navigate(t, ctx, base+"/inbox")
	submit(t, ctx, `nav a[href="/account"]`)
	has("the account page", `form[action="/account/password"]`)
	w.page("account")
	step(t, ctx, "change the password",
		chromedp.SendKeys(chromedp.ID("current"), "maple syrup on pancakes"),
		chromedp.SendKeys(chromedp.ID("password"), "a brand new long passphrase"),
		chromedp.SendKeys(chromedp.ID("confirm"), "a brand new long passphrase"))
	submit(t, ctx, `form[action="/account/password"] button[type=submit]`)
	has("the password changed", `[role=status]`)
	password("a brand new long passphrase")
	w.page("password-changed")
	step(t, ctx, "change the address",
		chromedp.SendKeys(chromedp.ID("email"), "new@home.example"),
		chromedp.SendKeys(chromedp.ID("email-current"), "a brand new long passphrase"))
	submit(t, ctx, `form[action="/account/email"] button[type=submit]`)
	has("the address pending", `[role=status]`)
	confirmed("patient@home.example")
	w.page("address-pending")
	navigate(t, ctx, base+"/confirm/"+mailTo("new@home.example", confirmLinkRE))
	has("the new address's confirmation page", `form[action^="/confirm/"] button[type=submit]`)
	w.page("confirm-new-address")
	submit(t, ctx, `form[action^="/confirm/"] button[type=submit]`)
	confirmed("new@home.example")
	w.page("new-address-confirmed")
	navigate(t, ctx, base+"/account")
	other, err := m.db.CreateSession(t.Context(), number) // another browser's
	if err != nil {
		t.Fatal(err)
	}
	submit(t, ctx, `form[action="/account/signout"] button[type=submit]`)
	if _, err := m.db.Session(t.Context(), other, cfg.Portal.IdleTimeout, cfg.Portal.SessionLifetime); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("the other browser's session after signing out everywhere: %v", err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('form[action="/logout"]').length`)); err != nil || n != 0 {
		t.Errorf("still signed in after signing out everywhere (%v)", err)
	}
	w.page("signed-out-everywhere")

	// A password reset, from the confirmed address, asks the date of
	// birth: a wrong one is refused.
	navigate(t, ctx, base+"/reset")
	has("the reset form", "input#phone")
	w.page("reset")
	step(t, ctx, "reset request", chromedp.SendKeys(chromedp.ID("phone"), "212-555-0123"))
	submit(t, ctx, `form[action="/reset"] button[type=submit]`)
	w.page("reset-requested")
	navigate(t, ctx, base+"/reset/"+mailTo("new@home.example", resetLinkRE))
	has("the new password form", "input#dob-month")
	w.page("reset-password")
	resetWith := func(month, day, year string) {
		typeDOB(t, ctx, month, day, year)
		step(t, ctx, "new password",
			chromedp.Clear(chromedp.ID("password")), chromedp.SendKeys(chromedp.ID("password"), "blueberry waffles at noon"),
			chromedp.Clear(chromedp.ID("confirm")), chromedp.SendKeys(chromedp.ID("confirm"), "blueberry waffles at noon"))
		submit(t, ctx, `form[action^="/reset/"] button[type=submit]`)
	}
	resetWith("1", "1", "1970")
	has("a wrong date of birth", `[role=alert]`)
	w.page("reset-wrong-date-of-birth")
	resetWith("4", "27", "1980")
	password("blueberry waffles at noon")
	// Signed out everywhere, this browser is no longer remembered: the
	// page says to open the text's link, which asks the code first.
	w.page("reset-done")
	navigate(t, ctx, linkURL)
	secondFactor("link-after-reset", false)
	has("the password form", `form[action$="/login"] input#password`)
	w.page("login")
	step(t, ctx, "password", chromedp.SendKeys(chromedp.ID("password"), "blueberry waffles at noon"))
	submit(t, ctx, `form[action$="/login"] button[type=submit]`)
	has("the conversation", "a.file")

	// The operator resets the account, with the daemon running: the link
	// sets it up again, with the code and the date of birth.
	if out := runCLI(t, "", "recipient", "reset", "212-555-0123", "--by", "jane", "--config", cfgPath); out == "" {
		t.Error("recipient reset said nothing")
	}
	confirmed("")
	navigate(t, ctx, linkURL)
	secondFactor("after-operator-reset", false)
	setUp("setup-again", "pancakes on a sunday", "")
	password("pancakes on a sunday")
	if err := m.db.AuthenticateRecipient(t.Context(), number, "blueberry waffles at noon"); err == nil {
		t.Error("the password from before the operator's reset still works")
	}
	w.page("set-up-again")

	// A link that is not one.
	navigate(t, ctx, base+"/m/"+strings.Repeat("x", 43))
	w.page("not-found")
	return conversation
}

// jsString quotes s as a JavaScript string.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
