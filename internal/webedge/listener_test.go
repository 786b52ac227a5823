package webedge

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLimitListener fills a cap of two with idle connections: a third
// HTTP client is told 503 at once, a TLS client is closed without a word
// of plain text, and once an idle connection goes, requests are served
// again.
func TestLimitListener(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), slog.New(slog.DiscardHandler))
	ll := LimitListener(tcp, 2)
	go srv.Serve(ll)
	t.Cleanup(func() { srv.Close() })
	addr := tcp.Addr().String()

	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// get sends a request on a new connection and returns the status line
	// and the whole answer.
	get := func() (string, string) {
		t.Helper()
		c := dial()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: portal.test\r\nConnection: close\r\n\r\n")
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		line, _, _ := strings.Cut(string(b), "\r\n")
		return line, string(b)
	}

	if line, _ := get(); line != "HTTP/1.1 200 OK" {
		t.Fatalf("below the cap: %q", line)
	}
	// The server half-closes that connection (the client sees its end)
	// and closes it only a moment later: wait until its slot is back.
	for deadline := time.Now().Add(10 * time.Second); len(ll.(*limitListener).slots) > 0; {
		if time.Now().After(deadline) {
			t.Fatal("the first connection's slot never came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	idle := dial()
	dial()
	// The kernel queues connections in order and the server accepts them
	// in order, so these two hold the slots before the next is accepted.
	line, resp := get()
	if line != "HTTP/1.1 503 Service Unavailable" || !strings.Contains(resp, "Retry-After: 5\r\n") ||
		!strings.HasSuffix(resp, busyBody) {
		t.Fatalf("past the cap:\n%s", resp)
	}

	// A TLS client past the cap: closed, never answered in plain text.
	// Its first record is a handshake (the real client hello follows).
	raw := dial()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	hello := make(chan error, 1)
	go func() { hello <- tls.Client(raw, &tls.Config{InsecureSkipVerify: true}).Handshake() }()
	if err := <-hello; err == nil {
		t.Fatal("TLS handshake past the cap succeeded")
	}
	tlsRaw := dial()
	tlsRaw.SetDeadline(time.Now().Add(10 * time.Second))
	tlsRaw.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00})
	if b, _ := io.ReadAll(tlsRaw); len(b) != 0 {
		t.Fatalf("a TLS client past the cap was sent %q", b)
	}

	// An idle connection goes: its slot comes back.
	idle.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if line, _ := get(); line == "HTTP/1.1 200 OK" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slot of a closed connection never came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLimitConnCloseTwice: a connection closed twice (http.Server may)
// gives back one slot, not two.
func TestLimitConnCloseTwice(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	l := LimitListener(tcp, 2).(*limitListener)
	accepted := make(chan net.Conn, 2)
	go func() {
		for range 2 {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for range 2 {
		c, err := net.Dial("tcp", tcp.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	a, b := <-accepted, <-accepted
	defer b.Close()
	if n := len(l.slots); n != 2 {
		t.Fatalf("%d slots held, want 2", n)
	}
	a.Close()
	a.Close()
	if n := len(l.slots); n != 1 {
		t.Fatalf("after closing one connection twice, %d slots held, want 1", n)
	}
}
