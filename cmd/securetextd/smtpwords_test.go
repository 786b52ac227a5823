package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securetextd/securetextd/internal/need"
)

// smtplibSend is a Python program that sends one message with smtplib,
// as a script or a mail program built on it would: STARTTLS against the
// gateway's certificate, AUTH, then sendmail to the address given, exactly
// as typed. It prints each refused recipient's reply as "CODE TEXT".
const smtplibSend = `
import smtplib, ssl, sys
host, port, cafile, to = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = smtplib.SMTP(host, port, timeout=20)
s.starttls(context=ssl.create_default_context(cafile=cafile))
s.login("dr.who@clinic.example", "correct horse battery")
try:
    s.sendmail("dr.who@clinic.example", [to], "From: dr.who@clinic.example\r\nSubject: hi\r\n\r\nhello\r\n")
    print("accepted")
except smtplib.SMTPRecipientsRefused as e:
    for code, text in e.recipients.values():
        print(code, text.decode())
s.quit()
`

// TestParenthesesInAddress sends to "(212) 555-0199@secure.text" with
// Python's smtplib, a real client that parses the address by RFC 5322 as
// mail programs do: "(212)" is a comment, and the gateway receives
// 555-0199@secure.text. The reply names that address, and says what
// became of the area code.
func TestParenthesesInAddress(t *testing.T) {
	python := need.Program(t, "/usr/bin/python3", "python3")
	cfg := testConfig(t, t.TempDir(), newFakeVonage(t).URL)
	m := startMain(t, cfg)
	if err := m.db.CreateSender(t.Context(), "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(m.SubmissionAddr, ":")
	cafile := filepath.Join(filepath.Dir(cfg.Path(cfg.Store.Path)), "tls-selfsigned.crt")
	out, err := exec.CommandContext(t.Context(), python, "-c", smtplibSend, host, port, cafile, "(212) 555-0199@secure.text").CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	want := `550 5.1.1 Recipient <555-0199@secure.text> refused: "555-0199" has too few digits for a phone number in United States (+1): ` +
		`write the whole number, as in +12015550123. A mail program leaves out what an address has in parentheses, such as an area code: write the number with digits only`
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("smtplib read:\n%s\nwant:\n%s", got, want)
	}
}
