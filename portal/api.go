package portal

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// The REST API lets an integrator's software (a scheduling system, an EHR)
// send a secure text with one HTTP call and read what became of it. It
// lives under /api/v1 on the portal's listener but outside the portal's
// world of cookies and forms: a request proves itself with an API key in
// an Authorization: Bearer header, never with a cookie, so cross-site
// request forgery cannot reach it, and the portal's cross-origin check
// (which refuses cookie-less cross-site POSTs it cannot tell from
// browsers') is not in its way. Every error is an RFC 9457 problem
// document; the routes are described by the OpenAPI document served at
// /api/v1/openapi.json, which a test holds to the routes below.

// APIStore is what the API needs of the store. *store.DB implements it.
type APIStore interface {
	// AuthenticateAPIKey returns the live key a token is, or
	// EUNAUTHORIZED.
	AuthenticateAPIKey(ctx context.Context, token string) (*securetextd.APIKey, error)
	// NewDraft starts a message; it is committed with CommitAPI.
	NewDraft() *store.Draft
	// IdempotentResponse returns the answer kept for an Idempotency-Key,
	// or ENOTFOUND.
	IdempotentResponse(ctx context.Context, sender, key string) (*store.IdempotentRecord, error)
	// CheckLimits returns the ELIMIT error a message to targets would
	// fail with, before its content is sealed.
	CheckLimits(ctx context.Context, sender string, targets []store.Target) error
	// MessageReport returns the recipients' states and access history of
	// a message of sender's, or ENOTFOUND.
	MessageReport(ctx context.Context, sender string, id int64) (*securetextd.MessageReport, error)
	// Conversation returns a conversation, or ENOTFOUND.
	Conversation(ctx context.Context, id int64) (*securetextd.Conversation, error)
	// RevokeConversation withdraws a conversation: EREVOKED if it was.
	RevokeConversation(ctx context.Context, id int64) error
	// DeleteConversation deletes a conversation, or records the delete
	// until its hold is removed (api_hold.go).
	DeleteConversation(ctx context.Context, id int64, by string) (securetextd.DeleteResult, error)
	// PlaceHold, RemoveHold and ListHolds manage legal holds.
	PlaceHold(ctx context.Context, id int64, reason, by string) error
	RemoveHold(ctx context.Context, id int64, by string) (*securetextd.DeleteResult, error)
	ListHolds(ctx context.Context) ([]securetextd.Hold, error)
	// SetDateOfBirth keeps the date of birth (YYYY-MM-DD) the portal asks
	// of a recipient (verify.date_of_birth; factor.go).
	SetDateOfBirth(ctx context.Context, phone securetextd.Phone, dob string) error
}

// MessageMetrics counts messages accepted and refused, by where they came
// from ("api", "submission", "relay") and, for refusals, a short reason.
type MessageMetrics interface {
	MessageAccepted(source string)
	MessageRefused(source, reason string)
}

// APIConfig sets the API's limits. Zero values take the defaults.
type APIConfig struct {
	// ParsePhone reads a recipient's number; securetextd.PhoneRules.Parse.
	// Required.
	ParsePhone func(string) (securetextd.Phone, error)
	// EmailRecipients lets "to" name email addresses, and a phone's
	// fallback_email (email_recipients.enabled; api_email.go).
	EmailRecipients bool
	// MaxJSONBytes bounds a JSON request (default 16 MiB). Its strings,
	// base64 attachments included, are held in memory while it is read;
	// larger files belong in multipart/form-data, which streams.
	MaxJSONBytes int64
	// MaxBodyBytes bounds a multipart/form-data request, files included
	// (default 100 MiB, as smtp.max_message_bytes).
	MaxBodyBytes int64
	// MaxRecipients bounds the phone numbers of one message (default 50).
	MaxRecipients int
	// Rate and Burst limit each key's requests: Rate per second on
	// average, Burst at once (defaults 5 and 20).
	Rate  float64
	Burst int
	// Secure adds HSTS, as the portal does under HTTPS.
	Secure bool
	// MessageIDHost is the right-hand side of the Message-IDs made for
	// messages from the API (replies thread under them); default
	// "securetextd.invalid".
	MessageIDHost string
	// Metrics, if not nil, counts accepted and refused messages.
	Metrics MessageMetrics
}

// API defaults.
const (
	DefaultAPIMaxJSONBytes  = 16 << 20
	DefaultAPIMaxBodyBytes  = 100 << 20
	DefaultAPIMaxRecipients = 50
	DefaultAPIRate          = 5
	DefaultAPIBurst         = 20
)

func (c APIConfig) withDefaults() (APIConfig, error) {
	if c.ParsePhone == nil {
		return c, errors.New("portal: api: ParsePhone is required")
	}
	if c.MaxJSONBytes <= 0 {
		c.MaxJSONBytes = DefaultAPIMaxJSONBytes
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultAPIMaxBodyBytes
	}
	if c.MaxRecipients <= 0 {
		c.MaxRecipients = DefaultAPIMaxRecipients
	}
	if c.Rate <= 0 {
		c.Rate = DefaultAPIRate
	}
	if c.Burst <= 0 {
		c.Burst = DefaultAPIBurst
	}
	if c.MessageIDHost == "" {
		c.MessageIDHost = "securetextd.invalid"
	}
	return c, nil
}

// API serves /api/v1. It is an http.Handler.
type API struct {
	store   APIStore
	logger  *slog.Logger
	cfg     atomic.Pointer[APIConfig]
	mux     *http.ServeMux
	methods *http.ServeMux // the same paths without methods, for 405
	// resolved is mux behind ResolveClient (a no-op when the server
	// resolved the client already).
	resolved http.Handler
	routes   []string

	mu       sync.Mutex
	limiters map[int64]*keyLimiter
}

// maxLimiterKeys bounds the keys whose request rate is remembered: past
// it, those quiet for a minute are forgotten.
const maxLimiterKeys = 10_000

// The request rate of each key (APIConfig.Rate and Burst) is kept in this
// node's memory, unlike the portal's lockouts: it bounds the work one
// integrator's software makes this node do (decoding JSON, sealing files
// of up to 100 MiB), as the node's connection cap does, and counting it
// in the database would add a write transaction to every request, reads
// of reports included. With several nodes behind a load balancer a key
// may make Rate requests a second on each. What a key can cause is
// limited for the whole cluster where it matters, in the database, in the
// transaction that commits a message: the sender's texts a day and each
// phone's texts an hour (store/limits.go). A key that authenticates is
// known, so its entries cannot be multiplied by a flood.

type keyLimiter struct {
	l    *rate.Limiter
	last time.Time
}

// apiRoute is one route of the API.
type apiRoute struct {
	pattern string // "POST /api/v1/messages"
	handler http.HandlerFunc
	public  bool // no API key needed
}

// apiRoutes lists every route of the API, in one place. The OpenAPI
// document describes exactly these (TestOpenAPIRoutes).
func (a *API) apiRoutes() []apiRoute {
	return []apiRoute{
		{"GET /api/v1/openapi.json", a.handleOpenAPI, true},
		{"POST /api/v1/messages", a.authed(a.handleSend), false},
		{"GET /api/v1/messages/{id}", a.authed(a.handleReport), false},
		{"POST /api/v1/conversations/{id}/revoke", a.authed(a.handleRevoke), false},
		{"DELETE /api/v1/conversations/{id}", a.authed(a.handleDeleteConversation), false},
		{"POST /api/v1/conversations/{id}/hold", a.adminOnly(a.handlePlaceHold), false},
		{"DELETE /api/v1/conversations/{id}/hold", a.adminOnly(a.handleRemoveHold), false},
		{"GET /api/v1/holds", a.adminOnly(a.handleListHolds), false},
	}
}

// NewAPI checks cfg and lists the API's routes.
func NewAPI(cfg APIConfig, st APIStore, logger *slog.Logger) (*API, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &API{
		store:    st,
		logger:   logger.With("component", "api"),
		mux:      http.NewServeMux(),
		methods:  http.NewServeMux(),
		limiters: make(map[int64]*keyLimiter),
	}
	a.cfg.Store(&cfg)
	seen := map[string]bool{}
	for _, r := range a.apiRoutes() {
		a.mux.HandleFunc(r.pattern, r.handler)
		a.routes = append(a.routes, r.pattern)
		_, path, _ := strings.Cut(r.pattern, " ")
		if !seen[path] {
			seen[path] = true
			a.methods.HandleFunc(path, func(http.ResponseWriter, *http.Request) {})
		}
	}
	a.mux.HandleFunc("/api/v1/", a.handleNoRoute)
	a.resolved = ResolveClient(nil, a.mux)
	return a, nil
}

// SetConfig replaces the API's limits, as at a configuration reload. Rate
// limits start afresh.
func (a *API) SetConfig(cfg APIConfig) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	a.cfg.Store(&cfg)
	a.mu.Lock()
	clear(a.limiters)
	a.mu.Unlock()
	return nil
}

// Routes returns the patterns of the API's routes: "POST /api/v1/messages".
func (a *API) Routes() []string { return append([]string(nil), a.routes...) }

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if a.cfg.Load().Secure {
		h.Set("Strict-Transport-Security", "max-age=63072000")
	}
	// The client's address is resolved once, by whoever serves the API
	// (with the trusted proxies: cmd/securetextd), or here from the peer.
	a.resolved.ServeHTTP(w, r)
}

// handleNoRoute answers what no route matches: 405 for a known path with
// another method, 404 for the rest.
func (a *API) handleNoRoute(w http.ResponseWriter, r *http.Request) {
	if _, pattern := a.methods.Handler(r); pattern != "" && pattern != "/" {
		var allow []string
		for _, rt := range a.routes {
			if m, p, _ := strings.Cut(rt, " "); p == pattern {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		a.problem(w, r, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed",
			fmt.Sprintf("%s is not allowed here; use %s.", r.Method, strings.Join(allow, " or ")))
		return
	}
	a.problem(w, r, http.StatusNotFound, "not-found", "Not found", "There is no such resource.")
}

// apiKeyContext is the key a request was authenticated with.
type apiKeyContext struct{}

// authed checks the request's API key and the key's rate limit before h:
// a sender's key; adminOnly an admin key (api_hold.go).
func (a *API) authed(h func(http.ResponseWriter, *http.Request, *securetextd.APIKey)) http.HandlerFunc {
	return a.authedAs(false, h)
}

func (a *API) adminOnly(h func(http.ResponseWriter, *http.Request, *securetextd.APIKey)) http.HandlerFunc {
	return a.authedAs(true, h)
}

func (a *API) authedAs(admin bool, h func(http.ResponseWriter, *http.Request, *securetextd.APIKey)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="securetextd"`)
			a.problem(w, r, http.StatusUnauthorized, "unauthorized", "API key required",
				"Send your API key in an Authorization: Bearer header.")
			return
		}
		key, err := a.store.AuthenticateAPIKey(r.Context(), strings.TrimSpace(token))
		if err != nil {
			if securetextd.ErrorCode(err) == securetextd.EUNAUTHORIZED {
				a.logger.Warn("api key refused", "addr", clientKey(r))
				w.Header().Set("WWW-Authenticate", `Bearer realm="securetextd", error="invalid_token"`)
				a.problem(w, r, http.StatusUnauthorized, "unauthorized", "API key not valid",
					"This API key is unknown or was revoked.")
				return
			}
			a.fail(w, r, "authenticate api key", err)
			return
		}
		if key.Admin != admin {
			detail := "This route needs an admin key (securetextd apikey create --admin)."
			if key.Admin {
				detail = "This is an admin key: it manages legal holds, and cannot send or read messages."
			}
			a.problem(w, r, http.StatusForbidden, "forbidden", "Forbidden", detail)
			return
		}
		if wait := a.reserve(key.ID); wait > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(wait.Seconds()))))
			a.problem(w, r, http.StatusTooManyRequests, "rate-limited", "Too many requests",
				fmt.Sprintf("This key may make %g requests a second (bursts of %d). Try again in %s.",
					a.cfg.Load().Rate, a.cfg.Load().Burst, wait.Round(time.Second)))
			return
		}
		ctx := securetextd.WithOrigin(r.Context(), securetextd.Origin{
			Actor: key.Sender, Client: clientAddr(r), UserAgent: r.UserAgent(),
		})
		h(w, r.WithContext(context.WithValue(ctx, apiKeyContext{}, key)), key)
	}
}

// reserve takes one request from key's bucket, and returns how long to
// wait when it is empty (then nothing is taken).
func (a *API) reserve(key int64) time.Duration {
	cfg := a.cfg.Load()
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	kl := a.limiters[key]
	if kl == nil {
		if len(a.limiters) >= maxLimiterKeys {
			for k, v := range a.limiters {
				if now.Sub(v.last) > time.Minute {
					delete(a.limiters, k)
				}
			}
		}
		kl = &keyLimiter{l: rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Burst)}
		a.limiters[key] = kl
	}
	kl.last = now
	res := kl.l.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return max(d, time.Second)
	}
	return 0
}

// problemTypes prefix the type of every problem document: a URN, stable
// and documented in the OpenAPI document, not a page to fetch.
const problemTypes = "urn:securetextd:problem:"

// problem is an RFC 9457 problem document.
type problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	ErrorID  string       `json:"error_id,omitempty"`
	Errors   []fieldError `json:"errors,omitempty"`
}

// fieldError says what is wrong with one field of a request.
type fieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func (a *API) problem(w http.ResponseWriter, r *http.Request, status int, typ, title, detail string) {
	a.writeProblem(w, r, &problem{Type: problemTypes + typ, Title: title, Status: status, Detail: detail})
}

func (a *API) writeProblem(w http.ResponseWriter, r *http.Request, p *problem) {
	p.Instance = r.URL.Path
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// fail is the API's one translation point for errors: the codes of
// securetextd.Error become a status and a problem document; anything else
// is logged under an id that the document carries, and the client learns
// nothing more.
func (a *API) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	msg := securetextd.ErrorMessage(err)
	switch securetextd.ErrorCode(err) {
	case securetextd.EINVALID:
		a.problem(w, r, http.StatusUnprocessableEntity, "invalid-request", "Invalid request", msg)
		return
	case securetextd.ENOTFOUND, securetextd.EFORBIDDEN:
		a.problem(w, r, http.StatusNotFound, "not-found", "Not found", msg)
		return
	case securetextd.EUNAUTHORIZED:
		a.problem(w, r, http.StatusUnauthorized, "unauthorized", "Not authorized", msg)
		return
	case securetextd.ETOOLARGE:
		a.problem(w, r, http.StatusRequestEntityTooLarge, "too-large", "Too large", msg)
		return
	case securetextd.ELIMIT:
		a.problem(w, r, http.StatusTooManyRequests, "limit", "Limit reached", msg)
		return
	case securetextd.ECONFLICT:
		a.problem(w, r, http.StatusConflict, "conflict", "Conflict", msg)
		return
	case securetextd.EMALWARE:
		// The message names the file and what was found; the log has
		// only what was found (the file's name is content).
		var m *store.MalwareError
		if errors.As(err, &m) {
			a.logger.Warn("message refused: malware", "found", m.Found)
		}
		a.problem(w, r, http.StatusUnprocessableEntity, "malware", "Malware found", msg+" The message was not sent.")
		return
	case securetextd.EUNAVAILABLE, securetextd.EUNSCANNED:
		w.Header().Set("Retry-After", "60")
		a.problem(w, r, http.StatusServiceUnavailable, "unavailable", "Unavailable", msg)
		return
	case securetextd.ESTORAGE:
		a.logger.Error(op, "err", err)
		w.Header().Set("Retry-After", "300")
		a.problem(w, r, http.StatusInsufficientStorage, "storage-full", "Insufficient storage", msg)
		return
	}
	id := securetextd.NewErrorID()
	a.logger.Error(op, "error_id", id, "err", err)
	a.writeProblem(w, r, &problem{
		Type: problemTypes + "internal", Title: "Internal error", Status: http.StatusInternalServerError,
		Detail:  "Something went wrong on our side. Try again later; if it keeps happening, quote the error id.",
		ErrorID: id,
	})
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

//go:embed openapi.json
var openAPIDoc []byte

// OpenAPIDocument returns the OpenAPI 3.1 document of the API.
func OpenAPIDocument() []byte { return append([]byte(nil), openAPIDoc...) }

func (a *API) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(openAPIDoc)
}

func (a *API) metrics() MessageMetrics {
	if m := a.cfg.Load().Metrics; m != nil {
		return m
	}
	return nopMessageMetrics{}
}

type nopMessageMetrics struct{}

func (nopMessageMetrics) MessageAccepted(string)        {}
func (nopMessageMetrics) MessageRefused(string, string) {}
