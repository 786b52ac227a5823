// Package smtp accepts mail for the gateway: the submission listener where
// clinicians' mail programs authenticate, the recipient rules
// (<phone>@domain and nothing else), and the streaming MIME walk that hands
// each body and attachment to the store as it arrives.
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
	"log/slog"
	"net"
	"net/netip"
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

// Server is a submission listener.
type Server struct {
	cfg      Config
	db       *store.DB
	logger   *slog.Logger
	srv      *gosmtp.Server
	throttle *authThrottle
	limits   mimeLimits
	now      func() time.Time
	sleep    func(context.Context, time.Duration)
}

// NewSubmission returns a submission server: AUTH required, the envelope
// sender must belong to the account, recipients must be phones.
func NewSubmission(cfg Config, db *store.DB, logger *slog.Logger) *Server {
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
		cfg:      cfg,
		db:       db,
		logger:   logger.With("component", "smtp", "listener", "submission"),
		throttle: newAuthThrottle(),
		limits:   defaultMIMELimits(),
		now:      time.Now,
		sleep:    sleepContext,
	}
	gs := gosmtp.NewServer(&backend{s: s})
	gs.Domain = cfg.Hostname
	gs.TLSConfig = cfg.TLS
	gs.AllowInsecureAuth = cfg.AllowInsecureAuth
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
	err := s.srv.Serve(l)
	if errors.Is(err, gosmtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for open sessions to end, until ctx is
// done; then it closes them.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	return err
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error { return s.srv.Close() }

type backend struct{ s *Server }

func (b *backend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	var addr netip.Addr
	if ap, err := netip.ParseAddrPort(c.Conn().RemoteAddr().String()); err == nil {
		addr = ap.Addr().Unmap()
	}
	return &session{s: b.s, conn: c, remote: addr}, nil
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

// errorID returns a short random id that ties a client's error reply to the
// log line with the details.
func errorID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
