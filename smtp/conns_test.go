package smtp

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// greeting connects to addr from local and returns the connection and the
// first line the server sent.
func greeting(t *testing.T, local, addr string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("greeting from %s: %v", local, err)
	}
	return conn, r, strings.TrimRight(line, "\r\n")
}

// TestConnectionLimits checks smtp.max_connections and
// smtp.max_connections_per_ip on both listeners: past either, a client is
// answered 421 4.7.0 and let go; a slot freed is a slot again.
func TestConnectionLimits(t *testing.T) {
	limits := func(c *Config, w *closeWatch) {
		c.MaxConnections, c.MaxConnectionsPerIP, c.Metrics = 5, 3, w
	}
	servers := map[string]func(t *testing.T, w *closeWatch) string{
		"submission": func(t *testing.T, w *closeWatch) string {
			return newTestServer(t, func(c *Config) { limits(c, w) }).addr
		},
		"relay": func(t *testing.T, w *closeWatch) string {
			return newRelayServer(t, newTestDNS(t), func(c *RelayConfig) { limits(&c.Config, w) }).addr
		},
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			w := newCloseWatch()
			addr := start(t, w)
			var first net.Conn
			for range 3 {
				conn, _, line := greeting(t, "127.0.0.1", addr)
				if !strings.HasPrefix(line, "220 ") {
					t.Fatalf("greeting %q", line)
				}
				first = conn
			}
			_, r, line := greeting(t, "127.0.0.1", addr)
			if line != "421 4.7.0 Too many connections from your address, try again later" {
				t.Errorf("fourth connection from one address: %q", line)
			}
			if _, err := r.ReadByte(); err != io.EOF {
				t.Errorf("the refused connection is still open: %v", err)
			}
			for _, local := range []string{"127.0.0.2", "127.0.0.3"} {
				if _, _, line := greeting(t, local, addr); !strings.HasPrefix(line, "220 ") {
					t.Errorf("from %s: %q", local, line)
				}
			}
			if _, _, line := greeting(t, "127.0.0.4", addr); line != "421 4.7.0 Too many connections, try again later" {
				t.Errorf("sixth connection: %q", line)
			}
			first.Close()
			w.wait(t)
			if _, _, line := greeting(t, "127.0.0.1", addr); !strings.HasPrefix(line, "220 ") {
				t.Errorf("after one closed: %q", line)
			}
		})
	}
}

// pipeListener hands a server in-memory connections (net.Pipe) that look
// like TCP from a given address, so that a server can run inside a
// synctest bubble, where its timeouts run on the bubble's clock.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

type pipeConn struct {
	net.Conn
	remote net.Addr
}

func (c pipeConn) RemoteAddr() net.Addr { return c.remote }

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 25} }

// dial connects from the address from and returns the client's side.
func (l *pipeListener) dial(t *testing.T, from string) *textproto.Conn {
	client, server := net.Pipe()
	l.conns <- pipeConn{Conn: server, remote: &net.TCPAddr{IP: net.ParseIP(from), Port: 40000}}
	t.Cleanup(func() { client.Close() })
	return textproto.NewConn(client)
}

// replyAfter reads one reply and returns its code and how long it took
// on the bubble's clock.
func replyAfter(t *testing.T, c *textproto.Conn) (int, string, time.Duration) {
	t.Helper()
	start := time.Now()
	code, msg, err := c.ReadResponse(0)
	if err != nil && code == 0 {
		t.Fatalf("read reply: %v", err)
	}
	return code, msg, time.Since(start)
}

func cmd(t *testing.T, c *textproto.Conn, line string, want int) {
	t.Helper()
	if err := c.PrintfLine("%s", line); err != nil {
		t.Fatal(err)
	}
	if code, msg, _ := replyAfter(t, c); code != want {
		t.Fatalf("%s: %d %s, want %d", line, code, msg, want)
	}
}

// TestIdleTimeout checks smtp.idle_timeout: a connection that has not
// logged in (submission) or started a transaction (relay) is let go with
// "421 4.4.2 Idle timeout, closing connection" after a minute of silence; one that has keeps the five-minute
// read timeout. The servers run in a synctest bubble: the durations are
// the bubble's, exact.
func TestIdleTimeout(t *testing.T) {
	const idle, read = time.Minute, 5 * time.Minute
	cfg := Config{
		Hostname: "gw.test", Domain: "secure.text",
		Phones:            securetextd.PhoneRules{DefaultRegion: "US", AllowedCountries: []string{"US"}},
		AllowInsecureAuth: true,
		ReadTimeout:       read,
		IdleTimeout:       idle,
	}
	logger := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	wantTimeout := func(t *testing.T, c *textproto.Conn, after time.Duration) {
		t.Helper()
		code, msg, took := replyAfter(t, c)
		if code != 421 || msg != "4.4.2 Idle timeout, closing connection" || took != after {
			t.Errorf("got %d %q after %v, want 421 4.4.2 Idle timeout, closing connection after %v", code, msg, took, after)
		}
	}

	t.Run("submission", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := NewSubmission(cfg, nil, logger)
			srv.throttle.st = noCounts{} // no store: the throttle counts nothing
			srv.checkPassword = func(_ context.Context, user, pass string) (*securetextd.Sender, error) {
				if user == testAccount && pass == testPassword {
					return &securetextd.Sender{Address: testAccount}, nil
				}
				return nil, securetextd.Errorf(securetextd.EUNAUTHORIZED, "no")
			}
			l := newPipeListener()
			go srv.Serve(l)
			defer srv.Close()

			silent := l.dial(t, "192.0.2.1")
			replyAfter(t, silent) // 220
			wantTimeout(t, silent, idle)

			chatty := l.dial(t, "192.0.2.1")
			replyAfter(t, chatty)
			cmd(t, chatty, "EHLO client.test", 250)
			wantTimeout(t, chatty, idle)

			in := l.dial(t, "192.0.2.1")
			replyAfter(t, in)
			cmd(t, in, "EHLO client.test", 250)
			cmd(t, in, "AUTH PLAIN AGRyLndob0BjbGluaWMuZXhhbXBsZQBjb3JyZWN0IGhvcnNlIGJhdHRlcnk=", 235)
			wantTimeout(t, in, read)
		})
	})
	t.Run("relay", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := NewRelay(RelayConfig{
				Config:          cfg,
				TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
				Policy:          PolicyTrustedNetwork,
				SenderDomains:   []string{"clinic.example"},
			}, nil, logger)
			l := newPipeListener()
			go srv.Serve(l)
			defer srv.Close()

			idleConn := l.dial(t, "192.0.2.1")
			replyAfter(t, idleConn)
			cmd(t, idleConn, "EHLO mta.clinic.example", 250)
			wantTimeout(t, idleConn, idle)

			busy := l.dial(t, "192.0.2.1")
			replyAfter(t, busy)
			cmd(t, busy, "EHLO mta.clinic.example", 250)
			cmd(t, busy, "MAIL FROM:<dr.who@clinic.example>", 250)
			wantTimeout(t, busy, read)

			// A transaction ended (RSET) earns nothing more.
			done := l.dial(t, "192.0.2.1")
			replyAfter(t, done)
			cmd(t, done, "EHLO mta.clinic.example", 250)
			cmd(t, done, "MAIL FROM:<dr.who@clinic.example>", 250)
			cmd(t, done, "RSET", 250)
			wantTimeout(t, done, idle)
		})
	})
}

// TestShutdownClosesIdle checks that a graceful shutdown lets an idle
// connection go with a 421 and returns once it has: the drain and the
// idle timeout share the tracker's lock.
func TestShutdownClosesIdle(t *testing.T) {
	ts := newTestServer(t, nil)
	_, r, line := greeting(t, "127.0.0.1", ts.addr)
	if !strings.HasPrefix(line, "220 ") {
		t.Fatal(line)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "421 ") {
		t.Errorf("the idle connection got %q, want a 421", line)
	}
}

// noCounts is a throttle store that counts nothing, for a listener
// tested without a store.
type noCounts struct{}

func (noCounts) AuthFailed(context.Context, store.AuthRule, string, string) (int, int, error) {
	return 0, 0, nil
}
func (noCounts) AuthSucceeded(context.Context, store.AuthRule, string, string) error { return nil }
func (noCounts) AuthKnown(context.Context, store.AuthRule, string, string) (bool, error) {
	return false, nil
}
