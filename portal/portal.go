// Package portal serves the recipient's side of the gateway: the page a
// text message's link opens, the password that guards it, the conversation
// with its files, the reply form, the inbox and the password reset. It
// renders server-side HTML with embedded templates and one small
// stylesheet, needs no JavaScript, and sets its security headers in one
// middleware.
//
// A link is safe to preview: SMS apps, mail scanners and chat previews fetch
// links, so GET never changes state and never shows content. Unknown,
// altered and foreign tokens, conversations and parts all get the very same
// 404 page, so a guesser learns nothing. Every POST passes
// [http.CrossOriginProtection] and a body limit.
//
// With a store that runs the information lifecycle ([Lifecycle]), a
// conversation whose access has ended says so in plain words (expired, or
// withdrawn by the sender) on its link and its pages; every access is an
// audit event; the first view of a message sends its read receipt; the
// sender's revocation link (/revoke/{token}) withdraws a conversation; and
// Vonage's delivery receipts are taken at /hooks/vonage/dlr.
package portal

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/microcosm-cc/bluemonday"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/locale"
	"github.com/securetextd/securetextd/store"
)

// Store is what the portal needs of the store. *store.DB implements it.
// Errors are *securetextd.Error with the codes given; any other error is
// internal.
type Store interface {
	// ConversationByToken returns the conversation a link token opens, or
	// ENOTFOUND for unknown, expired and garbled tokens alike.
	ConversationByToken(ctx context.Context, token string) (*securetextd.Conversation, error)
	// Conversation returns conversation id, or ENOTFOUND.
	Conversation(ctx context.Context, id int64) (*securetextd.Conversation, error)
	// ConversationMessages returns the messages of a conversation, oldest
	// first, with their parts described (no content).
	ConversationMessages(ctx context.Context, conversationID int64) ([]*securetextd.Message, error)
	// OpenPart returns a reader of part index of a message, decrypting
	// only the ranges read, and its size.
	OpenPart(ctx context.Context, messageID int64, index int) (io.ReaderAt, int64, error)
	// Inbox lists the open conversations of a phone number.
	Inbox(ctx context.Context, phone securetextd.Phone) ([]securetextd.InboxEntry, error)
	// Recipient returns the account of a phone number, or ENOTFOUND when
	// no password was set for it yet.
	Recipient(ctx context.Context, phone securetextd.Phone) (*securetextd.Recipient, error)
	// CreateRecipient sets the first password of a phone number, or fails
	// with ECONFLICT when one was set meanwhile.
	CreateRecipient(ctx context.Context, phone securetextd.Phone, password, recoveryEmail string) error
	// AuthenticateRecipient checks a password: EUNAUTHORIZED when wrong.
	AuthenticateRecipient(ctx context.Context, phone securetextd.Phone, password string) error
	// CreateSession starts a session for a phone number and returns its
	// token, which only the browser keeps.
	CreateSession(ctx context.Context, phone securetextd.Phone) (token string, err error)
	// Session returns the live session of a token and marks it active, or
	// ENOTFOUND when it is unknown, idle longer than idle, or older than
	// absolute.
	Session(ctx context.Context, token string, idle, absolute time.Duration) (*securetextd.Session, error)
	// DeleteSession ends a session.
	DeleteSession(ctx context.Context, token string) error
	// RequestPasswordReset emails a reset link to the recovery address of
	// a phone number (through the outbox). It does nothing, and returns
	// nil, for a number without an account.
	RequestPasswordReset(ctx context.Context, phone securetextd.Phone, validFor time.Duration) error
	// CheckResetToken returns the phone number of a reset token, or
	// ENOTFOUND when the token is unknown, used or expired.
	CheckResetToken(ctx context.Context, token string) (securetextd.Phone, error)
	// ResetPassword uses a reset token once to set a new password.
	ResetPassword(ctx context.Context, token, newPassword string) (securetextd.Phone, error)
	// SaveReply stores a reply in a conversation, reading each part's
	// reader to its end. When a reader fails, nothing is stored and its
	// error is returned wrapped.
	SaveReply(ctx context.Context, conversationID int64, parts iter.Seq2[securetextd.Part, io.Reader]) (*securetextd.Message, error)

	// The limits (limits.go), counted in the store so that every node
	// shares them. Keys name what is counted: "phone:+12125550100",
	// "addr:192.0.2.1".

	// StrikesLocked returns how long any of keys of kind stays locked, 0
	// when none is. It only reads.
	StrikesLocked(ctx context.Context, kind string, keys ...string) (time.Duration, error)
	// Strike counts a strike against each of keys of kind under r, and
	// returns how long they are now locked (0: not) and how many strikes
	// are left before the first of them locks.
	Strike(ctx context.Context, kind string, r store.StrikeRule, keys ...string) (time.Duration, int, error)
	// StrikeUnlessLocked counts a strike against each of keys and reports
	// true; while any of them is locked it counts nothing and reports
	// false.
	StrikeUnlessLocked(ctx context.Context, kind string, r store.StrikeRule, keys ...string) (bool, error)
	// ForgetStrikes clears keys of kind, after a success.
	ForgetStrikes(ctx context.Context, kind string, keys ...string) error
}

// Config is what the portal shows and how it is reached. Zero durations
// and limits take the defaults given.
type Config struct {
	// Org is who is writing to the recipient: on every page.
	Org string
	// Color is the brand colour, "#RRGGBB"; default "#1d4e89".
	Color string
	// Logo is an optional image shown on every page: PNG, JPEG, GIF or
	// WebP (sniffed; SVG is refused, as it can carry script), at most
	// 256 KiB.
	Logo []byte
	// Secure is true when the portal is reached over HTTPS: the session
	// cookie is then __Host- and Secure, and HSTS is sent. False only for
	// plain HTTP on loopback, in development.
	Secure bool
	// IdleTimeout ends a session after this long without a request
	// (default 15m); SessionLifetime ends it anyway (default 12h).
	IdleTimeout     time.Duration
	SessionLifetime time.Duration
	// MaxReplyBytes bounds a reply, text and files together (default
	// 25 MiB). It is enforced while the upload streams in.
	MaxReplyBytes int64
	// LockoutFailures wrong passwords within LockoutWindow, for one phone
	// number or from one client address, pause logins until the window
	// has passed (defaults 5 and 15m). Reset requests are limited alike.
	// The store counts them, for every node that shares it (limits.go).
	LockoutFailures int
	LockoutWindow   time.Duration
	// ResetValidFor is how long a password-reset link works (default 30m).
	ResetValidFor time.Duration
	// ParsePhone reads the phone number typed into the reset form, as
	// securetextd.PhoneRules.Parse does. Required.
	ParsePhone func(string) (securetextd.Phone, error)
	// AccessExpiry is how long a conversation stays open after its
	// latest activity, as the store's lifecycle policy has it: the
	// conversation page says when it closes ("closes in 3 days"). Zero:
	// it says nothing.
	AccessExpiry time.Duration
	// Location is the portal's own time zone: times are shown in the
	// zone of the recipient's phone number, and in this one when the
	// number names none or where it is among the number's several (see
	// zone.go). Default time.Local.
	Location *time.Location
	// Metrics, if not nil, counts logins and lockouts (metrics.go).
	Metrics Metrics
	// VonageSignatureSecret checks the signature of Vonage's delivery
	// receipts at /hooks/vonage/dlr (sms.vonage.signature_secret), with
	// VonageSignatureMethod: "sha256" (HMAC, the default), "sha512",
	// "sha1", "md5", or the legacy "md5hash". Empty: receipts are taken
	// unsigned when Secure is false (development), refused when it is
	// true. See hooks.go.
	VonageSignatureSecret string
	VonageSignatureMethod string
	// SecondFactor is what a browser the account has not seen must give
	// before the password (factor.go): SecondFactorSMSCode, a code texted
	// (or, to a recipient reached by email, emailed) through Codes, or
	// SecondFactorNone ("" is none: a Server on its own asks for no code;
	// the daemon's default is "sms-code").
	SecondFactor string
	// Codes sends and checks the one-time codes of "sms-code".
	Codes CodeSender
	// RememberDevice is how long a browser that gave a code is not asked
	// again (default 30 days).
	RememberDevice time.Duration
	// DefaultLanguage is the language of a browser that asks for none the
	// catalogue has (portal.default_language): a tag of the catalogue,
	// default "en".
	DefaultLanguage string
}

// Defaults of Config.
const (
	DefaultColor         = "#1d4e89"
	DefaultIdleTimeout   = 15 * time.Minute
	DefaultLifetime      = 12 * time.Hour
	DefaultMaxReplyBytes = 25 << 20
	DefaultLockout       = 5
	DefaultLockoutWindow = 15 * time.Minute
	DefaultResetValidFor = 30 * time.Minute
	// MaxLogoBytes bounds Config.Logo: it is fetched on every first page
	// view over a slow connection.
	MaxLogoBytes = 256 << 10
)

var colorRE = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// withDefaults fills in the defaults and checks the rest, reporting every
// bad field at once.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Org == "" {
		errs = append(errs, errors.New("portal: Org is empty: the recipient must be told who is writing"))
	}
	if c.Color == "" {
		c.Color = DefaultColor
	} else if !colorRE.MatchString(c.Color) {
		errs = append(errs, fmt.Errorf("portal: color %q is not of the form #RRGGBB", c.Color))
	}
	if len(c.Logo) > 0 {
		if len(c.Logo) > MaxLogoBytes {
			errs = append(errs, fmt.Errorf("portal: logo is %d bytes, over the %d allowed", len(c.Logo), MaxLogoBytes))
		} else if _, ok := rasterTypes[http.DetectContentType(c.Logo)]; !ok {
			errs = append(errs, errors.New("portal: logo is not a PNG, JPEG, GIF or WebP image"))
		}
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.SessionLifetime == 0 {
		c.SessionLifetime = DefaultLifetime
	}
	if c.MaxReplyBytes == 0 {
		c.MaxReplyBytes = DefaultMaxReplyBytes
	}
	if c.LockoutFailures == 0 {
		c.LockoutFailures = DefaultLockout
	}
	if c.LockoutWindow == 0 {
		c.LockoutWindow = DefaultLockoutWindow
	}
	if c.ResetValidFor == 0 {
		c.ResetValidFor = DefaultResetValidFor
	}
	if c.IdleTimeout < 0 || c.SessionLifetime < 0 || c.MaxReplyBytes < 0 ||
		c.LockoutFailures < 0 || c.LockoutWindow < 0 || c.ResetValidFor < 0 {
		errs = append(errs, errors.New("portal: durations and limits must not be negative"))
	}
	if c.ParsePhone == nil {
		errs = append(errs, errors.New("portal: ParsePhone is required"))
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	switch c.SecondFactor {
	case "", SecondFactorNone:
		c.SecondFactor = SecondFactorNone
	case SecondFactorSMSCode:
		if c.Codes == nil {
			errs = append(errs, errors.New("portal: second factor \"sms-code\" needs a code sender"))
		}
	default:
		errs = append(errs, fmt.Errorf("portal: unknown second factor %q", c.SecondFactor))
	}
	if c.RememberDevice == 0 {
		c.RememberDevice = DefaultRememberDevice
	} else if c.RememberDevice < 0 {
		errs = append(errs, errors.New("portal: durations and limits must not be negative"))
	}
	if c.VonageSignatureMethod == "" {
		c.VonageSignatureMethod = "sha256"
	} else if !ValidVonageSignatureMethod(c.VonageSignatureMethod) {
		errs = append(errs, fmt.Errorf("portal: unknown vonage signature method %q", c.VonageSignatureMethod))
	}
	if c.DefaultLanguage == "" {
		c.DefaultLanguage = locale.Source
	} else if cat, err := locale.Load(); err == nil && !cat.Has(c.DefaultLanguage) {
		errs = append(errs, fmt.Errorf("portal: default language %q has no catalogue", c.DefaultLanguage))
	}
	return c, errors.Join(errs...)
}

// Server serves the portal's routes. It is an http.Handler.
type Server struct {
	cfg     Config
	store   Store
	logger  *slog.Logger
	pages   map[string]map[string]*template.Template // by language, then name (template.go)
	policy  *bluemonday.Policy                       // sanitises HTML bodies
	brand   []byte                                   // /brand.css
	handler http.Handler

	life     Lifecycle // the store, when it runs the lifecycle (lifecycle.go)
	factors  Factors   // the store, when it keeps second factors (factor.go)
	accounts Accounts  // the store, when it keeps accounts (account.go)
	reads    *readLog  // the parts each session was recorded reading (ranges.go)
	cat      *locale.Catalogue

	routeLookup // which route serves a request, for metrics (ops.go)
}

// New checks cfg, parses the templates and lists every route.
func New(cfg Config, st Store, logger *slog.Logger) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cat, err := locale.Load()
	if err != nil {
		return nil, err
	}
	pages, err := parsePages(cat)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		store:  st,
		logger: logger.With("component", "portal"),
		pages:  pages,
		policy: newPolicy(),
		brand:  brandCSS(cfg.Color),
		cat:    cat,
	}
	s.life, _ = st.(Lifecycle)
	s.factors, _ = st.(Factors)
	if cfg.SecondFactor == SecondFactorSMSCode && s.factors == nil {
		return nil, errors.New("portal: second factor \"sms-code\" needs a store that remembers devices")
	}
	s.accounts, _ = st.(Accounts)
	s.reads = newReadLog()
	mux := http.NewServeMux()
	s.routes(mux)
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(s.handleCrossOrigin))
	// The client's address is resolved once, by whoever serves the portal
	// (with the trusted proxies: cmd/securetextd), or here from the peer.
	s.handler = ResolveClient(nil, s.headers(s.origin(csrf.Handler(mux))))
	return s, nil
}

// routes lists every route of the portal, in one place. GET routes never
// change state; every POST is behind the cross-origin check (in New) and a
// body limit.
func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.handleHome)
	mux.HandleFunc("GET /static/style.css", s.handleStyle)
	mux.HandleFunc("GET /static/{name}", s.handleScript)
	mux.HandleFunc("GET /brand.css", s.handleBrandCSS)
	mux.HandleFunc("GET /brand/logo", s.handleLogo)

	mux.HandleFunc("GET /m/{token}", s.handleLink)
	mux.HandleFunc("POST /m/{token}/setup", s.form(s.handleSetup))
	mux.HandleFunc("POST /m/{token}/login", s.form(s.handleLogin))
	mux.HandleFunc("POST /m/{token}/code", s.form(s.handleSendCode))
	mux.HandleFunc("POST /m/{token}/verify", s.form(s.handleVerifyCode))
	mux.HandleFunc("POST /logout", s.form(s.handleLogout))
	mux.HandleFunc("POST /language", s.form(s.handleLanguage))

	mux.HandleFunc("GET /inbox", s.handleInbox)
	mux.HandleFunc("GET /c/{id}", s.handleConversation)
	mux.HandleFunc("GET /c/{id}/m/{msg}/p/{idx}", s.handlePart)
	mux.HandleFunc("POST /c/{id}/reply", s.handleReply)

	mux.HandleFunc("GET /reset", s.handleResetForm)
	mux.HandleFunc("POST /reset", s.form(s.handleResetRequest))
	mux.HandleFunc("GET /reset/{token}", s.handleResetToken)
	mux.HandleFunc("POST /reset/{token}", s.form(s.handleResetPassword))

	mux.HandleFunc("GET /account", s.handleAccount)
	mux.HandleFunc("POST /account/password", s.form(s.handleAccountPassword))
	mux.HandleFunc("POST /account/email", s.form(s.handleAccountEmail))
	mux.HandleFunc("POST /account/language", s.form(s.handleAccountLanguage))
	mux.HandleFunc("POST /account/signout", s.form(s.handleSignOutEverywhere))
	mux.HandleFunc("GET /confirm/{token}", s.handleConfirmForm)
	mux.HandleFunc("POST /confirm/{token}", s.form(s.handleConfirm))

	mux.HandleFunc("GET /revoke/{token}", s.handleRevokeForm)
	mux.HandleFunc("POST /revoke/{token}", s.form(s.handleRevoke))
	mux.HandleFunc("POST /hooks/vonage/dlr", s.handleVonageDLR)

	mux.HandleFunc("/", s.handleNotFound)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, s.withLanguage(r))
}
