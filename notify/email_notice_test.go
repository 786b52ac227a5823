package notify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/securetextd/securetextd"
)

// emailJob is the notice-email job of conversation 42 for jane.
func emailJob(t *testing.T) *securetextd.Job {
	t.Helper()
	p, err := json.Marshal(securetextd.TextJob{To: "jane@example.net", Token: "LINKTOKEN_abc-123", ConversationID: 42, MessageID: 1})
	if err != nil {
		t.Fatal(err)
	}
	return &securetextd.Job{ID: 17, Kind: securetextd.JobKindEmail, Payload: p}
}

// TestEmailNotice: an email recipient's notice goes to their address
// through the relay, says who is writing through which organization, and
// gives the portal's link, in a text and an HTML part; it holds neither
// the message's subject nor its body nor a file name; it is
// Auto-Submitted, its Message-ID is on the gateway's host name, and with
// a key it is DKIM-signed (RSA and Ed25519) with a signature that
// verifies, and fails once the text is changed.
func TestEmailNotice(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	rsaPub, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	for _, tc := range []struct {
		name   string
		dkim   *DKIM
		record string
	}{
		{"unsigned", nil, ""},
		{"rsa", &DKIM{Domain: "clinic.example", Selector: "s1", Signer: rsaKey},
			"v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(rsaPub)},
		{"ed25519", &DKIM{Domain: "clinic.example", Selector: "s2", Signer: edKey},
			"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edKey.Public().(ed25519.PublicKey))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRelay(t, relayOptions{tls: true})
			st := newMailStore(t, "Your HIV results", "lab-report.pdf")
			st.conv.Phone = "jane@example.net"
			c := mailConfig()
			c.Relay = r.addr
			c.TLSConfig = tlsFor(r)
			c.Hostname = "gw.clinic.example"
			c.Color, c.OnColor = "#1d4e89", "#ffffff"
			c.DKIM = tc.dkim
			m, err := NewMailer(c, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Send(t.Context(), emailJob(t)); err != nil {
				t.Fatal(err)
			}
			got := r.received()
			if len(got) != 1 || got[0].to != "jane@example.net" || got[0].from != "securetextd@clinic.example" {
				t.Fatalf("relayed %+v", got)
			}
			data := got[0].data
			mr, err := mail.CreateReader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			h := mr.Header
			if s, _ := h.Subject(); s != "You have a secure message from Acme Clinic" {
				t.Errorf("Subject %q", s)
			}
			if v := h.Get("Auto-Submitted"); v != "auto-generated" {
				t.Errorf("Auto-Submitted %q", v)
			}
			if id, _ := h.MessageID(); id != "link.42.17@gw.clinic.example" {
				t.Errorf("Message-ID %q", id)
			}
			if ct, _, _ := h.ContentType(); ct != "multipart/alternative" {
				t.Errorf("Content-Type %q", ct)
			}
			parts := map[string]string{}
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				ct, _, _ := p.Header.(*mail.InlineHeader).ContentType()
				b, _ := io.ReadAll(p.Body)
				parts[ct] = string(b)
			}
			// The secrets are looked for in every header field but the
			// DKIM signature, whose random base64 could spell one, and in
			// each part as decoded.
			var seen strings.Builder
			for f := h.Fields(); f.Next(); {
				if !strings.EqualFold(f.Key(), "DKIM-Signature") {
					raw, _ := f.Raw()
					seen.Write(raw)
				}
			}
			for _, b := range parts {
				seen.WriteString(b)
			}
			for _, secret := range []string{"HIV", "Your results are in", "lab-report", "Thank you, doctor"} {
				if strings.Contains(seen.String(), secret) {
					t.Errorf("the notice holds %q", secret)
				}
			}
			link := "https://portal.clinic.example/m/LINKTOKEN_abc-123"
			for _, ct := range []string{"text/plain", "text/html"} {
				for _, want := range []string{"Dr. Ann Smith (dr.smith@clinic.example) has sent you a secure message through Acme Clinic", link} {
					if !strings.Contains(parts[ct], want) {
						t.Errorf("%s part lacks %q:\n%s", ct, want, parts[ct])
					}
				}
			}
			if !strings.Contains(parts["text/html"], "background:#1d4e89") {
				t.Errorf("html part without the brand colour:\n%s", parts["text/html"])
			}

			sigs := h.Values("DKIM-Signature")
			if tc.dkim == nil {
				if len(sigs) != 0 {
					t.Errorf("signed without a key: %q", sigs)
				}
				return
			}
			lookup := func(name string) ([]string, error) {
				if name != tc.dkim.Selector+"._domainkey.clinic.example" {
					t.Errorf("looked up %q", name)
				}
				return []string{tc.record}, nil
			}
			verify := func(data []byte) error {
				vs, err := dkim.VerifyWithOptions(bytes.NewReader(data), &dkim.VerifyOptions{LookupTXT: lookup})
				if err != nil {
					return err
				}
				if len(vs) != 1 || vs[0].Domain != "clinic.example" {
					t.Fatalf("verifications %+v", vs)
				}
				return vs[0].Err
			}
			if err := verify(data); err != nil {
				t.Errorf("signature does not verify: %v", err)
			}
			if err := verify(bytes.Replace(data, []byte("Acme Clinic."), []byte("Acme Bank.."), 1)); err == nil {
				t.Error("a changed notice still verifies")
			}
		})
	}
}

// tlsFor is the client TLS configuration that trusts r.
func tlsFor(r *testRelay) *tls.Config {
	if r.pool == nil {
		return nil
	}
	return &tls.Config{RootCAs: r.pool}
}

// TestReplyFromEmailRecipient: the email that carries an email
// recipient's reply to the sender answers into the conversation through
// email+<id>@domain, which the smtp package reads.
func TestReplyFromEmailRecipient(t *testing.T) {
	r := startRelay(t, relayOptions{tls: true})
	st := newMailStore(t, "Your results", "photo.jpg")
	st.conv.Phone = "jane@example.net"
	if err := relayMailer(t, r, st).Send(t.Context(), replyJob(t, 1)); err != nil {
		t.Fatal(err)
	}
	got := r.received()
	if len(got) != 1 {
		t.Fatalf("relayed %d", len(got))
	}
	p := parseMail(t, got[0].data)
	if v := p.header.Get("Reply-To"); v != "<email+42@secure.text>" {
		t.Errorf("Reply-To %q", v)
	}
	if !strings.Contains(p.text, "by jane@example.net") {
		t.Errorf("reply text %q", p.text)
	}
}

// TestNoticeOfEmailRecipient: the sender's delivery notice of a message
// to an email recipient says it was emailed, not texted.
func TestNoticeOfEmailRecipient(t *testing.T) {
	r := startRelay(t, relayOptions{tls: true})
	st := newMailStore(t, "Your results", "x.jpg")
	st.conv.Phone = "jane@example.net"
	job := noticeJob(t, securetextd.JobKindNotice, securetextd.MailJob{MessageID: 1, ConversationID: 42, Token: "REVOKETOKEN123"})
	if err := relayMailer(t, r, st).Send(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	p := parseMail(t, r.received()[0].data)
	if s, _ := p.header.Subject(); s != "Sent: Your results" {
		t.Errorf("Subject %q", s)
	}
	if !strings.Contains(p.text, "was emailed to j***@example.net at") || !strings.Contains(p.text, "Sent to the wrong address") {
		t.Errorf("notice:\n%s", p.text)
	}
}
