package webedge

import (
	"net"
	"strconv"
	"sync"
	"time"
)

// LimitListener returns l serving at most max connections at once, so that
// a flood of connections on one listener can neither take every file
// descriptor of the process (starving SMTP, the other HTTP listener and
// the store) nor hold this listener's own clients out for longer than the
// flood lasts.
//
// Past the cap it accepts and refuses, rather than leaving connections in
// the kernel's queue as golang.org/x/net/netutil.LimitListener does by not
// calling Accept: a queued client hangs with no answer until it gives up,
// the queue fills with the flood's connections ahead of real ones, and
// once it is full the kernel drops new ones silently. Here a refused
// client hears at once: a plain HTTP client (a browser, the proxy in front,
// a Prometheus scrape) gets "503 Service Unavailable" with Retry-After; a
// client that opens with a TLS handshake, when l sits under a TLS listener,
// is closed (a 503 can only be written inside TLS, and a handshake costs
// more than the refusal is worth). At most 64 refusals are in progress at
// once, each for at most a second; past that a connection is closed as
// soon as it is accepted.
//
// Wrap the TCP listener itself, under any TLS listener, so that a slot is
// held from accept to close whatever the protocol on top. Closing a
// returned connection more than once releases its slot once.
func LimitListener(l net.Listener, max int) net.Listener {
	return &limitListener{
		Listener:  l,
		slots:     make(chan struct{}, max),
		refusing:  make(chan struct{}, maxRefusing),
		refuseFor: time.Second,
	}
}

// maxRefusing bounds the refusals in progress.
const maxRefusing = 64

type limitListener struct {
	net.Listener
	slots     chan struct{} // one token per connection served
	refusing  chan struct{} // one token per refusal in progress
	refuseFor time.Duration
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
		}
		select {
		case l.refusing <- struct{}{}:
			go func() {
				defer func() { <-l.refusing }()
				refuseBusy(c, l.refuseFor)
			}()
		default:
			c.Close()
		}
	}
}

// busyBody and busyResponse are the whole answer to a client past the cap.
const busyBody = "The service is busy. Please try again in a moment.\n"

var busyResponse = []byte("HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"X-Content-Type-Options: nosniff\r\n" +
	"Cache-Control: no-store\r\n" +
	"Retry-After: 5\r\n" +
	"Connection: close\r\n" +
	"Content-Length: " + strconv.Itoa(len(busyBody)) + "\r\n" +
	"\r\n" + busyBody)

// tlsHandshakeRecord is the first byte of a TLS client hello.
const tlsHandshakeRecord = 0x16

// refuseBusy reads the start of what the client sends, within d, and
// answers 503 unless it is a TLS handshake; then it closes c. Reading
// first tells HTTP from TLS, and a request read before the close is not
// answered with a reset that could discard the 503 before the client
// reads it.
func refuseBusy(c net.Conn, d time.Duration) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(d))
	var buf [1024]byte
	n, _ := c.Read(buf[:])
	if n == 0 || buf[0] == tlsHandshakeRecord {
		return
	}
	c.Write(busyResponse)
}

// limitConn gives its slot back when closed.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite lets http.Server half-close the connection before it closes
// it (so that a client still sending is not reset before it reads the
// answer), as it does on a bare TCP connection.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
