package smtp

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// closeBlockingConn is a net.Conn whose Close, once entered, says so and
// waits for release before it closes.
type closeBlockingConn struct {
	net.Conn
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (c *closeBlockingConn) Close() error {
	c.once.Do(func() { close(c.entered) })
	<-c.release
	return c.Conn.Close()
}

// closeBlockingListener wraps each connection it accepts.
type closeBlockingListener struct {
	net.Listener
	conns chan *closeBlockingConn
}

func (l *closeBlockingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	bc := &closeBlockingConn{Conn: c, entered: make(chan struct{}), release: make(chan struct{})}
	l.conns <- bc
	return bc, nil
}

type nopBackend struct{}

func (nopBackend) NewSession(*Conn) (Session, error) { return nopSession{}, nil }

type nopSession struct{}

func (nopSession) Mail(string, *MailOptions) error { return nil }
func (nopSession) Rcpt(string, *RcptOptions) error { return nil }
func (nopSession) Data(r io.Reader) error          { _, err := io.Copy(io.Discard, r); return err }
func (nopSession) Reset()                          {}
func (nopSession) Logout() error                   { return nil }

// TestServerCloseDuringStartTLS closes the server while a connection's
// STARTTLS handshake is under way, and lets the handshake finish: Close
// reads the connection that STARTTLS then replaces. Under -race, the two
// must be ordered (the connection is replaced under the same lock).
func TestServerCloseDuringStartTLS(t *testing.T) {
	cert, err := tls.X509KeyPair(localhostCert, localhostKey)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &closeBlockingListener{Listener: inner, conns: make(chan *closeBlockingConn, 1)}
	s := NewServer(nopBackend{})
	s.Domain = "localhost"
	closed := make(chan error, 1)
	s.TLSConfig = &tls.Config{
		Certificates: []tls.Certificate{cert},
		// Called by the server's handshake before it ends: the server
		// is closed now, from another goroutine, whose Close of this
		// connection is held (closeBlockingConn) until the handshake is
		// over. The handshake waits a moment for Close to begin, by
		// time alone: a channel from that goroutine would order the two
		// for the race detector, and hide what this test looks for.
		VerifyConnection: func(tls.ConnectionState) error {
			go func() { closed <- s.Close() }()
			time.Sleep(50 * time.Millisecond)
			return nil
		},
	}
	go s.Serve(l)

	conn, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	expect := func(prefix string) {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(line, prefix) {
				t.Fatalf("got %q, want %q", line, prefix)
			}
			if len(line) > 3 && line[3] == ' ' {
				return
			}
		}
	}
	expect("220")
	io.WriteString(conn, "EHLO localhost\r\n")
	expect("250")
	io.WriteString(conn, "STARTTLS\r\n")
	expect("220")
	// The client's handshake ends when its Finished is sent; the
	// server's goes on to read it, and then replaces its connection.
	handshake := tls.Client(conn, &tls.Config{InsecureSkipVerify: true}).Handshake()
	// Close goes on once the server's handshake is over and it has
	// replaced its connection (waited for by time alone, as above).
	time.Sleep(200 * time.Millisecond)
	bc := <-l.conns
	close(bc.release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if handshake != nil {
		t.Logf("handshake: %v", handshake)
	}
}
