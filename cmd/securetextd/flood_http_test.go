package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// startCappedMain runs the gateway in-process with small connection caps
// and an ops listener of its own.
func startCappedMain(t *testing.T, extra string, tune func(*Main)) *Main {
	t.Helper()
	vonage := newFakeVonage(t)
	cfg, err := ParseConfig([]byte(testConfigText(t, vonage.URL)+extra), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
	if tune != nil {
		tune(m)
	}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return m
}

// dialHold opens n connections to addr that send nothing.
func dialHold(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	return conns
}

// rawGet sends one request on a new connection and returns the status
// line and the whole answer.
func rawGet(t *testing.T, addr, path string) (string, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n")
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	line, _, _ := strings.Cut(string(b), "\r\n")
	return line, string(b)
}

// smtpGreeting dials addr and returns the first line the server says.
func smtpGreeting(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("SMTP greeting: %v", err)
	}
	return line
}

const (
	status200 = "HTTP/1.1 200 OK"
	status503 = "HTTP/1.1 503 Service Unavailable"
)

// TestHTTPConnectionCaps exhausts the portal's connection cap with idle
// connections: the next portal client is told 503 at once, while /healthz
// on the ops listener and SMTP still answer. Then the reverse: the ops
// listener full, the portal answers.
func TestHTTPConnectionCaps(t *testing.T) {
	m := startCappedMain(t, `
[ops]
listen = "127.0.0.1:0"
max_connections = 4
`, func(m *Main) { m.Config.Portal.MaxConnections = 20 })

	// Connections are queued and accepted in order: these 20 hold every
	// slot before the next one is accepted.
	idle := dialHold(t, m.PortalAddr, 20)
	if line, resp := rawGet(t, m.PortalAddr, "/"); line != status503 || !strings.Contains(resp, "Retry-After:") {
		t.Fatalf("portal past its cap:\n%s", resp)
	}
	if line, resp := rawGet(t, m.OpsAddr, "/healthz"); line != status200 {
		t.Fatalf("ops /healthz with the portal full:\n%s", resp)
	}
	if g := smtpGreeting(t, m.SubmissionAddr); !strings.HasPrefix(g, "220 ") {
		t.Fatalf("SMTP greeting with the portal full: %q", g)
	}

	// The idle connections go; the ops listener fills up instead.
	for _, c := range idle {
		c.Close()
	}
	dialHold(t, m.OpsAddr, 4)
	if line, resp := rawGet(t, m.OpsAddr, "/healthz"); line != status503 {
		t.Fatalf("ops past its cap:\n%s", resp)
	}
	// The portal's slots come back as the server sees each close.
	deadline := time.Now().Add(20 * time.Second)
	for {
		line, resp := rawGet(t, m.PortalAddr, "/")
		if line != status503 {
			if !strings.HasPrefix(line, "HTTP/1.1 ") {
				t.Fatalf("portal with the ops listener full:\n%s", resp)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the portal's slots never came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHTTPSlowloris dribbles a request's headers a byte at a time to the
// portal and to the ops listener: each cuts the connection (its read-header
// timeout, shortened here) before the headers are complete, instead of
// waiting for them.
func TestHTTPSlowloris(t *testing.T) {
	m := startCappedMain(t, "\n[ops]\nlisten = \"127.0.0.1:0\"\n", func(m *Main) {
		m.readHeaderTimeout = 200 * time.Millisecond
	})
	for name, addr := range map[string]string{"portal": m.PortalAddr, "ops": m.OpsAddr} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			closed := make(chan string, 1)
			go func() {
				b, _ := io.ReadAll(c) // until the server closes
				closed <- string(b)
			}()
			io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: gateway.test\r\nX-Slow: ")
			// At most 2000 bytes, 10 ms apart: the header is never finished
			// unless the server lets it take 20 seconds.
			for range 2000 {
				select {
				case got := <-closed:
					if got != "" {
						t.Fatalf("the server answered a slowloris: %q", got)
					}
					return
				default:
				}
				if _, err := c.Write([]byte("a")); err != nil {
					if !errors.Is(err, net.ErrClosed) {
						<-closed // the server hung up
					}
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			io.WriteString(c, "\r\n\r\n")
			t.Fatalf("the server waited for the whole dribbled header: %q", <-closed)
		})
	}
}
