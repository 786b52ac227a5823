package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/dnstest"
	"github.com/securetextd/securetextd/store"
)

// publishDKIM makes a DKIM key with `dkim keygen` for selector s1 of
// clinic.example, publishes its record on dns, and returns the [mail]
// lines that sign with it.
func publishDKIM(t *testing.T, dns *dnstest.Server) string {
	t.Helper()
	keyDir := t.TempDir()
	var out strings.Builder
	if err := run([]string{"dkim", "keygen", "--out", filepath.Join(keyDir, "dkim.pem"), "--selector", "s1", "--domain", "clinic.example"},
		nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	var value string
	for _, r := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(out.String(), -1) {
		value += r[1]
	}
	dns.Set("s1._domainkey.clinic.example", value)
	return fmt.Sprintf("dkim_domain = \"clinic.example\"\ndkim_selector = \"s1\"\ndkim_key = %q\n", filepath.Join(keyDir, "dkim.pem"))
}

// codeMailRE finds the code in the text part of a code email.
var codeMailRE = regexp.MustCompile(`(?m)^([0-9]{6}) is your Test Clinic code to open your secure messages\.`)

// waitCodeMail waits for a code email to rcpt at sink whose code is not
// one of seen, holds it to what it must be (from the organization,
// Auto-Submitted, a text and an HTML part that both carry the code, the
// code not in the subject, nothing of the message: secrets), and returns
// the mail and its code.
func waitCodeMail(t *testing.T, sink *smtpSink, rcpt string, seen []string, secrets ...string) ([]byte, string) {
	t.Helper()
	var code string
	data := sink.waitFor(t, rcpt, func(b []byte) bool {
		if !multipartDone(b) {
			return false
		}
		m := codeMailRE.FindSubmatch(b)
		if m == nil {
			return false
		}
		for _, s := range seen {
			if s == string(m[1]) {
				return false
			}
		}
		code = string(m[1])
		return true
	})
	for _, s := range secrets {
		if bytes.Contains(bytes.ToLower(data), []byte(strings.ToLower(s))) {
			t.Errorf("the code email holds %q:\n%s", s, data)
		}
	}
	mr, err := mail.CreateReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	h := mr.Header
	if v := h.Get("Auto-Submitted"); v != "auto-generated" {
		t.Errorf("Auto-Submitted %q", v)
	}
	if from, _ := h.AddressList("From"); len(from) != 1 || from[0].Address != "securetextd@clinic.example" {
		t.Errorf("From %v", from)
	}
	if subject, _ := h.Subject(); strings.Contains(subject, code) || !strings.Contains(subject, "Test Clinic") {
		t.Errorf("Subject %q: the organization's name, and not the code", subject)
	}
	if id, _ := h.MessageID(); !strings.HasSuffix(id, "@gw.clinic.example") {
		t.Errorf("Message-ID %q, want one on smtp.hostname", id)
	}
	var types []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := p.Header.(*mail.InlineHeader).ContentType()
		types = append(types, ct)
		b, _ := io.ReadAll(p.Body)
		if !bytes.Contains(b, []byte(code)) || !bytes.Contains(b, []byte("10 minutes")) {
			t.Errorf("%s part without the code or how long it works:\n%s", ct, b)
		}
		if linkRE.Match(b) {
			t.Errorf("%s part carries a link: a code email is not a way in", ct)
		}
	}
	if strings.Join(types, ",") != "text/plain,text/html" {
		t.Errorf("parts %v, want text/plain and text/html", types)
	}
	return data, code
}

// verify types code into the code form.
func (p *portalClient) verify(token, code string) (int, string) {
	p.t.Helper()
	return p.do("POST", "/m/"+token+"/verify", url.Values{"code": {code}})
}

// TestEmailRecipientCode: with portal.second_factor = "sms-code", an email
// recipient proves the mailbox with a code sent by email, through the
// real portal and the real mail drain to Postfix's smtp-sink: the first
// visit asks for it before any password, the code arrives as a
// DKIM-signed email (python3-dkim verifies it against loopback DNS) with a
// text and an HTML part and nothing of the message, and the right code
// opens the password form. Then the attacks, from browsers the account has
// not seen: the used code again, a code 10 minutes old, and five wrong
// codes (after which the right one is dead too), each refused and counted
// until signing in is paused. The audit trail names the email code.
func TestEmailRecipientCode(t *testing.T) {
	sink := startSink(t)
	dns := dnstest.New(t)
	vonage := newFakeVonage(t)
	m, _ := emailGateway(t, sink, vonage.URL, publishDKIM(t, dns), func(text string) string {
		// Ten wrong answers lock, so that each attack below is seen
		// refused on its own before the lockout (five, by default)
		// ends the test.
		return strings.Replace(text, `second_factor = "none"`, "second_factor = \"sms-code\"\nlockout_failures = 10", 1)
	})
	msg := "From: Dr Who <dr.who@clinic.example>\r\n" +
		"To: Jane <jane@example.net>\r\n" +
		"Subject: Your biopsy results\r\n" +
		"\r\n" +
		"The biopsy shows nothing to worry about.\r\n"
	if err := sendAs(t, m, []string{"jane@example.net"}, msg); err != nil {
		t.Fatal(err)
	}
	token := checkNotice(t, sink.waitFor(t, "jane@example.net", multipartDone), "biopsy", "nothing to worry")
	secrets := []string{"biopsy", "nothing to worry", token}

	// First visit: the code first, by email; no password, no message.
	a := newPortalClient(t, m)
	status, page := a.do("GET", "/m/"+token, nil)
	if status != http.StatusOK || !strings.Contains(page, "We will email a 6-digit code to j***@example.net") ||
		strings.Contains(page, "password") || strings.Contains(page, "biopsy") {
		t.Fatalf("first visit: %d\n%s", status, page)
	}
	status, page = a.do("POST", "/m/"+token+"/code", url.Values{})
	if status != http.StatusOK || !strings.Contains(page, "We emailed a 6-digit code to j***@example.net") ||
		!strings.Contains(page, "Code from the email") {
		t.Fatalf("after asking for a code: %d\n%s", status, page)
	}
	data, code1 := waitCodeMail(t, sink, "jane@example.net", nil, secrets...)
	if ok, out := dkimVerify(t, dns, data); !ok {
		t.Fatalf("python3-dkim refuses the code email's signature:\n%s\n%s", out, data)
	}

	// A wrong code is refused, naming the email; the right one opens the
	// password form and remembers the browser.
	status, page = a.verify(token, wrongCodeFor(code1))
	if status != http.StatusUnauthorized || !strings.Contains(page, "That code is not right. Check the latest email from us") {
		t.Fatalf("a wrong code: %d\n%s", status, page)
	}
	status, page = a.verify(token, code1[:3]+" "+code1[3:])
	if status != http.StatusOK || !strings.Contains(page, "Choose a password") || strings.Contains(page, "biopsy") {
		t.Fatalf("the right code: %d\n%s", status, page)
	}
	if status, page = a.do("GET", "/m/"+token, nil); !strings.Contains(page, "Choose a password") {
		t.Fatalf("the remembered browser is asked again: %d\n%s", status, page)
	}

	// Another browser is asked for a code, and the used one is no good.
	b := newPortalClient(t, m)
	if _, page = b.do("GET", "/m/"+token, nil); !strings.Contains(page, "Email me a code") {
		t.Fatalf("a new browser is not asked for a code:\n%s", page)
	}
	status, page = b.verify(token, code1)
	if status != http.StatusUnauthorized || !strings.Contains(page, "That code has expired or was used up") {
		t.Fatalf("the used code again: %d\n%s", status, page)
	}

	// A code 10 minutes old is no good. The daemon's clock cannot be
	// moved, so its row is aged as ten minutes would age it.
	if status, page = b.do("POST", "/m/"+token+"/code", url.Values{}); status != http.StatusOK || !strings.Contains(page, "We emailed") {
		t.Fatalf("asking again: %d\n%s", status, page)
	}
	_, code2 := waitCodeMail(t, sink, "jane@example.net", []string{code1}, secrets...)
	raw := rawDB(t, m.Config)
	age := `UPDATE recipient_codes SET created = created - ?, expires = expires - ? WHERE phone = ?`
	if m.Config.Store.Driver == store.Postgres {
		age = `UPDATE recipient_codes SET created = created - $1, expires = expires - $2 WHERE phone = $3`
	}
	if res, err := raw.ExecContext(t.Context(), age, int64(store.CodeValidFor), int64(store.CodeValidFor), "jane@example.net"); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%d live codes, want 1", n)
	}
	status, page = b.verify(token, code2)
	if status != http.StatusUnauthorized || !strings.Contains(page, "That code has expired or was used up") {
		t.Fatalf("an expired code: %d\n%s", status, page)
	}

	// Five wrong codes use the code up: the right one is refused after
	// them.
	if status, page = b.do("POST", "/m/"+token+"/code", url.Values{}); status != http.StatusOK || !strings.Contains(page, "We emailed") {
		t.Fatalf("asking a third time: %d\n%s", status, page)
	}
	_, code3 := waitCodeMail(t, sink, "jane@example.net", []string{code1, code2}, secrets...)
	for i := range 5 {
		status, page = b.verify(token, wrongCodeFor(code3))
		if status != http.StatusUnauthorized || !strings.Contains(page, "That code is not right") {
			t.Fatalf("wrong code %d: %d\n%s", i+1, status, page)
		}
	}
	status, page = b.verify(token, code3)
	if status != http.StatusUnauthorized || !strings.Contains(page, "That code has expired or was used up") {
		t.Fatalf("the right code after five wrong ones: %d\n%s", status, page)
	}
	// That was the ninth wrong answer; the tenth pauses signing in, and
	// then no code is sent.
	if status, page = b.verify(token, code3); status != http.StatusTooManyRequests {
		t.Fatalf("the tenth wrong answer: %d\n%s", status, page)
	}
	if status, page = b.do("POST", "/m/"+token+"/code", url.Values{}); status != http.StatusTooManyRequests {
		t.Fatalf("a code asked for while locked: %d\n%s", status, page)
	}

	// The audit trail names the email code, never the code itself.
	var events []string
	err := m.db.AuditTrail(t.Context(), time.Time{}, func(ev securetextd.AuditEvent) error {
		if strings.HasPrefix(ev.Event, "factor.") {
			events = append(events, ev.Event+" "+ev.Detail)
			for _, c := range []string{code1, code2, code3} {
				if strings.Contains(ev.Detail, c) {
					t.Errorf("audit event %s holds a code: %q", ev.Event, ev.Detail)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"factor.sent email", "factor.failed email-code: wrong", "factor.ok email-code",
		"factor.failed email-code: none live",                      // the used code
		"factor.sent email", "factor.failed email-code: none live", // the expired code
		"factor.sent email"}
	for range 5 {
		want = append(want, "factor.failed email-code: wrong")
	}
	want = append(want, "factor.failed email-code: none live", "factor.failed email-code: none live")
	if strings.Join(events, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit events of the second factor:\n%s\nwant\n%s", strings.Join(events, "\n"), strings.Join(want, "\n"))
	}
}

// wrongCodeFor returns a code of the right form that is not code.
func wrongCodeFor(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}
