package smtp

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// Metrics counts what the listeners do, for monitoring. cmd/securetextd
// passes a Prometheus implementation; a nil Metrics counts nothing.
// listener is "submission" or "relay".
type Metrics interface {
	// SessionOpened and SessionClosed bracket each connection.
	SessionOpened(listener string)
	SessionClosed(listener string)
	// MessageAccepted counts a message answered 250.
	MessageAccepted(listener string)
	// MessageRefused counts a refused MAIL, RCPT or DATA, with a short
	// reason: "recipient", "policy", "too_large", "invalid", "limit",
	// "syntax", "auth", "temporary", "shutdown" or "other".
	MessageRefused(listener, reason string)
}

// listenerName names the server's listener in metrics.
func (s *Server) listenerName() string {
	if s.relay != nil {
		return "relay"
	}
	return "submission"
}

func (s *Server) metrics() Metrics {
	if s.cfg.Metrics != nil {
		return s.cfg.Metrics
	}
	return nopMetrics{}
}

type nopMetrics struct{}

func (nopMetrics) SessionOpened(string)          {}
func (nopMetrics) SessionClosed(string)          {}
func (nopMetrics) MessageAccepted(string)        {}
func (nopMetrics) MessageRefused(string, string) {}

// connTracker knows every open connection of a server and whether it is in
// the middle of a mail transaction (from MAIL to the end of DATA), so that
// a graceful shutdown can let transactions finish while it closes idle
// connections, and refuses new transactions with 421.
//
// It also enforces the connection limits and the idle timeout (conns.go):
// it counts connections in all and per client, and knows which ones have
// earned the longer read timeout.
type connTracker struct {
	mu       sync.Mutex
	conns    map[net.Conn]*connState
	perIP    map[netip.Prefix]int // open connections per clientKey
	draining bool
	inData   sync.WaitGroup // DATA commands in progress
	refused  refusalLog
}

type connState struct {
	busy   bool // in a transaction, from MAIL to the end of DATA
	authed bool // logged in with AUTH
}

// setBusy marks the connection under a session as in a transaction or not.
// It refuses to start a transaction once the server is draining.
func (t *connTracker) setBusy(c net.Conn, busy bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if busy && t.draining {
		return false
	}
	if st := t.conns[c]; st != nil {
		st.busy = busy
	}
	return true
}

// drain starts closing idle connections: each is made to time out of the
// read it waits in, and go-smtp answers it 421 and hangs up. A connection
// in a transaction is left to finish it; it is closed once idle. It
// returns a function that stops the draining.
func (t *connTracker) drain() (stop func()) {
	t.mu.Lock()
	t.draining = true
	t.mu.Unlock()
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			var idle []net.Conn
			t.mu.Lock()
			for c, st := range t.conns {
				if !st.busy {
					idle = append(idle, c)
				}
			}
			t.mu.Unlock()
			// go-smtp sets a new deadline before each read; this one only
			// ends a read already waiting, hence the ticker. (Outside the
			// lock: a trackedConn's SetReadDeadline takes it.)
			for _, c := range idle {
				c.SetReadDeadline(time.Now())
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// waitData waits, at most d, for DATA commands in progress to return: a
// commit under way finishes before the store is closed.
func (t *connTracker) waitData(d time.Duration) {
	done := make(chan struct{})
	go func() { t.inData.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// errShuttingDown refuses a transaction that would start during shutdown.
var errShuttingDown = &gosmtp.SMTPError{
	Code:         421,
	EnhancedCode: gosmtp.EnhancedCode{4, 3, 2},
	Message:      "Service shutting down; please try again in a moment",
}

// track wraps a new session so that the tracker knows when it is in a
// transaction, and the metrics see each outcome.
func (s *Server) track(c *gosmtp.Conn, sess gosmtp.Session, err error) (gosmtp.Session, error) {
	if err != nil {
		return nil, err
	}
	raw := c.Conn()
	if tc, ok := raw.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	// A new session (after STARTTLS, go-smtp starts one) has not logged in.
	s.conns.setAuthed(raw, false)
	t := &trackedSession{Session: sess, s: s, conn: raw}
	if a, ok := sess.(gosmtp.AuthSession); ok {
		return &trackedAuthSession{trackedSession: t, auth: a}, nil
	}
	return t, nil
}

type trackedSession struct {
	gosmtp.Session
	s    *Server
	conn net.Conn
}

type trackedAuthSession struct {
	*trackedSession
	auth gosmtp.AuthSession
}

var (
	_ gosmtp.Session     = (*trackedSession)(nil)
	_ gosmtp.AuthSession = (*trackedAuthSession)(nil)
)

func (t *trackedAuthSession) AuthMechanisms() []string { return t.auth.AuthMechanisms() }

// Auth passes the mechanism on, and tells the tracker when it succeeds:
// from then on the connection has the longer read timeout.
func (t *trackedAuthSession) Auth(mech string) (sasl.Server, error) {
	srv, err := t.auth.Auth(mech)
	if err != nil {
		return nil, err
	}
	return &authWatch{Server: srv, ok: func() { t.s.conns.setAuthed(t.conn, true) }}, nil
}

// authWatch calls ok when the exchange of its sasl.Server ends in success.
type authWatch struct {
	sasl.Server
	ok func()
}

func (a *authWatch) Next(response []byte) ([]byte, bool, error) {
	challenge, done, err := a.Server.Next(response)
	if done && err == nil {
		a.ok()
	}
	return challenge, done, err
}

func (t *trackedSession) refused(err error) error {
	t.s.metrics().MessageRefused(t.s.listenerName(), refusalReason(err))
	return err
}

func (t *trackedSession) Mail(from string, opts *gosmtp.MailOptions) error {
	if !t.s.conns.setBusy(t.conn, true) {
		return t.refused(errShuttingDown)
	}
	if err := t.Session.Mail(from, opts); err != nil {
		t.s.conns.setBusy(t.conn, false)
		return t.refused(err)
	}
	return nil
}

func (t *trackedSession) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	if err := t.Session.Rcpt(to, opts); err != nil {
		return t.refused(err)
	}
	return nil
}

func (t *trackedSession) Data(r io.Reader) error {
	t.s.conns.inData.Add(1)
	defer t.s.conns.inData.Done()
	defer t.s.conns.setBusy(t.conn, false)
	if err := t.Session.Data(r); err != nil {
		if errors.Is(err, gosmtp.ErrDataReset) {
			t.s.logger.Warn("message not stored: the client ended the transaction inside BDAT",
				"client", remoteAddr(t.conn).String())
		}
		return t.refused(err)
	}
	t.s.metrics().MessageAccepted(t.s.listenerName())
	return replyAccepted
}

// replyAccepted is the reply to a message stored, in the gateway's words
// rather than go-smtp's "OK: queued". go-smtp (v0.25.1, dataErrorToStatus)
// answers DATA and the last BDAT chunk with the code and text of the
// *SMTPError that Data returns, whatever the code, and does nothing else
// with it on an SMTP (not LMTP) server: returning a 250 is how a backend
// words its acceptance. Only the outermost session (trackedSession)
// returns it, once the message is committed and counted, so that no
// wrapper inside takes it for a refusal.
//
// go-smtp lets a backend word its refusals and this reply only: the texts
// of its other replies are fixed in its conn.go (the greeting, EHLO,
// MAIL's "250 2.1.0 Sender OK", RCPT's "250 2.1.5 Recipient OK", DATA's
// 354, AUTH, STARTTLS, RSET, NOOP, VRFY, QUIT), as are its syntax errors
// (501 "Was expecting RCPT arg syntax of TO:<address>"). Those plain
// words are docs/go-smtp-replies.patch's, carried in third_party/go-smtp
// until go-smtp releases them; TestReplyTranscript pins them all.
var replyAccepted = &gosmtp.SMTPError{
	Code:         250,
	EnhancedCode: gosmtp.EnhancedCode{2, 0, 0},
	Message:      "OK: message stored, texts queued",
}

func (t *trackedSession) Reset() {
	t.Session.Reset()
	t.s.conns.setBusy(t.conn, false)
}

// refusalReason names an SMTP refusal for the metrics.
func refusalReason(err error) string {
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) {
		return "other"
	}
	e := se.EnhancedCode
	switch {
	case se.Code == 421:
		return "shutdown"
	case se.Code == 530 || se.Code == 535:
		return "auth"
	case e == gosmtp.EnhancedCode{5, 1, 1}:
		return "recipient"
	case se.Code == 554 && e == gosmtp.EnhancedCode{5, 7, 1}:
		return "malware" // DATA's only 554 5.7.1 (scan.go)
	case e == gosmtp.EnhancedCode{4, 7, 1}:
		return "unscanned"
	case se.Code == 552 || e == gosmtp.EnhancedCode{5, 3, 4}:
		return "too_large"
	case e[0] == 5 && e[1] == 7:
		return "policy"
	case e[0] == 5 && e[1] == 6:
		return "invalid"
	case e[0] == 5 && e[1] == 5:
		return "syntax"
	case e == gosmtp.EnhancedCode{4, 5, 3}:
		return "limit"
	case se.Code/100 == 4:
		return "temporary"
	}
	return "other"
}
