package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// testRelay is the organization's mail relay as the gateway sees it: a real
// go-smtp server on loopback with STARTTLS, which keeps what it receives.
type testRelay struct {
	addr   string
	client *tls.Config // trusts the relay's certificate

	mu   sync.Mutex
	mail []relayedMail
}

type relayedMail struct {
	From string
	To   []string
	Data []byte
	TLS  bool
}

func newTestRelay(t *testing.T) *testRelay {
	t.Helper()
	serverTLS, clientTLS := testTLS(t)
	r := &testRelay{client: clientTLS}
	s := gosmtp.NewServer(relayBackend{r})
	s.TLSConfig = serverTLS
	s.Domain = "relay.test"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return r
}

type relayBackend struct{ r *testRelay }

func (b relayBackend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &relaySession{r: b.r, tls: isTLS}, nil
}

type relaySession struct {
	r   *testRelay
	tls bool
	m   relayedMail
}

func (s *relaySession) AuthMechanisms() []string { return nil }
func (s *relaySession) Auth(string) (sasl.Server, error) {
	return nil, gosmtp.ErrAuthUnsupported
}
func (s *relaySession) Mail(from string, _ *gosmtp.MailOptions) error {
	s.m = relayedMail{From: from, TLS: s.tls}
	return nil
}
func (s *relaySession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.m.To = append(s.m.To, to)
	return nil
}
func (s *relaySession) Data(r io.Reader) error {
	var b bytes.Buffer
	if _, err := io.Copy(&b, r); err != nil {
		return err
	}
	s.m.Data = b.Bytes()
	s.r.mu.Lock()
	s.r.mail = append(s.r.mail, s.m)
	s.r.mu.Unlock()
	return nil
}
func (s *relaySession) Reset()        {}
func (s *relaySession) Logout() error { return nil }

// header returns one header field of a relayed email, unfolded.
func (m relayedMail) header(name string) string {
	head, _, _ := strings.Cut(string(m.Data), "\r\n\r\n")
	var val string
	found := false
	for _, line := range strings.Split(head, "\r\n") {
		if found && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) {
			val += " " + strings.TrimSpace(line)
			continue
		}
		if found {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			val, found = strings.TrimSpace(v), true
		}
	}
	return val
}

// testTLS makes a certificate for 127.0.0.1 and a client configuration
// that trusts it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := dir+"/c.pem", dir+"/k.pem"
	if err := writeSelfSigned(certFile, keyFile, "relay.test"); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return &tls.Config{Certificates: []tls.Certificate{cert}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// waitFor returns the first email received that match accepts, or fails
// after a while, naming what it waited for. Besides replies and resets,
// the relay receives the sender's notices (delivery, read, failure), in an
// order tests should not depend on.
func (r *testRelay) waitFor(t *testing.T, what string, match func(relayedMail) bool) relayedMail {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r.mu.Lock()
		got := append([]relayedMail(nil), r.mail...)
		r.mu.Unlock()
		for _, m := range got {
			if match(m) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay received %d emails, none of them %s", len(got), what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// count returns how many emails received match accepts.
func (r *testRelay) count(match func(relayedMail) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.mail {
		if match(m) {
			n++
		}
	}
	return n
}
