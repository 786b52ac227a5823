package smtp

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/storetest"
	"github.com/securetextd/securetextd/store"
)

const (
	testAccount  = "dr.who@clinic.example"
	testPassword = "correct horse battery"
)

// testServer is a submission server on loopback over a real store.
type testServer struct {
	addr   string
	db     *store.DB
	tls    *tls.Config // client side: trusts the server's certificate
	srv    *Server
	mu     sync.Mutex
	sleeps []time.Duration
}

func newTestServer(t *testing.T, mutate func(*Config)) *testServer {
	t.Helper()
	return newTestServerWith(t, mutate, nil)
}

// newTestServerWith is newTestServer with setup called on the Server
// before it serves (to replace its password check or its sleep).
func newTestServerWith(t *testing.T, mutate func(*Config), setup func(*Server)) *testServer {
	t.Helper()
	db := storetest.Open(t, storetest.Keys(t))
	if err := db.CreateSender(t.Context(), testAccount, testPassword); err != nil {
		t.Fatal(err)
	}
	return newTestServerOn(t, db, mutate, setup)
}

// newTestServerOn is newTestServerWith over db, which holds testAccount:
// one of several nodes on one database.
func newTestServerOn(t *testing.T, db *store.DB, mutate func(*Config), setup func(*Server)) *testServer {
	t.Helper()
	serverTLS, clientTLS := testCertificate(t)
	cfg := Config{
		Hostname:        "gw.test",
		Domain:          "secure.text",
		Phones:          securetextd.PhoneRules{DefaultRegion: "US", AllowedCountries: []string{"US", "CA", "GB"}},
		MaxMessageBytes: 1 << 20,
		TLS:             serverTLS,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	ts := &testServer{db: db, tls: clientTLS}
	ts.srv = NewSubmission(cfg, db, slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ts.srv.sleep = func(_ context.Context, d time.Duration) {
		ts.mu.Lock()
		ts.sleeps = append(ts.sleeps, d)
		ts.mu.Unlock()
	}
	if setup != nil {
		setup(ts.srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = l.Addr().String()
	go ts.srv.Serve(l)
	t.Cleanup(func() { ts.srv.Close() })
	return ts
}

func testCertificate(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// dial connects with STARTTLS and logs in.
func (ts *testServer) dial(t *testing.T) *gosmtp.Client {
	t.Helper()
	c, err := gosmtp.DialStartTLS(ts.addr, ts.tls)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Auth(sasl.NewPlainClient("", testAccount, testPassword)); err != nil {
		t.Fatal(err)
	}
	return c
}

// wantCode asserts that err is an SMTP reply with the given code whose text
// contains want.
func wantCode(t *testing.T, err error, code int, want string) {
	t.Helper()
	se, ok := err.(*gosmtp.SMTPError)
	if !ok {
		t.Fatalf("err = %v (%T), want SMTP %d", err, err, code)
	}
	if se.Code != code || !strings.Contains(se.Message, want) {
		t.Fatalf("got %d %q, want %d containing %q", se.Code, se.Message, code, want)
	}
}

func TestAuthOnlyAfterTLS(t *testing.T) {
	ts := newTestServer(t, nil)
	c, err := gosmtp.Dial(ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered before STARTTLS")
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Error("STARTTLS not offered")
	}
	if ok, size := c.Extension("SIZE"); !ok || size != "1048576" {
		t.Errorf("SIZE = %v %q", ok, size)
	}
	if err := c.Mail(testAccount, nil); err == nil {
		t.Error("MAIL accepted without AUTH")
	}
	c2, err := gosmtp.DialStartTLS(ts.addr, ts.tls)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if ok, mechs := c2.Extension("AUTH"); !ok || !strings.Contains(mechs, "PLAIN") || !strings.Contains(mechs, "LOGIN") {
		t.Errorf("AUTH after STARTTLS = %v %q", ok, mechs)
	}
}

func TestMailWithoutAuth(t *testing.T) {
	ts := newTestServer(t, nil)
	c, err := gosmtp.DialStartTLS(ts.addr, ts.tls)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wantCode(t, c.Mail(testAccount, nil), 530, "Authentication required")
}

func TestAuth(t *testing.T) {
	ts := newTestServer(t, nil)
	try := func(a sasl.Client) error {
		c, err := gosmtp.DialStartTLS(ts.addr, ts.tls)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.Auth(a)
	}
	if err := try(sasl.NewLoginClient(testAccount, testPassword)); err != nil {
		t.Errorf("LOGIN: %v", err)
	}
	if err := try(sasl.NewPlainClient(testAccount, testAccount, testPassword)); err != nil {
		t.Errorf("PLAIN with identity = login: %v", err)
	}
	// CVE-2023-27582: an authorization identity naming someone else.
	wantCode(t, try(sasl.NewPlainClient("ceo@clinic.example", testAccount, testPassword)), 535, "authorization identity")
	wantCode(t, try(sasl.NewPlainClient("", testAccount, "wrong password")), 535, "")
	wantCode(t, try(sasl.NewLoginClient("nobody@clinic.example", testPassword)), 535, "")
	wantCode(t, try(sasl.NewLoginClient(testAccount, "wrong again")), 535, "")

	// Each failure from the same address waits longer.
	ts.mu.Lock()
	got := fmt.Sprint(ts.sleeps)
	ts.mu.Unlock()
	if got != "[1s 2s 3s]" {
		t.Errorf("delays = %s, want [1s 2s 3s]", got)
	}
	// A success clears the failures against that account from this
	// address; the one against nobody@ still counts.
	if err := try(sasl.NewLoginClient(testAccount, testPassword)); err != nil {
		t.Fatal(err)
	}
	try(sasl.NewLoginClient(testAccount, "wrong"))
	ts.mu.Lock()
	last := ts.sleeps[len(ts.sleeps)-1]
	ts.mu.Unlock()
	if last != 2*time.Second {
		t.Errorf("delay after a success = %v, want 2s", last)
	}
}

func TestMailFromMustBeAccount(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.dial(t)
	wantCode(t, c.Mail("ceo@clinic.example", nil), 553, "may only send as")
	wantCode(t, c.Mail("", nil), 553, "may only send as")
	if err := c.Mail("Dr.Who@Clinic.Example", nil); err != nil {
		t.Errorf("same address in other case: %v", err)
	}
}

func TestSizeAnnouncedTooLarge(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.dial(t)
	wantCode(t, c.Mail(testAccount, &gosmtp.MailOptions{Size: 2 << 20}), 552, "")
}

func TestRecipients(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.dial(t)
	if err := c.Mail(testAccount, nil); err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{
		"2125550123@secure.text", "12125550123@secure.text", "+12125550123@secure.text",
		"212-555-0123@SECURE.TEXT", "+447911123456@secure.text", "00447911123456@secure.text",
	} {
		if err := c.Rcpt(ok, nil); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, tc := range []struct{ rcpt, want string }{
		{"someone@example.com", "Relay access denied"},
		{"2125550123@secure.text.evil.example", "Relay access denied"},
		{"2125550123@example.com", "Relay access denied"},
		{"2114367789@secure.text", "cannot be a real phone number"},
		{"+442079460000@secure.text", "landline"},
		{"+4915123456789@secure.text", "a number in Germany (+49)"},
		{"+18005550199@secure.text", "toll-free"},
		{"hello@secure.text", "not a phone number"},
		{"123@secure.text", "phone number"},
	} {
		err := c.Rcpt(tc.rcpt, nil)
		se, ok := err.(*gosmtp.SMTPError)
		if !ok || se.Code/100 != 5 || !strings.Contains(se.Message, tc.want) {
			t.Errorf("%s: %v, want 5xx with %q", tc.rcpt, err, tc.want)
		}
	}
}

// rawSession speaks SMTP by hand over plain TCP, for what a well-behaved
// client library refuses to send (bare LF, …). The server allows AUTH
// without TLS, as a loopback listener may.
type rawSession struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func newRawSession(t *testing.T, ts *testServer) *rawSession {
	return newRawSessionAs(t, ts, testAccount)
}

func newRawSessionAs(t *testing.T, ts *testServer, account string) *rawSession {
	s := dialRaw(t, ts.addr, "client.test")
	s.login(account)
	return s
}

// dialRaw connects to addr, reads the greeting and says EHLO helo.
func dialRaw(t *testing.T, addr, helo string) *rawSession {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &rawSession{t: t, conn: conn, r: bufio.NewReader(conn)}
	s.expect("220")
	s.cmd("EHLO "+helo, "250")
	return s
}

// login logs in as account with AUTH PLAIN.
func (s *rawSession) login(account string) {
	s.t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte("\x00" + account + "\x00" + testPassword))
	s.cmd("AUTH PLAIN "+auth, "235")
}

// reply reads one (possibly multi-line) reply and returns its last line.
func (s *rawSession) reply() string {
	s.t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("read reply: %v", err)
		}
		if len(line) < 4 || line[3] != '-' {
			return strings.TrimRight(line, "\r\n")
		}
	}
}

func (s *rawSession) expect(code string) string {
	s.t.Helper()
	line := s.reply()
	if !strings.HasPrefix(line, code) {
		s.t.Fatalf("got %q, want %s", line, code)
	}
	return line
}

func (s *rawSession) cmd(line, code string) string {
	s.t.Helper()
	fmt.Fprintf(s.conn, "%s\r\n", line)
	return s.expect(code)
}

func (s *rawSession) data(body string) string {
	s.t.Helper()
	s.cmd("DATA", "354")
	io.WriteString(s.conn, body)
	return s.reply()
}

func countMessages(t *testing.T, db *store.DB) int {
	t.Helper()
	n, err := db.CountMessages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBareLineEndings refuses SMTP smuggling attempts: a bare LF or CR
// anywhere in the data, including the classic "<LF>.<LF>" and "<LF>.<CR><LF>"
// ends of data that another server might honour.
func TestBareLineEndings(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AllowInsecureAuth = true })
	for name, body := range map[string]string{
		"bare LF in body":    "Subject: x\r\n\r\nline one\nline two\r\n.\r\n",
		"bare CR in body":    "Subject: x\r\n\r\nline one\rline two\r\n.\r\n",
		"LF.LF smuggling":    "Subject: x\r\n\r\nhi\n.\nMAIL FROM:<ceo@clinic.example>\r\n.\r\n",
		"LF.CRLF smuggling":  "Subject: x\r\n\r\nhi\n.\r\nMAIL FROM:<ceo@clinic.example>\r\n.\r\n",
		"bare LF in headers": "Subject: x\nFrom: " + testAccount + "\r\n\r\nhi\r\n.\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			s := newRawSession(t, ts)
			s.cmd("MAIL FROM:<"+testAccount+">", "250")
			s.cmd("RCPT TO:<2125550123@secure.text>", "250")
			reply := s.data(body)
			if !strings.HasPrefix(reply, "550 5.5.2") || !strings.Contains(reply, "bare <CR> or <LF>") {
				t.Errorf("reply = %q", reply)
			}
			// The session goes on: the smuggled command was data, not a command.
			s.cmd("RSET", "250")
		})
	}
	if n := countMessages(t, ts.db); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

func TestDataTooLarge(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AllowInsecureAuth = true; c.MaxMessageBytes = 64 << 10 })
	s := newRawSession(t, ts)
	s.cmd("MAIL FROM:<"+testAccount+">", "250")
	s.cmd("RCPT TO:<2125550123@secure.text>", "250")
	reply := s.data("Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 2000) + ".\r\n")
	if !strings.HasPrefix(reply, "552") {
		t.Errorf("reply = %q", reply)
	}
	if n := countMessages(t, ts.db); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

func TestFromHeaderMustBeAccount(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AllowInsecureAuth = true })
	for _, tc := range []struct{ header, want string }{
		{"From: CEO <ceo@clinic.example>\r\n", "550 5.7.1 Message refused: From: <ceo@clinic.example> is not the address"},
		{"From: " + testAccount + "\r\nFrom: ceo@clinic.example\r\n", "550 5.7.1 Message refused: it has 2 From: header fields"},
		{"From: " + testAccount + ", ceo@clinic.example\r\n", "550 5.7.1 Message refused: its From: header lists 2 addresses"},
	} {
		s := newRawSession(t, ts)
		s.cmd("MAIL FROM:<"+testAccount+">", "250")
		s.cmd("RCPT TO:<2125550123@secure.text>", "250")
		if reply := s.data(tc.header + "Subject: hi\r\n\r\nhello\r\n.\r\n"); !strings.HasPrefix(reply, tc.want) {
			t.Errorf("reply = %q, want %q", reply, tc.want)
		}
	}
	if n := countMessages(t, ts.db); n != 0 {
		t.Errorf("%d messages stored", n)
	}
	s := newRawSession(t, ts)
	s.cmd("MAIL FROM:<"+testAccount+">", "250")
	s.cmd("RCPT TO:<2125550123@secure.text>", "250")
	s.cmd("RCPT TO:<12125550123@secure.text>", "250") // the same phone twice
	s.cmd("RCPT TO:<+447911123456@secure.text>", "250")
	if reply := s.data("From: Dr Who <" + testAccount + ">\r\nSubject: hi\r\n\r\nhello\r\n.\r\n"); !strings.HasPrefix(reply, "250") {
		t.Fatalf("reply = %q", reply)
	}
	if n := countMessages(t, ts.db); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
	if n, err := ts.db.CountConversations(t.Context()); err != nil || n != 2 {
		t.Errorf("%d conversations (%v), want one per phone: 2", n, err)
	}
}

func TestTooManyRecipients(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.MaxRecipients = 3 })
	c := ts.dial(t)
	c.Mail(testAccount, nil)
	for _, p := range []string{"2125550123", "2025550143", "2014367789"} {
		if err := c.Rcpt(p+"@secure.text", nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Rcpt("2125550199@secure.text", nil); err == nil {
		t.Error("fourth recipient accepted")
	}
}

func TestCommandLineTooLong(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AllowInsecureAuth = true })
	s := newRawSession(t, ts)
	fmt.Fprintf(s.conn, "MAIL FROM:<%s@clinic.example>\r\n", strings.Repeat("a", 5000))
	if reply := s.reply(); !strings.HasPrefix(reply, "5") {
		t.Errorf("reply = %q", reply)
	}
}

// testLogWriter sends the server's log to the test's log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestDataLineTooLong(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AllowInsecureAuth = true })
	s := newRawSession(t, ts)
	s.cmd("MAIL FROM:<"+testAccount+">", "250")
	s.cmd("RCPT TO:<2125550123@secure.text>", "250")
	reply := s.data("Subject: long\r\n\r\n" + strings.Repeat("x", maxLineLength+10) + "\r\n.\r\n")
	if !strings.HasPrefix(reply, "552 5.5.6 Message refused: a line is longer than") {
		t.Errorf("reply = %q", reply)
	}
	if n := countMessages(t, ts.db); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

// TestReplyIntoConversation checks the Reply-To routing of reply emails:
// <phone>+<conversation>@domain joins that conversation, for its own
// sender and phone only.
func TestReplyIntoConversation(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AllowInsecureAuth = true })
	if err := ts.db.CreateSender(t.Context(), "other@clinic.example", testPassword); err != nil {
		t.Fatal(err)
	}
	s := newRawSession(t, ts)
	s.cmd("MAIL FROM:<"+testAccount+">", "250")
	s.cmd("RCPT TO:<2125550123@secure.text>", "250")
	if reply := s.data("From: " + testAccount + "\r\nSubject: first\r\n\r\nhello\r\n.\r\n"); !strings.HasPrefix(reply, "250") {
		t.Fatal(reply)
	}
	s.cmd("MAIL FROM:<"+testAccount+">", "250")
	s.cmd("RCPT TO:<12125550123+1@secure.text>", "250")
	if reply := s.data("From: " + testAccount + "\r\nSubject: Re: first\r\n\r\nand again\r\n.\r\n"); !strings.HasPrefix(reply, "250") {
		t.Fatal(reply)
	}
	if n, _ := ts.db.CountConversations(t.Context()); n != 1 {
		t.Errorf("%d conversations, want the reply in the first one", n)
	}
	msgs, err := ts.db.ConversationMessages(t.Context(), 1)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("conversation 1 has %d messages (%v), want 2", len(msgs), err)
	}

	s.cmd("MAIL FROM:<"+testAccount+">", "250")
	for _, rcpt := range []string{
		"12125550123+999@secure.text", // no such conversation
		"12025550143+1@secure.text",   // another phone
		"12125550123+x1@secure.text",  // not a reference
	} {
		fmt.Fprintf(s.conn, "RCPT TO:<%s>\r\n", rcpt)
		if reply := s.reply(); !strings.HasPrefix(reply, "550 5.1.1") {
			t.Errorf("%s: %q", rcpt, reply)
		}
	}
	// Another account cannot write into this conversation.
	o := newRawSessionAs(t, ts, "other@clinic.example")
	o.cmd("MAIL FROM:<other@clinic.example>", "250")
	fmt.Fprintf(o.conn, "RCPT TO:<12125550123+1@secure.text>\r\n")
	if reply := o.reply(); !strings.HasPrefix(reply, "550 5.1.1") {
		t.Errorf("other account: %q", reply)
	}
}

// TestSubmissionDisplayName checks that a display name holding an address
// is not shown, on submission as on the relay: the recipient would read
// an address that was not the account's.
func TestSubmissionDisplayName(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AllowInsecureAuth = true })
	for i, tc := range []struct{ from, want string }{
		{`"ceo@bank.example" <` + testAccount + `>`, ""},
		{`=?utf-8?q?ceo=EF=BC=A0bank.example?= <` + testAccount + `>`, ""}, // a fullwidth @
		{`Dr Who <` + testAccount + `>`, "Dr Who"},
	} {
		s := newRawSession(t, ts)
		s.cmd("MAIL FROM:<"+testAccount+">", "250")
		s.cmd("RCPT TO:<2125550123@secure.text>", "250")
		if reply := s.data("From: " + tc.from + "\r\nSubject: hi\r\n\r\nhello\r\n.\r\n"); !strings.HasPrefix(reply, "250") {
			t.Fatalf("%s: %q", tc.from, reply)
		}
		m, err := ts.db.Message(t.Context(), int64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if m.SenderName != tc.want {
			t.Errorf("From: %s is shown as %q, want %q", tc.from, m.SenderName, tc.want)
		}
	}
}
