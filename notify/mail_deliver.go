package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// errNoStartTLS is what a relay without STARTTLS gets when TLS is required:
// temporary, so the email waits for the relay to be fixed.
var errNoStartTLS = errors.New("mail: relay does not offer STARTTLS")

// relay hands msg to the relay in one SMTP session.
//
// go-smtp v0.25 has no exported STARTTLS on a Client, so the session reads
// the relay's EHLO first, on a plain connection. When STARTTLS is offered,
// that connection is closed after QUIT and a second one does STARTTLS
// before anything else (smtp.NewClientStartTLS, which fails rather than
// fall back to plain text); when it is not, the email is refused with
// errNoStartTLS if TLS is required, and otherwise sent on the first
// connection. This costs one extra connection per email, which the volume
// of replies and resets affords, and needs neither a guess at go-smtp's
// error texts nor any path on which a required TLS could be skipped.
//
// The connections are dialled with ctx, and closed when ctx is done.
func (m *Mailer) relay(ctx context.Context, log *slog.Logger, msg *outgoing) error {
	c, err := m.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	if m.c.Username != "" {
		if _, ok := c.TLSConnectionState(); !ok {
			return fmt.Errorf("%w: not sending the password in plain text", errNoStartTLS)
		}
		if err := c.Auth(sasl.NewPlainClient("", m.c.Username, m.c.Password)); err != nil {
			// A wrong password is the operator's to fix: the email waits.
			return relayError("AUTH", err, false)
		}
	}
	var opts *smtp.MailOptions
	if !isASCII(msg.to) {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return &PermanentError{Reason: "mail: relay does not accept internationalized addresses (SMTPUTF8)"}
		}
		opts = &smtp.MailOptions{UTF8: true}
	}
	// A refused sender is a configuration error too: temporary.
	if err := c.Mail(m.c.From, opts); err != nil {
		return relayError("MAIL FROM", err, false)
	}
	if err := c.Rcpt(msg.to, nil); err != nil {
		return relayError("RCPT TO", err, true)
	}
	w, err := c.Data()
	if err != nil {
		return relayError("DATA", err, true)
	}
	// The message is written straight into the DATA stream as it is
	// built. If building fails half-way, the deferred Close drops the
	// connection without the final ".", and the relay discards the start.
	if err := msg.write(w); err != nil {
		return fmt.Errorf("mail: write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return relayError("end of DATA", err, true)
	}
	// Accepted: a failed QUIT changes nothing.
	if err := c.Quit(); err != nil {
		log.Debug("relay: quit", "err", err)
	}
	return nil
}

// connect opens an SMTP session with the relay, under TLS unless the relay
// offers none and TLS is not required (see relay).
func (m *Mailer) connect(ctx context.Context) (*smtp.Client, error) {
	c, err := m.dial(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.Hello(m.hello); err != nil {
		c.Close()
		return nil, relayError("EHLO", err, false)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		if m.c.RequireTLS {
			c.Quit()
			c.Close()
			return nil, errNoStartTLS
		}
		return c, nil
	}
	c.Quit()
	c.Close()

	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.c.TLSConfig != nil {
		cfg = m.c.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(m.c.Relay)
	}
	conn, err := m.dialConn(ctx)
	if err != nil {
		return nil, err
	}
	// NewClientStartTLS says EHLO as "localhost" before STARTTLS; Hello
	// after it says our name, and runs the TLS handshake.
	c, err = smtp.NewClientStartTLS(conn, cfg)
	if err != nil {
		return nil, relayError("STARTTLS", err, false)
	}
	m.setTimeouts(c)
	if err := c.Hello(m.hello); err != nil {
		c.Close()
		return nil, relayError("STARTTLS", err, false)
	}
	return c, nil
}

// dial connects to the relay and wraps the connection in a Client.
func (m *Mailer) dial(ctx context.Context) (*smtp.Client, error) {
	conn, err := m.dialConn(ctx)
	if err != nil {
		return nil, err
	}
	c := smtp.NewClient(conn)
	m.setTimeouts(c)
	return c, nil
}

func (m *Mailer) setTimeouts(c *smtp.Client) {
	c.CommandTimeout = m.c.Timeout
	c.SubmissionTimeout = m.c.Timeout
}

// dialConn connects to the relay. The connection is closed when ctx is
// done, which cuts short whatever step the session is at.
func (m *Mailer) dialConn(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: m.c.Timeout}
	conn, err := d.DialContext(ctx, "tcp", m.c.Relay)
	if err != nil {
		return nil, fmt.Errorf("mail: relay: %w", err)
	}
	sc := &stepConn{Conn: conn, timeout: m.c.Timeout}
	sc.stop = context.AfterFunc(ctx, func() { conn.Close() })
	return sc, nil
}

// stepConn bounds each read and write with the step timeout. go-smtp puts
// deadlines on its commands' replies, but of its own length (5 minutes in
// smtp.NewClientStartTLS, before we can set any) and none on the message
// body: without this, a relay that stopped reading would hold DATA
// forever.
type stepConn struct {
	net.Conn
	timeout time.Duration
	stop    func() bool
}

func (c *stepConn) Read(b []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *stepConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

func (c *stepConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// relayError makes err, from the SMTP step named, an error for the
// worker. A 5xx reply is permanent when permanent5xx is set (the relay
// refused this recipient or this message); everything else is worth
// another try. The relay's own text is kept: it says what to fix.
func relayError(step string, err error, permanent5xx bool) error {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return fmt.Errorf("mail: relay: %s: %w", step, err)
	}
	reason := fmt.Sprintf("mail: relay refused %s: %d", step, se.Code)
	if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
		reason += fmt.Sprintf(" %d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	}
	reason += " " + se.Message
	if permanent5xx && se.Code >= 500 && se.Code < 600 {
		return &PermanentError{Reason: reason}
	}
	return errors.New(reason)
}

// redactError replaces addr in err's text with its masked form: relays
// like to quote the recipient ("550 5.1.1 <a@b>: no such user"), and the
// text goes to the log and the outbox. It keeps err permanent or not.
func redactError(err error, addr string) error {
	re := regexp.MustCompile(`(?i)` + regexp.QuoteMeta(addr))
	text := err.Error()
	if !re.MatchString(text) {
		return err
	}
	text = re.ReplaceAllLiteralString(text, maskAddress(addr))
	if IsPermanent(err) {
		return &PermanentError{Reason: text}
	}
	return errors.New(text)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
