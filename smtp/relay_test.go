package smtp

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/storetest"
	"github.com/securetextd/securetextd/store"
)

// The test keys, made once: RSA-2048 is slow to generate.
var testKeys = sync.OnceValue(func() map[string]crypto.Signer {
	keys := make(map[string]crypto.Signer)
	for _, name := range []string{"rsa", "rsa-other"} {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[name] = k
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	keys["ed25519"] = ed
	return keys
})

// dkimRecord returns the DNS TXT value that publishes key's public half.
func dkimRecord(key crypto.Signer) string {
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			panic(err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	}
	panic("unknown key type")
}

// relayZone publishes the sending domains the relay tests use.
//
//   - clinic.example signs with rsa (RSA-2048) and ed (Ed25519), allows
//     127.0.0.0/8 in SPF, and publishes DMARC p=reject; mail.clinic.example
//     is an envelope domain of it with its own SPF record.
//   - other.example signs (key rsa-other) and allows 127.0.0.0/8 too, but
//     is not an allowed sender domain.
//   - spffail.example allows only 192.0.2.0/24 in SPF.
//   - strict.example asks for strict alignment; mail.strict.example signs
//     and has SPF.
//   - twodmarc.example publishes two DMARC records.
func relayZone(d *testDNS) {
	keys := testKeys()
	spfLoopback := "v=spf1 ip4:127.0.0.0/8 -all"
	d.set("rsa._domainkey.clinic.example", dkimRecord(keys["rsa"]))
	d.set("ed._domainkey.clinic.example", dkimRecord(keys["ed25519"]))
	d.set("clinic.example", spfLoopback)
	d.set("mail.clinic.example", spfLoopback)
	d.set("_dmarc.clinic.example", "v=DMARC1; p=reject; rua=mailto:dmarc@clinic.example")
	d.set("s1._domainkey.other.example", dkimRecord(keys["rsa-other"]))
	d.set("other.example", spfLoopback)
	d.set("spffail.example", "v=spf1 ip4:192.0.2.0/24 -all")
	d.set("_dmarc.strict.example", "v=DMARC1; p=quarantine; adkim=s; aspf=s")
	d.set("strict.example", "v=spf1 -all")
	d.set("s1._domainkey.mail.strict.example", dkimRecord(keys["rsa"]))
	d.set("mail.strict.example", spfLoopback)
	d.set("s1._domainkey.twodmarc.example", dkimRecord(keys["rsa"]))
	d.set("_dmarc.twodmarc.example", "v=DMARC1; p=none", "v=DMARC1; p=reject")
}

var relaySenderDomains = []string{"clinic.example", "*.clinic.example", "spffail.example", "strict.example", "twodmarc.example"}

// relayServer is a relay listener on loopback over a real store.
type relayServer struct {
	addr string
	db   *store.DB
	tls  *tls.Config // client side
}

func newRelayServer(t *testing.T, d *testDNS, mutate func(*RelayConfig)) *relayServer {
	t.Helper()
	return newRelayServerOn(t, d, storetest.Open(t, storetest.Keys(t)), mutate)
}

// newRelayServerOn is newRelayServer over db.
func newRelayServerOn(t *testing.T, d *testDNS, db *store.DB, mutate func(*RelayConfig)) *relayServer {
	t.Helper()
	serverTLS, clientTLS := testCertificate(t)
	cfg := RelayConfig{
		Config: Config{
			Hostname:        "gw.test",
			Domain:          "secure.text",
			Phones:          securetextd.PhoneRules{DefaultRegion: "US", AllowedCountries: []string{"US", "CA", "GB"}},
			MaxMessageBytes: 1 << 20,
			TLS:             serverTLS,
		},
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		SenderDomains:   relaySenderDomains,
		Resolver:        d.resolver(),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	srv := NewRelay(cfg, db, slog.New(slog.NewTextHandler(testLogWriter{t}, nil)))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return &relayServer{addr: l.Addr().String(), db: db, tls: clientTLS}
}

// send relays msg as a mail server would: EHLO with its name, no AUTH.
func (rs *relayServer) send(mailFrom, rcpt string, msg io.Reader) error {
	c, err := gosmtp.Dial(rs.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("mta.clinic.example"); err != nil {
		return err
	}
	return sendOn(c, mailFrom, rcpt, msg)
}

func sendOn(c *gosmtp.Client, mailFrom, rcpt string, msg io.Reader) error {
	if err := c.Mail(mailFrom, nil); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, msg); err != nil {
		return err
	}
	return w.Close()
}

// testMail is a test message: header lines (CRLF added) and a body.
func testMail(header []string, body string) []byte {
	return []byte(strings.Join(header, "\r\n") + "\r\n\r\n" + body)
}

func clinicMail(from string) []byte {
	return testMail([]string{
		"From: " + from,
		"To: 12125550123@secure.text",
		"Subject: Your results",
		"Date: Mon, 23 Nov 2026 10:00:00 +0000",
		"Message-ID: <results-1@clinic.example>",
	}, "Your results are normal.\r\n")
}

// sign adds a DKIM signature by domain with the key, as a sending server
// would (relaxed/relaxed, all header fields signed).
func sign(t *testing.T, msg []byte, domain, selector, key string) []byte {
	t.Helper()
	var b bytes.Buffer
	err := dkim.Sign(&b, bytes.NewReader(msg), &dkim.SignOptions{
		Domain:                 domain,
		Selector:               selector,
		Signer:                 testKeys()[key],
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// wantRefused asserts that err is an SMTP reply with the code, enhanced
// code and a text that contains want.
func wantRefused(t *testing.T, err error, code int, enhanced gosmtp.EnhancedCode, want string) {
	t.Helper()
	se, ok := err.(*gosmtp.SMTPError)
	if !ok {
		t.Fatalf("err = %v (%T), want SMTP %d", err, err, code)
	}
	if se.Code != code || se.EnhancedCode != enhanced || !strings.Contains(se.Message, want) {
		t.Fatalf("got %d %v %q, want %d %v containing %q", se.Code, se.EnhancedCode, se.Message, code, enhanced, want)
	}
}

// wantTexted asserts that the relay stored one message, from sender as
// shown, with an Authentication-Results that holds each of auth, and
// queued a text to phone.
func wantTexted(t *testing.T, rs *relayServer, sender, name, phone string, auth ...string) {
	t.Helper()
	ctx := t.Context()
	m, err := rs.db.Message(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Sender != sender || m.SenderName != name {
		t.Errorf("stored sender %q %q, want %q %q", m.SenderName, m.Sender, name, sender)
	}
	if !strings.HasPrefix(m.Auth, "gw.test; ") {
		t.Errorf("Auth = %q, want an Authentication-Results value by gw.test", m.Auth)
	}
	for _, a := range auth {
		if !strings.Contains(m.Auth, a) {
			t.Errorf("Auth = %q, want it to contain %q", m.Auth, a)
		}
	}
	job, err := rs.db.NextJob(ctx, time.Now().Add(time.Hour), securetextd.JobKindText)
	if err != nil {
		t.Fatal("no text queued: ", err)
	}
	var tj securetextd.TextJob
	if err := json.Unmarshal(job.Payload, &tj); err != nil {
		t.Fatal(err)
	}
	if string(tj.To) != phone {
		t.Errorf("text to %s, want %s", tj.To, phone)
	}
}

// TestRelayPolicy is issue 4's list of outcomes, and the lessons of
// "Composition Kills", for each policy.
func TestRelayPolicy(t *testing.T) {
	d := newTestDNS(t)
	relayZone(d)
	const rcpt = "12125550123@secure.text"
	drWho := "Dr Who <dr.who@clinic.example>"
	twoFrom := testMail([]string{
		"From: " + drWho,
		"From: Mallory <mallory@other.example>",
		"Subject: x",
	}, "x\r\n")
	altered := sign(t, clinicMail(drWho), "clinic.example", "rsa", "rsa")
	altered = bytes.Replace(altered, []byte("normal"), []byte("urgent"), 1)
	unsignedHeader := sign(t, clinicMail(drWho), "clinic.example", "rsa", "rsa")
	unsignedHeader = bytes.Replace(unsignedHeader, []byte("Subject: Your results"), []byte("Subject: Call 555-0100 now"), 1)

	tests := []struct {
		name     string
		policy   string
		mailFrom string
		msg      []byte
		// accepted:
		sender, display string
		auth            []string
		// refused:
		code     int
		enhanced gosmtp.EnhancedCode
		text     string
	}{
		{
			name: "aligned DKIM pass (RSA)", mailFrom: "bounces@elsewhere.example",
			msg:    sign(t, clinicMail(drWho), "clinic.example", "rsa", "rsa"),
			sender: "dr.who@clinic.example", display: "Dr Who",
			auth: []string{"dkim=pass header.d=clinic.example", "dmarc=pass header.from=clinic.example"},
		},
		{
			name: "aligned DKIM pass (Ed25519)", mailFrom: "",
			msg:    sign(t, clinicMail(drWho), "clinic.example", "ed", "ed25519"),
			sender: "dr.who@clinic.example", display: "Dr Who",
			auth: []string{"dkim=pass header.d=clinic.example", "dmarc=pass"},
		},
		{
			name: "SPF-only pass, relaxed alignment", mailFrom: "bounces@mail.clinic.example",
			msg:    clinicMail(drWho),
			sender: "dr.who@clinic.example", display: "Dr Who",
			auth: []string{"dkim=none", "spf=pass smtp.mailfrom=bounces@mail.clinic.example", "dmarc=pass"},
		},
		{
			name: "From domain is a subdomain allowed by *.", mailFrom: "x@mail.clinic.example",
			msg:    clinicMail("ward7@mail.clinic.example"),
			sender: "ward7@mail.clinic.example",
			auth:   []string{"spf=pass", "dmarc=pass"},
		},
		{
			name: "display name holding an address is not shown", mailFrom: "dr.who@clinic.example",
			msg:    clinicMail(`"ceo@bank.example" <dr.who@clinic.example>`),
			sender: "dr.who@clinic.example", display: "",
			auth: []string{"spf=pass"},
		},
		{
			name: "unsigned, SPF fail", mailFrom: "dr@spffail.example",
			msg:  clinicMail("dr@spffail.example"),
			code: 550, enhanced: gosmtp.EnhancedCode{5, 7, 26},
			text: "no DKIM signature; SPF fail for spffail.example from 127.0.0.1",
		},
		{
			name: "body altered after signing", mailFrom: "x@spffail.example",
			msg:  altered,
			code: 550, enhanced: gosmtp.EnhancedCode{5, 7, 26},
			text: "DKIM signature for clinic.example did not verify: body hash did not verify",
		},
		{
			name: "signed header altered after signing", mailFrom: "x@spffail.example",
			msg:  unsignedHeader,
			code: 550, enhanced: gosmtp.EnhancedCode{5, 7, 26},
			text: "DKIM signature for clinic.example did not verify: signature did not verify",
		},
		{
			name: "signature by another domain than From", mailFrom: "x@other.example",
			msg:  sign(t, clinicMail(drWho), "other.example", "s1", "rsa-other"),
			code: 550, enhanced: gosmtp.EnhancedCode{5, 7, 26},
			text: "DKIM signature by other.example is valid but not aligned with From domain clinic.example; SPF pass for other.example is not aligned",
		},
		{
			name: "signature with a key the domain does not publish", mailFrom: "",
			msg:  sign(t, clinicMail(drWho), "clinic.example", "nokey", "rsa"),
			code: 550, enhanced: gosmtp.EnhancedCode{5, 7, 26},
			text: "DKIM signature for clinic.example did not verify: no key for signature",
		},
		{
			name: "two From header fields", mailFrom: "dr.who@clinic.example",
			msg:  sign(t, twoFrom, "clinic.example", "rsa", "rsa"),
			code: 550, enhanced: gosmtp.EnhancedCode{5, 7, 1},
			text: "it has 2 From: header fields; a relayed message must have exactly one",
		},
		{
			// A replayed signed message with an indented From line put on
			// top: the MIME walk would read that one, DKIM the signed one.
			name: "indented From line above a signed From", mailFrom: "",
			msg:  append([]byte(" From: ceo@clinic.example\r\n"), sign(t, clinicMail(drWho), "clinic.example", "rsa", "rsa")...),
			code: 550, enhanced: gosmtp.EnhancedCode{5, 7, 1},
			text: "its header is not well formed: its first line is indented",
		},
		{
			name: "two addresses in From", mailFrom: "dr.who@clinic.example",
			msg:  clinicMail("dr.who@clinic.example, mallory@other.example"),
			code: 550, enhanced: gosmtp.EnhancedCode{5, 7, 1},
			text: "its From: header lists 2 addresses",
		},
		{
			name: "no From", mailFrom: "dr.who@clinic.example",
			msg:  testMail([]string{"Subject: x"}, "x\r\n"),
			code: 550, enhanced: gosmtp.EnhancedCode{5, 7, 1},
			text: "it has no From: header field",
		},
		{
			name: "sender domain not allowed", mailFrom: "x@other.example",
			msg:  sign(t, clinicMail("someone@other.example"), "other.example", "s1", "rsa-other"),
			code: 550, enhanced: gosmtp.EnhancedCode{5, 7, 1},
			text: "From domain other.example is not allowed to send here",
		},
		{
			name: "strict DMARC alignment refuses a subdomain's signature", mailFrom: "x@mail.strict.example",
			msg:  sign(t, clinicMail("dr@strict.example"), "mail.strict.example", "s1", "rsa"),
			code: 550, enhanced: gosmtp.EnhancedCode{5, 7, 26},
			text: "DKIM signature by mail.strict.example is valid but not aligned with From domain strict.example",
		},
		{
			name: "two DMARC records", mailFrom: "",
			msg:  sign(t, clinicMail("dr@twodmarc.example"), "twodmarc.example", "s1", "rsa"),
			code: 550, enhanced: gosmtp.EnhancedCode{5, 7, 1},
			text: "the DMARC record of twodmarc.example is not usable: _dmarc.twodmarc.example has 2 DMARC records",
		},

		// The other policies.
		{
			name: "dkim: aligned DKIM pass", policy: PolicyDKIM, mailFrom: "x@spffail.example",
			msg:    sign(t, clinicMail(drWho), "clinic.example", "ed", "ed25519"),
			sender: "dr.who@clinic.example", display: "Dr Who",
			auth: []string{"dkim=pass header.d=clinic.example"},
		},
		{
			name: "dkim: SPF pass is not enough", policy: PolicyDKIM, mailFrom: "dr.who@clinic.example",
			msg:  clinicMail(drWho),
			code: 550, enhanced: gosmtp.EnhancedCode{5, 7, 20},
			text: "no DKIM signature",
		},
		{
			name: "dkim: unaligned signature", policy: PolicyDKIM, mailFrom: "",
			msg:  sign(t, clinicMail(drWho), "other.example", "s1", "rsa-other"),
			code: 550, enhanced: gosmtp.EnhancedCode{5, 7, 22},
			text: "DKIM signature by other.example is valid but not aligned",
		},
		{
			name: "spf: aligned SPF pass", policy: PolicySPF, mailFrom: "dr.who@clinic.example",
			msg:    clinicMail(drWho),
			sender: "dr.who@clinic.example", display: "Dr Who",
			auth: []string{"spf=pass smtp.mailfrom=dr.who@clinic.example"},
		},
		{
			name: "spf: DKIM pass is not enough", policy: PolicySPF, mailFrom: "x@spffail.example",
			msg:  sign(t, clinicMail(drWho), "clinic.example", "rsa", "rsa"),
			code: 550, enhanced: gosmtp.EnhancedCode{5, 7, 23},
			text: "SPF fail for spffail.example from 127.0.0.1",
		},
		{
			name: "trusted-network: no checks", policy: PolicyTrustedNetwork, mailFrom: "x@spffail.example",
			msg:    clinicMail(drWho),
			sender: "dr.who@clinic.example", display: "Dr Who",
			auth: []string{"x-trusted-network=pass policy.ip=127.0.0.1"},
		},
		{
			name: "trusted-network: sender domains still apply", policy: PolicyTrustedNetwork, mailFrom: "",
			msg:  clinicMail("x@other.example"),
			code: 550, enhanced: gosmtp.EnhancedCode{5, 7, 1},
			text: "From domain other.example is not allowed to send here",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := newRelayServer(t, d, func(c *RelayConfig) { c.Policy = tt.policy })
			err := rs.send(tt.mailFrom, rcpt, bytes.NewReader(tt.msg))
			if tt.code != 0 {
				wantRefused(t, err, tt.code, tt.enhanced, tt.text)
				if n, _ := rs.db.CountMessages(t.Context()); n != 0 {
					t.Errorf("%d messages stored", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantTexted(t, rs, tt.sender, tt.display, "+12125550123", tt.auth...)
		})
	}
}

// TestRelayUntrustedClient checks that a client outside the trusted
// networks is refused at the greeting, told why, and let go after QUIT.
func TestRelayUntrustedClient(t *testing.T) {
	d := newTestDNS(t)
	rs := newRelayServer(t, d, func(c *RelayConfig) {
		c.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("::ffff:10.0.0.0/104")}
	})
	conn, err := net.Dial("tcp", rs.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	line := func() string {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if g := line(); !strings.HasPrefix(g, "554 5.7.1 ") || !strings.Contains(g, "127.0.0.1") || !strings.Contains(g, "trusted networks") {
		t.Errorf("greeting %q", g)
	}
	fmt.Fprintf(conn, "EHLO mta.clinic.example\r\n")
	if r := line(); !strings.HasPrefix(r, "503 ") {
		t.Errorf("EHLO: %q", r)
	}
	fmt.Fprintf(conn, "QUIT\r\n")
	if r := line(); !strings.HasPrefix(r, "221 ") {
		t.Errorf("QUIT: %q", r)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("connection still open after QUIT: %v", err)
	}

	// What a go-smtp client (or an MTA) sees.
	c, err := gosmtp.Dial(rs.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wantRefused(t, c.Hello("mta.clinic.example"), 554, gosmtp.EnhancedCode{5, 7, 1}, "not in this gateway's trusted networks")
}

// TestRelayNoAuth checks that the relay offers no AUTH, and offers
// STARTTLS.
func TestRelayNoAuth(t *testing.T) {
	rs := newRelayServer(t, newTestDNS(t), nil)
	c, err := gosmtp.Dial(rs.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("mta.clinic.example"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered before STARTTLS")
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Error("STARTTLS not offered")
	}
	tc, err := gosmtp.DialStartTLS(rs.addr, rs.tls)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := tc.Hello("mta.clinic.example"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := tc.Extension("AUTH"); ok {
		t.Error("AUTH offered after STARTTLS")
	}
}

// TestRelayRequireTLS checks relay.require_tls: MAIL FROM is refused in
// the clear and accepted after STARTTLS.
func TestRelayRequireTLS(t *testing.T) {
	d := newTestDNS(t)
	relayZone(d)
	rs := newRelayServer(t, d, func(c *RelayConfig) { c.RequireTLS = true })
	msg := sign(t, clinicMail("dr.who@clinic.example"), "clinic.example", "rsa", "rsa")
	err := rs.send("dr.who@clinic.example", "12125550123@secure.text", bytes.NewReader(msg))
	wantRefused(t, err, 530, gosmtp.EnhancedCode{5, 7, 0}, "STARTTLS")

	c, err := gosmtp.DialStartTLS(rs.addr, rs.tls)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := sendOn(c, "dr.who@clinic.example", "12125550123@secure.text", bytes.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	wantTexted(t, rs, "dr.who@clinic.example", "", "+12125550123", "dkim=pass")
}

// TestRelayDNSDown checks that a DNS failure is a temporary refusal, so
// that the relaying server keeps the message and delivers it later.
func TestRelayDNSDown(t *testing.T) {
	d := newTestDNS(t)
	relayZone(d)
	for _, policy := range []string{PolicyDMARC, PolicyDKIM, PolicySPF} {
		t.Run(policy, func(t *testing.T) {
			rs := newRelayServer(t, d, func(c *RelayConfig) { c.Policy = policy })
			msg := sign(t, clinicMail("dr.who@clinic.example"), "clinic.example", "rsa", "rsa")
			d.stop()
			err := rs.send("dr.who@clinic.example", "12125550123@secure.text", bytes.NewReader(msg))
			d.restart()
			wantRefused(t, err, 451, gosmtp.EnhancedCode{4, 7, 0}, "Temporary DNS failure, try again later")
			if err := rs.send("dr.who@clinic.example", "12125550123@secure.text", bytes.NewReader(msg)); err != nil {
				t.Fatal("after DNS came back: ", err)
			}
		})
	}
}

// TestRelayConversation checks <phone>+<conversation> routing on the
// relay: the conversation must be between the checked From address and
// the phone, which is known only after DATA.
func TestRelayConversation(t *testing.T) {
	d := newTestDNS(t)
	relayZone(d)
	rs := newRelayServer(t, d, nil)
	first := sign(t, clinicMail("dr.who@clinic.example"), "clinic.example", "rsa", "rsa")
	if err := rs.send("", "2125550123@secure.text", bytes.NewReader(first)); err != nil {
		t.Fatal(err)
	}
	answer := sign(t, clinicMail("Dr Who <dr.who@CLINIC.example>"), "clinic.example", "rsa", "rsa")
	if err := rs.send("", "12125550123+1@secure.text", bytes.NewReader(answer)); err != nil {
		t.Fatal(err)
	}
	if n, _ := rs.db.CountConversations(t.Context()); n != 1 {
		t.Errorf("%d conversations, want the answer in the first one", n)
	}
	if msgs, err := rs.db.ConversationMessages(t.Context(), 1); err != nil || len(msgs) != 2 {
		t.Errorf("conversation 1 has %d messages (%v), want 2", len(msgs), err)
	}

	colleague := sign(t, clinicMail("nurse@clinic.example"), "clinic.example", "rsa", "rsa")
	for _, rcpt := range []string{"12125550123+1@secure.text", "12125550123+99@secure.text", "12025550143+1@secure.text"} {
		err := rs.send("", rcpt, bytes.NewReader(colleague))
		wantRefused(t, err, 550, gosmtp.EnhancedCode{5, 1, 1}, "there is no conversation")
	}
}

// heapPeak samples the live heap while f runs and returns how far it rose
// above where it started.
func heapPeak(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	runtime.GC()
	base := read()
	var peak uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, read())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(done)
	<-stopped
	if peak < base {
		return 0
	}
	return peak - base
}

// bigMail generates a large text message line by line, the same bytes
// each time it is read.
type bigMail struct {
	header []byte
	lines  int
	n      int
	buf    []byte
}

func newBigMail(size int) *bigMail {
	h := clinicMail("Dr Who <dr.who@clinic.example>")
	h = h[:bytes.Index(h, []byte("\r\n\r\n"))+4]
	return &bigMail{header: h, lines: size / 80}
}

func (m *bigMail) Read(p []byte) (int, error) {
	for len(m.buf) == 0 {
		switch {
		case m.header != nil:
			m.buf, m.header = m.header, nil
		case m.n < m.lines:
			m.buf = fmt.Appendf(m.buf[:0], "%08d %s\r\n", m.n, strings.Repeat("lab value ", 7))
			m.n++
		default:
			return 0, io.EOF
		}
	}
	n := copy(p, m.buf)
	m.buf = m.buf[n:]
	return n, nil
}

// TestRelayLargeSignedMessage relays a 20 MiB signed message and checks
// that DKIM verified it as it streamed: the heap does not grow with it.
func TestRelayLargeSignedMessage(t *testing.T) {
	const size = 20 << 20
	d := newTestDNS(t)
	relayZone(d)
	rs := newRelayServer(t, d, func(c *RelayConfig) { c.MaxMessageBytes = 2 * size })
	signer, err := dkim.NewSigner(&dkim.SignOptions{
		Domain: "clinic.example", Selector: "rsa", Signer: testKeys()["rsa"],
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationSimple,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(signer, newBigMail(size)); err != nil {
		t.Fatal(err)
	}
	if err := signer.Close(); err != nil {
		t.Fatal(err)
	}
	defer debug.SetGCPercent(debug.SetGCPercent(20))
	rise := heapPeak(func() {
		msg := io.MultiReader(strings.NewReader(signer.Signature()), newBigMail(size))
		err = rs.send("", "12125550123@secure.text", msg)
	})
	if err != nil {
		t.Fatal(err)
	}
	wantTexted(t, rs, "dr.who@clinic.example", "Dr Who", "+12125550123", "dkim=pass header.d=clinic.example")
	t.Logf("heap rose %.1f MiB for a %d MiB message", float64(rise)/(1<<20), size>>20)
	if rise > 8<<20 {
		t.Errorf("heap rose %.1f MiB while a %d MiB message was relayed: it was buffered", float64(rise)/(1<<20), size>>20)
	}
}
