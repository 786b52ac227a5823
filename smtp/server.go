// Package smtp accepts mail for the gateway: the submission listener where
// clinicians' mail programs authenticate, the relay listener where an
// organization's own mail server hands over mail that must pass DKIM, SPF
// and DMARC alignment checks, the recipient rules (<phone>@domain and
// nothing else), and the streaming MIME walk that hands each body and
// attachment to the store as it arrives.
//
// It speaks SMTP through github.com/emersion/go-smtp and never writes SQL or
// sends a text itself: a message is handed to the store, which commits it
// with the outbox job that will text the recipient, and only then does the
// client get its 250.
package smtp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// Config holds what a listener needs to know; cmd/securetextd fills it
// from the configuration file.
type Config struct {
	// Hostname is announced in the greeting and EHLO reply.
	Hostname string
	// Domain is the recipient domain: mail to <phone>@Domain is accepted.
	Domain string
	// Phones decides which numbers may be texted.
	Phones securetextd.PhoneRules
	// EmailRecipients lets a message name email addresses beside
	// <phone>@Domain (email_recipients.enabled): each gets a notice with
	// the link, never the content. On the relay such a message, like any,
	// is stored only once it passes the relay's policy. Without it, an
	// address of another domain is refused: 550 5.7.1 Relay access denied.
	EmailRecipients bool
	// MaxMessageBytes is announced with SIZE and enforced while reading.
	MaxMessageBytes int64
	// MaxRecipients bounds RCPT TO commands per message.
	MaxRecipients int
	// TLS enables STARTTLS. AUTH is offered only after it, unless
	// AllowInsecureAuth is set (loopback listeners only; checked by the
	// caller).
	TLS               *tls.Config
	AllowInsecureAuth bool
	// ReadTimeout and WriteTimeout bound each read and write on the
	// connection.
	ReadTimeout, WriteTimeout time.Duration
	// IdleTimeout bounds each wait for a command on a connection that has
	// not logged in (submission) or is not in a transaction (relay):
	// past it the client gets 421 4.4.2 and is let go. ReadTimeout applies
	// once it has. One minute when zero.
	IdleTimeout time.Duration
	// MaxConnections bounds the connections open at once on the listener,
	// and MaxConnectionsPerIP those of one client (an IPv4 address or an
	// IPv6 /64; see clientKey). A connection past either is answered
	// 421 4.7.0 and closed. Zero means no limit.
	MaxConnections, MaxConnectionsPerIP int
	// Metrics, if not nil, counts sessions and messages (ops.go).
	Metrics Metrics
}

// maxLineLength bounds every line a client sends, commands and message
// data alike (go-smtp applies one limit to both). RFC 5321 allows 1000
// bytes, but real mail carries longer lines (HTML and base64 written
// without breaks; the shared corpus has 24 KB ones), so the bound is
// generous: it caps the memory a command line can take, not the mail.
const maxLineLength = 64 << 10

// errLineTooLong is the reply for data with a line over maxLineLength.
var errLineTooLong = &gosmtp.SMTPError{
	Code:         552,
	EnhancedCode: gosmtp.EnhancedCode{5, 5, 6},
	Message:      fmt.Sprintf("Message refused: a line is longer than %d bytes (RFC 5321 allows 1000)", maxLineLength),
}

// Server is an SMTP listener: submission (NewSubmission) or relay
// (NewRelay). Both share the recipient rules, the MIME walk and the
// translation of errors into replies; they differ in how the sender is
// checked.
type Server struct {
	cfg      Config
	db       *store.DB
	logger   *slog.Logger
	srv      *gosmtp.Server
	throttle *authThrottle
	phones   *phoneMemo // cfg.Phones.Parse, remembering the numbers accepted
	// checkPassword is db.AuthenticateSender; tests count the checks.
	checkPassword func(ctx context.Context, username, password string) (*securetextd.Sender, error)
	// remembered is db.RememberedSender: a login checked lately, which
	// the throttle's caps do not hold back (session.authenticate).
	remembered func(ctx context.Context, username, password string) (*securetextd.Sender, error)
	limits     mimeLimits
	now        func() time.Time
	sleep      func(context.Context, time.Duration)
	relay      *relay      // nil on a submission listener
	conns      connTracker // open connections, for a graceful shutdown (ops.go)
}

// NewSubmission returns a submission server: AUTH required, the envelope
// sender must belong to the account, recipients must be phones.
func NewSubmission(cfg Config, db *store.DB, logger *slog.Logger) *Server {
	return newServer(cfg, db, logger, "submission", nil)
}

func newServer(cfg Config, db *store.DB, logger *slog.Logger, listener string, r *relay) *Server {
	if cfg.MaxRecipients == 0 {
		cfg.MaxRecipients = 50
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 5 * time.Minute
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = time.Minute
	}
	s := &Server{
		cfg:           cfg,
		db:            db,
		logger:        logger.With("component", "smtp", "listener", listener),
		throttle:      newAuthThrottle(db),
		phones:        newPhoneMemo(cfg.Phones),
		checkPassword: db.AuthenticateSender,
		remembered:    db.RememberedSender,
		limits:        defaultMIMELimits(),
		now:           time.Now,
		sleep:         sleepContext,
		relay:         r,
	}
	gs := gosmtp.NewServer(&backend{s: s})
	gs.Domain = cfg.Hostname
	gs.TLSConfig = cfg.TLS
	gs.AllowInsecureAuth = cfg.AllowInsecureAuth && r == nil
	gs.MaxMessageBytes = cfg.MaxMessageBytes
	gs.MaxRecipients = cfg.MaxRecipients
	gs.MaxLineLength = maxLineLength
	gs.ReadTimeout = cfg.ReadTimeout
	gs.WriteTimeout = cfg.WriteTimeout
	gs.ErrorLog = slogPrinter{s.logger}
	s.srv = gs
	return s
}

// Serve accepts connections on l until Close or Shutdown.
func (s *Server) Serve(l net.Listener) error {
	if s.relay != nil {
		l = &trustedListener{Listener: l, s: s}
	}
	l = &trackedListener{Listener: l, s: s}
	err := s.srv.Serve(l)
	if errors.Is(err, gosmtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for open sessions to end, until ctx is
// done; then it closes them. Meanwhile idle connections are closed (421),
// a new MAIL FROM is refused with 421, and transactions in progress may
// finish; a DATA cut short by the deadline is not acknowledged, and one
// whose commit is under way is let finish before Shutdown returns.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.relay != nil {
		defer s.relay.refusals.close()
	}
	stopDrain := s.conns.drain()
	defer stopDrain()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
		s.conns.waitData(storeTimeout)
	}
	return err
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	if s.relay != nil {
		defer s.relay.refusals.close()
	}
	return s.srv.Close()
}

type backend struct{ s *Server }

func (b *backend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	addr := remoteAddr(c.Conn())
	if b.s.relay != nil {
		sess, err := b.s.newRelaySession(c, addr)
		if err == nil {
			sess = b.s.audited(sess, addr) // refusals go to the audit trail
		}
		return b.s.track(c, sess, err)
	}
	return b.s.track(c, b.s.audited(&session{s: b.s, conn: c, remote: addr}, addr), nil)
}

// remoteAddr returns the client's IP address, IPv4 in its 4-byte form, or
// the zero Addr when the connection is not IP.
func remoteAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// slogPrinter sends go-smtp's own log lines (accept errors, panics) to slog.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) { p.l.Warn(fmt.Sprintf(format, v...)) }
func (p slogPrinter) Println(v ...any)               { p.l.Warn(fmt.Sprint(v...)) }

func sleepContext(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// messageIDLocal returns the random left part of a Message-ID the gateway
// makes for a message that came without one: 24 hexadecimal digits.
func messageIDLocal() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// parseRecipient applies the recipient rules both listeners share: the
// address must be <phone>@Domain, or <phone>+<conversation>@Domain, the
// Reply-To of the emails that carry a recipient's replies, whose answer
// joins that conversation. The phone must pass the phone rules. Whether the
// conversation belongs to the sender is for the caller to check.
func (s *Server) parseRecipient(to string) (store.Target, error) {
	at := strings.LastIndexByte(to, '@')
	if at > 0 && s.cfg.EmailRecipients && !strings.EqualFold(to[at+1:], s.cfg.Domain) {
		return s.emailRecipient(to)
	}
	if at < 0 || !strings.EqualFold(to[at+1:], s.cfg.Domain) {
		return store.Target{}, &gosmtp.SMTPError{
			Code:         550,
			EnhancedCode: gosmtp.EnhancedCode{5, 7, 1},
			Message:      fmt.Sprintf("Relay access denied: this gateway only accepts mail to <phone>@%s", s.cfg.Domain),
		}
	}
	local := strings.Trim(to[:at], `"`)
	var conversation int64
	if i := strings.LastIndexByte(local, '+'); i > 0 {
		id, err := strconv.ParseInt(local[i+1:], 10, 64)
		if err != nil || id <= 0 {
			return store.Target{}, &gosmtp.SMTPError{
				Code:         550,
				EnhancedCode: gosmtp.EnhancedCode{5, 1, 1},
				Message:      fmt.Sprintf("Recipient <%s> refused: %q is not a conversation reference", quoteAddress(to), local[i+1:]),
			}
		}
		local, conversation = local[:i], id
		if s.cfg.EmailRecipients && strings.EqualFold(local, emailConversationLocal) {
			// The Reply-To of a reply from an email recipient: the
			// conversation names its recipient (checkConversation).
			return store.Target{ConversationID: conversation}, nil
		}
	}
	if why := s.notAddressPhone(local); why != "" {
		return store.Target{}, &gosmtp.SMTPError{
			Code:         550,
			EnhancedCode: gosmtp.EnhancedCode{5, 1, 1},
			Message:      fmt.Sprintf("Recipient <%s> refused: %s", quoteAddress(to), why),
		}
	}
	phone, err := s.phones.Parse(local)
	if err != nil {
		return store.Target{}, &gosmtp.SMTPError{
			Code:         550,
			EnhancedCode: gosmtp.EnhancedCode{5, 1, 1},
			Message:      fmt.Sprintf("Recipient <%s> refused: %s%s", quoteAddress(to), securetextd.ErrorMessage(err), s.droppedHint(local)),
		}
	}
	return store.Target{Phone: phone, ConversationID: conversation}, nil
}

// displayName returns the display name to show beside a checked From
// address, on both listeners: the name itself, or "" when it holds an
// address (an "@", or a look-alike of one), as in
// "ceo@bank.example" <dr.who@clinic.example>: the recipient would read an
// address that nobody checked.
func displayName(name string) string {
	if strings.ContainsAny(name, "@\uFF20\uFE6B") { // @, fullwidth @, small @
		return ""
	}
	return name
}

// maskedPhones returns the targets' phones as logs may show them.
func maskedPhones(targets []store.Target) []string {
	masked := make([]string, len(targets))
	for i, t := range targets {
		masked[i] = t.Phone.Masked()
	}
	return masked
}

// replyError is the one place where errors become SMTP replies. Replies the
// walk or the data reader chose pass through; domain errors map by code;
// anything else is internal: the client gets a temporary failure with an
// error id, and the log gets the details under that id.
func (s *Server) replyError(op string, client netip.Addr, err error) error {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	if errors.Is(err, gosmtp.ErrTooLongLine) {
		return errLineTooLong
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return err // the client went away; nobody reads the reply
	}
	if errors.Is(err, gosmtp.ErrDataReset) {
		// The client closed the connection, or ended the transaction
		// (RSET, a chunk cut short), inside BDAT: go-smtp has answered
		// it already and never reads this reply (trackedSession.Data
		// logs it).
		return err
	}
	msg := securetextd.ErrorMessage(err)
	switch securetextd.ErrorCode(err) {
	case securetextd.EMALWARE:
		return malwareReply(err, client, s.logger)
	case securetextd.EUNSCANNED:
		// The scanner is down or timed out: the sending server keeps
		// the message and tries again (scan.fail_open would have let it
		// through). The scanner's client logged why.
		s.logger.Warn("message not scanned", "op", op, "client", client.String())
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 7, 1},
			Message: "Message not accepted: it could not be checked for malware just now; please try again later"}
	case securetextd.EINVALID:
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 6, 0}, Message: "Message refused: " + msg}
	case securetextd.ETOOLARGE:
		return &gosmtp.SMTPError{Code: 552, EnhancedCode: gosmtp.EnhancedCode{5, 3, 4}, Message: "Message too large: " + msg}
	case securetextd.ELIMIT:
		return &gosmtp.SMTPError{Code: 452, EnhancedCode: gosmtp.EnhancedCode{4, 5, 3}, Message: msg}
	case securetextd.EUNAVAILABLE:
		// The database is down or failing over: the sender keeps the
		// message and tries again, as after any 4xx.
		s.logger.Warn("unavailable", "op", op, "err", err, "client", client.String())
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: msg}
	case securetextd.ESTORAGE:
		// RFC 5321's "insufficient system storage", RFC 3463's "mail
		// system full": the sending server keeps the message and retries.
		s.logger.Error("storage full", "op", op, "err", err, "client", client.String())
		return &gosmtp.SMTPError{Code: 452, EnhancedCode: gosmtp.EnhancedCode{4, 3, 1}, Message: "Insufficient system storage: " + msg}
	}
	return s.internalError(op, client, err)
}

func (s *Server) internalError(op string, client netip.Addr, err error) error {
	id := securetextd.NewErrorID()
	s.logger.Error("internal error", "op", op, "error_id", id, "err", err, "client", client.String())
	return &gosmtp.SMTPError{
		Code:         451,
		EnhancedCode: gosmtp.EnhancedCode{4, 3, 0},
		Message:      "Temporary failure on our side, please try again later (error id " + id + ")",
	}
}
