package smtp

// What a listener does with connections before go-smtp sees them, so that a
// flood of connections cannot take the gateway down: each listener holds at
// most Config.MaxConnections connections, and at most
// Config.MaxConnectionsPerIP from one client; a connection that has not
// earned trust (AUTH on submission, a transaction on the relay) waits at
// most Config.IdleTimeout for each command. Beyond the limits a new
// connection is answered "421 4.7.0 Too many connections" and closed at
// once, in the accept loop: it never becomes a session, and the accept loop
// never waits on it. These limits are each node's own, kept in its
// memory: they bound that machine's file descriptors and goroutines, and
// a connection is held by one node only. (The AUTH throttle's counts,
// which must hold whichever node a guesser reaches, are in the store.)

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// defaultIdleTimeout is Config.IdleTimeout when it is zero.
const defaultIdleTimeout = time.Minute

// refuseWriteTimeout bounds the write of a 421 to a connection over the
// limits. The reply fits the empty send buffer of a new socket, so the
// write does not wait in practice; the deadline only makes sure that it
// never can, whatever the client does.
const refuseWriteTimeout = 100 * time.Millisecond

// clientKey returns the key under which a client's connections are
// counted: its IPv4 address, or the /64 network of its IPv6 address. An
// IPv6 host is commonly given a whole /64 (RFC 6177) and can pick any
// address in it, so counting single IPv6 addresses would let one host
// open as many connections as it likes. A connection that is not IP (a
// test's pipe) is counted under the zero Prefix.
func clientKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	switch {
	case a.Is4():
		return netip.PrefixFrom(a, 32)
	case a.Is6():
		p, _ := a.Prefix(64)
		return p
	}
	return netip.Prefix{}
}

// trackedListener registers each accepted connection with the tracker,
// and refuses those over the limits.
type trackedListener struct {
	net.Listener
	s *Server
}

func (l *trackedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, refusal := l.s.conns.admit(c, l.s)
		if tc != nil {
			l.s.metrics().SessionOpened(l.s.listenerName())
			return tc, nil
		}
		l.s.conns.refused.note(l.s.logger, refusal)
		c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
		io.WriteString(c, "421 4.7.0 "+refusal+"\r\n")
		c.Close()
	}
}

// admit counts c in, or returns the text of the refusal when it is over
// MaxConnections or MaxConnectionsPerIP (zero: no limit).
func (t *connTracker) admit(c net.Conn, s *Server) (*trackedConn, string) {
	key := clientKey(remoteAddr(c))
	t.mu.Lock()
	defer t.mu.Unlock()
	if max := s.cfg.MaxConnections; max > 0 && len(t.conns) >= max {
		return nil, "Too many connections, try again later"
	}
	if max := s.cfg.MaxConnectionsPerIP; max > 0 && t.perIP[key] >= max {
		return nil, "Too many connections from your address, try again later"
	}
	if t.conns == nil {
		t.conns = make(map[net.Conn]*connState)
		t.perIP = make(map[netip.Prefix]int)
	}
	tc := &trackedConn{Conn: c, s: s, key: key}
	t.conns[tc] = &connState{}
	t.perIP[key]++
	return tc, ""
}

// release counts c out.
func (t *connTracker) release(c *trackedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.conns[c]; !ok {
		return
	}
	delete(t.conns, c)
	if t.perIP[c.key]--; t.perIP[c.key] <= 0 {
		delete(t.perIP, c.key)
	}
}

// setAuthed records whether the session on c has logged in.
func (t *connTracker) setAuthed(c net.Conn, authed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.conns[c]; st != nil {
		st.authed = authed
	}
}

// readDeadline returns the read deadline to set on c when go-smtp asks for
// d: d itself once the session has logged in or is in a transaction, and
// otherwise no later than IdleTimeout from now. go-smtp sets a deadline
// before every command it reads (ReadTimeout from now), and answers one
// that passes "421 4.4.2 Idle timeout" and hangs up: so a client that
// connects and says nothing, or lingers before AUTH, is let go after
// IdleTimeout, not ReadTimeout.
func (t *connTracker) readDeadline(c *trackedConn, d time.Time) time.Time {
	t.mu.Lock()
	st := t.conns[c]
	trusted := st != nil && (st.busy || st.authed)
	t.mu.Unlock()
	if trusted {
		return d
	}
	idle := c.s.cfg.IdleTimeout
	if idle <= 0 {
		idle = defaultIdleTimeout
	}
	if limit := time.Now().Add(idle); d.IsZero() || d.After(limit) {
		return limit
	}
	return d
}

// trackedConn is an accepted connection as go-smtp sees it (under TLS
// after STARTTLS): it leaves the tracker when closed and bounds read
// deadlines by the idle timeout.
type trackedConn struct {
	net.Conn
	s    *Server
	key  netip.Prefix
	once sync.Once
}

func (c *trackedConn) SetReadDeadline(d time.Time) error {
	return c.Conn.SetReadDeadline(c.s.conns.readDeadline(c, d))
}

func (c *trackedConn) SetDeadline(d time.Time) error {
	if err := c.Conn.SetWriteDeadline(d); err != nil {
		return err
	}
	return c.SetReadDeadline(d)
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.conns.release(c)
		c.s.metrics().SessionClosed(c.s.listenerName())
	})
	return c.Conn.Close()
}

// refusalLog logs connections refused over the limits without letting a
// flood flood the log: the first refusal, then at most one line a minute
// with the number refused since.
type refusalLog struct {
	mu     sync.Mutex
	last   time.Time
	missed int
}

func (r *refusalLog) note(logger *slog.Logger, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < time.Minute {
		r.missed++
		return
	}
	logger.Warn("connection refused over the connection limits", "reason", why, "refused_since_last_line", r.missed)
	r.last, r.missed = now, 0
}
