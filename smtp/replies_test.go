package smtp

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
)

// wantReply asserts the exact reply a client gets: code, enhanced code and
// text, as the sender's mail program shows them.
func wantReply(t *testing.T, what string, err error, want string) {
	t.Helper()
	se, ok := err.(*gosmtp.SMTPError)
	if !ok {
		t.Errorf("%s: err = %v (%T), want %q", what, err, err, want)
		return
	}
	e := se.EnhancedCode
	if got := fmt.Sprintf("%d %d.%d.%d %s", se.Code, e[0], e[1], e[2], se.Message); got != want {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// TestRecipientReplyWords checks the words of a refused recipient through
// a real client: the region in words with its calling code, and an
// address that cannot hold a phone number named as it was received, with
// the reason.
func TestRecipientReplyWords(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Phones.AllowedCountries = []string{"US", "CA"} })
	c := ts.dial(t)
	if err := c.Mail(testAccount, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ rcpt, want string }{
		// 07911 1xxxxx is a Guernsey block in libphonenumber's data, as
		// in Ofcom's allocations: the region lookup is right.
		{"+447911123456@secure.text",
			"550 5.1.1 Recipient <+447911123456@secure.text> refused: +447911123456 is a number in Guernsey (+44), where this gateway does not send texts; it sends to: United States (+1), Canada (+1)"},
		{"+447400123456@secure.text",
			"550 5.1.1 Recipient <+447400123456@secure.text> refused: +447400123456 is a number in United Kingdom (+44), where this gateway does not send texts; it sends to: United States (+1), Canada (+1)"},
		// What a mail program sends for "(212) 555-0199@secure.text":
		// RFC 5322 makes "(212)" a comment, and Python's smtplib (like
		// mail programs that parse the To: field so) drops it.
		{"555-0199@secure.text",
			`550 5.1.1 Recipient <555-0199@secure.text> refused: "555-0199" has too few digits for a phone number in United States (+1): write the whole number, as in +12015550123. A mail program leaves out what an address has in parentheses, such as an area code: write the number with digits only`},
		// The same address quoted, as a client that keeps it whole sends it.
		{`"(212) 555-0199"@secure.text`,
			`550 5.1.1 Recipient <"(212) 555-0199"@secure.text> refused: "(212) 555-0199" cannot be the phone number of an address, as it has a space and parentheses; an address holds only digits, a leading + and the separators - and ., as in 2125550199@secure.text`},
		{`"212 555 0199"@secure.text`,
			`550 5.1.1 Recipient <"212 555 0199"@secure.text> refused: "212 555 0199" cannot be the phone number of an address, as it has a space; an address holds only digits, a leading + and the separators - and ., as in 2125550199@secure.text`},
		// Unquoted, go-smtp refuses the address before the gateway sees
		// it, in words the gateway cannot choose (go-smtp v0.25.1).
		{"(212) 555-0199@secure.text",
			"501 5.5.2 Was expecting RCPT arg syntax of TO:<address>"},
	} {
		wantReply(t, tc.rcpt, c.Rcpt(tc.rcpt, nil), tc.want)
	}
}

// TestReplyTranscript reads every reply of a whole submission as a client
// sees it, line for line: MAIL's, RCPT's, DATA's 354, the acceptance,
// NOOP's, RSET's and QUIT's, exactly. The acceptance is the gateway's
// (replyAccepted); go-smtp fixes the others, in the plain words of
// docs/go-smtp-replies.patch, which third_party/go-smtp carries.
func TestReplyTranscript(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AllowInsecureAuth = true })
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := &rawSession{t: t, conn: conn, r: bufio.NewReader(conn)}
	auth := base64.StdEncoding.EncodeToString([]byte("\x00" + testAccount + "\x00" + testPassword))
	const bdatBody = "From: " + testAccount + "\r\nSubject: hi\r\n\r\nhello\r\n"
	for _, step := range []struct{ send, want string }{
		{"", "220 gw.test ESMTP Service Ready"},
		{"EHLO client.test", "250 LIMITS RCPTMAX=50"}, // the last line of the list
		{"AUTH PLAIN " + auth, "235 2.0.0 Authentication succeeded"},
		{"MAIL FROM:<" + testAccount + ">", "250 2.1.0 Sender OK"},
		{"RCPT TO:<2125550123@secure.text>", "250 2.1.5 Recipient OK"},
		{"DATA", "354 Start mail input; end with <CRLF>.<CRLF>"},
		{"From: " + testAccount + "\r\nSubject: hi\r\n\r\nhello\r\n.", "250 2.0.0 OK: message stored, texts queued"},
		{"RSET", "250 2.0.0 Session reset"},
		{"NOOP", "250 2.0.0 OK"},
		// The same acceptance after BDAT (CHUNKING), as Exchange sends.
		{"MAIL FROM:<" + testAccount + ">", "250 2.1.0 Sender OK"},
		{"RCPT TO:<2125550123@secure.text>", "250 2.1.5 Recipient OK"},
		{fmt.Sprintf("BDAT %d LAST\r\n%s", len(bdatBody), bdatBody[:len(bdatBody)-2]), "250 2.0.0 OK: message stored, texts queued"},
		{"QUIT", "221 2.0.0 Bye"},
	} {
		if step.send != "" {
			fmt.Fprintf(conn, "%s\r\n", step.send)
		}
		if got := s.reply(); got != step.want {
			t.Errorf("%q:\n got %q\nwant %q", step.send, got, step.want)
		}
	}
}
