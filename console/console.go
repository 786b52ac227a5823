// Package console serves the clinician's side of the gateway, on a web
// listener of its own (console.listen) so that an organization can keep
// it on its intranet: a sender account signs in with the address and
// password it uses for SMTP AUTH, and a second factor (TOTP, RFC 6238,
// with recovery codes) that it enrols here; then it sees what it sent
// (the Sent list, each recipient's state, updated while the page is open)
// and each message's page (what was sent, read back on demand, and every
// recipient's access history), reads the recipients' replies and answers
// them in the same conversation (reply.go, answer.go); it composes a
// message (compose.go),
// withdraws or deletes one (withdraw.go), exports as CSV (export.go). An
// admin account sees every sender's messages and the admin pages
// (admin.go); any other account only its own.
//
// It shares the portal's edge (internal/webedge: the client's address
// behind trusted proxies, the connection cap, timeouts, security headers)
// and its mechanisms: sessions kept in the store as token hashes with an
// idle and an absolute limit, lockouts counted in the store for every
// node, every POST behind http.CrossOriginProtection and a body limit.
// Pages are server-rendered and work without script; one small
// same-origin script refreshes the states on the Sent page every 15
// seconds.
package console

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/webedge"
	"github.com/securetextd/securetextd/store"
)

// Store is what the console needs of the store. *store.DB implements it.
// Errors are *securetextd.Error with the codes given; any other error is
// internal.
type Store interface {
	// AuthenticateSender checks an address and password: EUNAUTHORIZED
	// when either is wrong.
	AuthenticateSender(ctx context.Context, address, password string) (*securetextd.Sender, error)
	// Account returns an account, or ENOTFOUND.
	SenderAccount(ctx context.Context, address string) (*securetextd.SenderAccount, error)

	CreateConsoleSession(ctx context.Context, address string, level int) (string, error)
	ConsoleSession(ctx context.Context, token string, idle, absolute time.Duration) (*securetextd.ConsoleSession, error)
	DeleteConsoleSession(ctx context.Context, token string) error

	// EnrollTOTP sets an account's TOTP secret and recovery codes, and
	// ends its sessions.
	EnrollTOTP(ctx context.Context, address, secret string, step int64, codes []string) error
	// TOTPSecret returns the secret and the last step accepted, or
	// ENOTFOUND.
	TOTPSecret(ctx context.Context, address string) (string, int64, error)
	// UseTOTPStep records an accepted step: EUNAUTHORIZED when it is not
	// later than the last one (a replay).
	UseTOTPStep(ctx context.Context, address string, step int64) error
	// UseRecoveryCode uses a recovery code once: EUNAUTHORIZED when it is
	// not one.
	UseRecoveryCode(ctx context.Context, address, code string) (int, error)

	// SentPage lists and pages what was sent (store/sent.go).
	SentPage(ctx context.Context, q securetextd.SentQuery) ([]securetextd.SentMessage, bool, error)
	// Message returns a message with its parts described, or ENOTFOUND.
	Message(ctx context.Context, id int64) (*securetextd.Message, error)
	// OpenPart reads a part of a message, decrypting the ranges read.
	OpenPart(ctx context.Context, messageID int64, index int) (io.ReaderAt, int64, error)
	// NewDraft starts a message whose parts are sealed as they are
	// written (store/draft.go); the compose form streams into it.
	NewDraft() *store.Draft
	// SetDateOfBirth keeps the date the portal asks of a phone's
	// recipient.
	SetDateOfBirth(ctx context.Context, phone securetextd.Phone, dob string) error
	// RevokeMessage withdraws every conversation a message went to.
	RevokeMessage(ctx context.Context, id int64) ([]int64, error)
	// DeleteConversation withdraws a conversation and purges its content
	// now, or when its legal hold is removed (Deferred).
	DeleteConversation(ctx context.Context, id int64, by string) (securetextd.DeleteResult, error)
	// The admin pages' (admin.go).
	CreateSender(ctx context.Context, address, password string) error
	DeleteSender(ctx context.Context, address string) error
	ListSenders(ctx context.Context) ([]securetextd.Sender, error)
	SetAdmin(ctx context.Context, address string, on bool) error
	CreateAPIKey(ctx context.Context, sender, name string) (string, *securetextd.APIKey, error)
	ListAPIKeys(ctx context.Context, sender string) ([]securetextd.APIKey, error)
	RevokeAPIKey(ctx context.Context, id int64) error
	VerifyAudit(ctx context.Context) (*store.AuditCheck, error)
	// Audit appends an event to the audit trail.
	Audit(ctx context.Context, ev securetextd.AuditEvent) error
	RecordSenderChange(ctx context.Context, what, address string) error
	// The recipients' replies (reply.go).
	ReplyStore

	StrikesLocked(ctx context.Context, kind string, keys ...string) (time.Duration, error)
	Strike(ctx context.Context, kind string, r store.StrikeRule, keys ...string) (time.Duration, int, error)
	ForgetStrikes(ctx context.Context, kind string, keys ...string) error
}

// Config is what the console shows and how it guards sign-in. Zero
// durations and limits take the portal's defaults.
type Config struct {
	// Org names the organization on every page and in the authenticator
	// app (the TOTP issuer).
	Org string
	// Secure is true when the console is reached over HTTPS: the cookie
	// is then __Host- and Secure, and HSTS is sent.
	Secure bool
	// IdleTimeout and SessionLifetime end a session (defaults 15m, 12h).
	IdleTimeout     time.Duration
	SessionLifetime time.Duration
	// LockoutFailures wrong passwords or codes within LockoutWindow, for
	// one account or from one client address, pause sign-in (defaults 5
	// and 15m).
	LockoutFailures int
	LockoutWindow   time.Duration
	// RequireTOTP says whose sign-in needs TOTP: RequireAdmins (the
	// default), RequireAll or RequireNone. An account it covers that has
	// none enrols at its next sign-in, before it sees anything.
	RequireTOTP string
	// ParsePhone reads the phone number typed into the Sent filter.
	// Required.
	ParsePhone func(string) (securetextd.Phone, error)
	// MaxMessageBytes bounds a composed message with its files
	// (smtp.max_message_bytes); default 100 MiB.
	MaxMessageBytes int64
	// MaxRecipients bounds the phone numbers of a composed message;
	// default 50, as SMTP's.
	MaxRecipients int
	// MessageIDHost is the host part of a composed message's Message-ID;
	// default "localhost".
	MessageIDHost string
	// Limits are the store's limits on texts (limits.*), shown on the
	// admin page.
	Limits Limits
	// Location is the time zone times are shown in; default time.Local.
	Location *time.Location
	// Now is the clock of TOTP codes; default time.Now.
	Now func() time.Time
}

// Limits are the limits on texts as configured; 0 is none.
type Limits struct {
	DailyPerSender, PerPhonePerHour, DailyOrg int
}

// Values of Config.RequireTOTP (console.require_totp).
const (
	RequireAdmins = "admins"
	RequireAll    = "all"
	RequireNone   = "none"
)

// Defaults of Config.
const (
	DefaultIdleTimeout   = 15 * time.Minute
	DefaultLifetime      = 12 * time.Hour
	DefaultLockout       = 5
	DefaultLockoutWindow = 15 * time.Minute
)

// withDefaults fills in the defaults and checks the rest, reporting every
// bad field at once.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Org == "" {
		errs = append(errs, errors.New("console: Org is empty"))
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.SessionLifetime == 0 {
		c.SessionLifetime = DefaultLifetime
	}
	if c.LockoutFailures == 0 {
		c.LockoutFailures = DefaultLockout
	}
	if c.LockoutWindow == 0 {
		c.LockoutWindow = DefaultLockoutWindow
	}
	if c.IdleTimeout < 0 || c.SessionLifetime < 0 || c.LockoutFailures < 0 || c.LockoutWindow < 0 {
		errs = append(errs, errors.New("console: durations and limits must not be negative"))
	}
	switch c.RequireTOTP {
	case "":
		c.RequireTOTP = RequireAdmins
	case RequireAdmins, RequireAll, RequireNone:
	default:
		errs = append(errs, fmt.Errorf("console: require_totp %q is not admins, all or none", c.RequireTOTP))
	}
	if c.ParsePhone == nil {
		errs = append(errs, errors.New("console: ParsePhone is required"))
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 100 << 20
	}
	if c.MaxRecipients == 0 {
		c.MaxRecipients = 50
	}
	if c.MessageIDHost == "" {
		c.MessageIDHost = "localhost"
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, errors.Join(errs...)
}

// Server serves the console's routes. It is an http.Handler.
type Server struct {
	cfg     Config
	store   Store
	logger  *slog.Logger
	pages   map[string]*template.Template
	handler http.Handler
}

// New checks cfg, parses the templates and lists every route.
func New(cfg Config, st Store, logger *slog.Logger) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	pages, err := parsePages(cfg.Location)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, store: st, logger: logger.With("component", "console"), pages: pages}
	mux := http.NewServeMux()
	s.routes(mux)
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(s.handleCrossOrigin))
	// The client's address is resolved by whoever serves the console
	// (with console.trusted_proxies, in cmd/securetextd), or here from
	// the peer.
	s.handler = webedge.ResolveClient(nil, webedge.Headers(cfg.Secure, pageCSP, csrf.Handler(mux)))
	return s, nil
}

// routes lists every route of the console, in one place. GET routes never
// change state; every POST is behind the cross-origin check (in New) and
// a body limit.
func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.handleHome)
	mux.HandleFunc("GET /static/console.css", s.handleStatic)
	mux.HandleFunc("GET /static/console.js", s.handleStatic)

	mux.HandleFunc("GET /login", s.handleLoginForm)
	mux.HandleFunc("POST /login", s.form(s.handleLogin))
	mux.HandleFunc("GET /login/code", s.handleCodeForm)
	mux.HandleFunc("POST /login/code", s.form(s.handleCode))
	mux.HandleFunc("POST /logout", s.form(s.handleLogout))

	mux.HandleFunc("GET /totp", s.handleEnrolForm)
	mux.HandleFunc("POST /totp", s.form(s.handleEnrol))

	mux.HandleFunc("GET /sent", s.handleSent)
	mux.HandleFunc("GET /m/{id}", s.handleMessage)
	mux.HandleFunc("GET /m/{id}/p/{idx}", s.handlePart)
	s.replyRoutes(mux)

	mux.HandleFunc("GET /compose", s.handleComposeForm)
	mux.HandleFunc("POST /compose", s.handleCompose) // multipart, bounded there

	mux.HandleFunc("GET /m/{id}/withdraw", s.handleWithdrawForm)
	mux.HandleFunc("POST /m/{id}/withdraw", s.form(s.handleWithdraw))
	mux.HandleFunc("GET /m/{id}/delete", s.handleDeleteForm)
	mux.HandleFunc("POST /m/{id}/delete", s.form(s.handleDelete))

	mux.HandleFunc("GET /sent.csv", s.handleSentCSV)
	mux.HandleFunc("GET /m/{id}/history.csv", s.handleHistoryCSV)

	s.adminRoutes(mux) // admin.go

	mux.HandleFunc("/", s.handleNotFound)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// handleHome sends a browser to its Sent list, or to sign in.
func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/sent", http.StatusSeeOther)
}
