package smtp

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	gosmtp "github.com/emersion/go-smtp"
)

// mimeMail is clinicMail with the MIME fields a mail program adds.
func mimeMail(from string) []byte {
	return testMail([]string{
		"From: " + from,
		"To: 12125550123@secure.text",
		"Subject: Your results",
		"Date: Mon, 23 Nov 2026 10:00:00 +0000",
		"Message-ID: <results-2@clinic.example>",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
		"Content-Transfer-Encoding: 7bit",
	}, "Your results are normal.\r\n")
}

// signFields is sign with the h= list given: keys lists each field name
// as often as it is to be signed (more often than the header holds it:
// oversigned).
func signFields(t *testing.T, msg []byte, keys ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	err := dkim.Sign(&b, bytes.NewReader(msg), &dkim.SignOptions{
		Domain: "clinic.example", Selector: "rsa", Signer: testKeys()["rsa"],
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             keys,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// signLength signs msg for clinic.example (key "rsa") by hand, as
// go-msgauth cannot: simple/simple canonicalization, the fields of keys
// (each present once, unfolded), and with length >= 0 an l= tag that
// limits the body hash to the body's first length bytes.
func signLength(t *testing.T, msg []byte, length int, keys ...string) []byte {
	t.Helper()
	head, body, ok := bytes.Cut(msg, []byte("\r\n\r\n"))
	if !ok {
		t.Fatal("no body")
	}
	lines := strings.SplitAfter(string(head)+"\r\n", "\r\n")
	tags := "v=1; a=rsa-sha256; c=simple/simple; d=clinic.example; s=rsa; "
	hashed := body
	if length >= 0 {
		tags += fmt.Sprintf("l=%d; ", length)
		hashed = body[:length]
	}
	bh := sha256.Sum256(hashed)
	tags += "h=" + strings.Join(keys, ":") + "; bh=" + base64.StdEncoding.EncodeToString(bh[:]) + "; b="
	h := sha256.New()
	for _, k := range keys {
		for i := len(lines) - 1; i >= 0; i-- {
			if name, _, _ := strings.Cut(lines[i], ":"); strings.EqualFold(strings.TrimSpace(name), k) {
				h.Write([]byte(lines[i]))
				break
			}
		}
	}
	h.Write([]byte("DKIM-Signature: " + tags))
	sig, err := rsa.SignPKCS1v15(rand.Reader, testKeys()["rsa"].(*rsa.PrivateKey), crypto.SHA256, h.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte("DKIM-Signature: "+tags+base64.StdEncoding.EncodeToString(sig)+"\r\n"), msg...)
}

// TestRelayCoverage is issue 10's "what a relayed signature covers is
// what the recipient sees": fields added above a signed message, fields
// the signature leaves unsigned, a body hash limited with l=, and From
// addresses that hold another address, each with real signed mail.
func TestRelayCoverage(t *testing.T) {
	d := newTestDNS(t)
	relayZone(d)
	const drWho = "Dr Who <dr.who@clinic.example>"
	signed := sign(t, mimeMail(drWho), "clinic.example", "rsa", "rsa") // every field, once
	basic := []string{"From", "To", "Subject", "Date", "Message-ID"}
	all := append(basic, "Sender", "Reply-To", "Cc", "MIME-Version", "Content-Type", "Content-Transfer-Encoding")
	oversigned := append(append([]string{}, all...), all...)
	appended := append(signLength(t, mimeMail(drWho), len("Your results are normal.\r\n"), basic...), "Call 555-0100 at once.\r\n"...)

	tests := []struct {
		name     string
		policy   string
		mailFrom string
		msg      []byte
		// accepted, with these in Authentication-Results:
		auth []string
		// refused, with a 550 5.7.1 whose text holds:
		text string
	}{
		{name: "signed message as sent", msg: signed, auth: []string{"dkim=pass"}},
		{name: "oversigned fields", msg: signFields(t, mimeMail(drWho), oversigned...), auth: []string{"dkim=pass"}},
		{name: "hand-made signature (the l= helper, without l=)", msg: signLength(t, mimeMail(drWho), -1, all...), auth: []string{"dkim=pass"}},
		{
			name: "Subject added above the signed one",
			msg:  append([]byte("Subject: Call 555-0100 now\r\n"), signed...),
			text: "Message refused: it has 2 Subject: header fields",
		},
		{
			name: "Content-Type added above the signed one",
			msg:  append([]byte("Content-Type: text/html\r\n"), signed...),
			text: "Message refused: it has 2 Content-Type: header fields",
		},
		{
			name: "Reply-To added to a signature that does not list it",
			msg:  append([]byte("Reply-To: <mallory@other.example>\r\n"), signed...),
			text: "DKIM signature by clinic.example does not sign every instance of the Reply-To: field (the header has 1, the signature signs 0)",
		},
		{
			name: "a signature that leaves Content-Type unsigned",
			msg:  signFields(t, mimeMail(drWho), append(basic, "MIME-Version", "Content-Transfer-Encoding")...),
			text: "does not sign every instance of the Content-Type: field",
		},
		{
			name: "dkim policy: a signature that leaves Content-Type unsigned", policy: PolicyDKIM,
			msg:  signFields(t, mimeMail(drWho), append(basic, "MIME-Version", "Content-Transfer-Encoding")...),
			text: "does not sign every instance of the Content-Type: field",
		},
		{
			name: "body hash limited by l=, text added after it",
			msg:  appended,
			text: "DKIM signature for clinic.example signs only the first part of the body (l=)",
		},
		{
			// Rule 4: SPF vouches for the server, which is trusted.
			name: "aligned SPF pass carries a signature that falls short", mailFrom: "dr.who@clinic.example",
			msg:  append([]byte("Reply-To: <dr.who@clinic.example>\r\n"), signed...),
			auth: []string{"dkim=policy", "spf=pass", "dmarc=pass"},
		},
		{
			name: "spf policy: a second Subject", policy: PolicySPF, mailFrom: "dr.who@clinic.example",
			msg:  append([]byte("Subject: Call 555-0100 now\r\n"), mimeMail(drWho)...),
			text: "it has 2 Subject: header fields",
		},
		{
			name: "trusted-network: a second Content-Type", policy: PolicyTrustedNetwork,
			msg:  append([]byte("Content-Type: text/html\r\n"), mimeMail(drWho)...),
			text: "it has 2 Content-Type: header fields",
		},
		{
			name: "quoted @ in the From local part",
			msg:  sign(t, mimeMail(`"ceo@bank.example"@clinic.example`), "clinic.example", "rsa", "rsa"),
			text: `From: <ceo@bank.example@clinic.example> has "@" or "%" in its local part`,
		},
		{
			name: "quoted % in the From local part",
			msg:  sign(t, mimeMail(`"x%bank.example"@clinic.example`), "clinic.example", "rsa", "rsa"),
			text: `has "@" or "%" in its local part`,
		},
		{
			name: "% in the From local part",
			msg:  sign(t, mimeMail(`ceo%bank.example@clinic.example`), "clinic.example", "rsa", "rsa"),
			text: `has "@" or "%" in its local part`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := newRelayServer(t, d, func(c *RelayConfig) { c.Policy = tt.policy })
			err := rs.send(tt.mailFrom, "12125550123@secure.text", bytes.NewReader(tt.msg))
			if tt.text != "" {
				wantRefused(t, err, 550, gosmtp.EnhancedCode{5, 7, 1}, tt.text)
				if n, _ := rs.db.CountMessages(t.Context()); n != 0 {
					t.Errorf("%d messages stored", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantTexted(t, rs, "dr.who@clinic.example", "Dr Who", "+12125550123", tt.auth...)
		})
	}
}

// TestBodyLengthError holds isBodyLength to go-msgauth's text.
func TestBodyLengthError(t *testing.T) {
	d := newTestDNS(t)
	relayZone(d)
	msg := signLength(t, mimeMail("dr.who@clinic.example"), 10, "From")
	v, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{LookupTXT: checkResolver{r: d.resolver()}.lookupTXTFunc(t.Context())})
	if err != nil || len(v) != 1 || !isBodyLength(v[0].Err) {
		t.Fatalf("verifications %v, %v: want one refused for its l= tag", v, err)
	}
}
