// Package portal serves the recipient's side of the gateway: the page a
// text message's link opens. It renders server-side HTML with embedded
// templates and styles, needs no JavaScript, and sets its security headers
// in one middleware.
//
// A link is safe to preview: SMS apps, mail scanners and chat previews fetch
// links, so GET never changes state and never shows content. Unknown and
// altered tokens get the same page as each other, so a guesser learns
// nothing.
package portal

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/securetextd/securetextd"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Links finds the conversation a link token opens. *store.DB implements it.
type Links interface {
	ConversationByToken(ctx context.Context, token string) (*securetextd.Conversation, error)
}

// Config is what the portal shows and how it is reached.
type Config struct {
	// Org is the organization's name, shown on every page.
	Org string
	// TLS is true when the portal is reached over HTTPS (it sets HSTS).
	TLS bool
}

// Server serves the portal's routes.
type Server struct {
	cfg    Config
	links  Links
	logger *slog.Logger
	tmpl   *template.Template
	mux    *http.ServeMux
}

// New parses the templates and lists every route.
func New(cfg Config, links Links, logger *slog.Logger) (*Server, error) {
	tmpl, err := template.ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, links: links, logger: logger.With("component", "portal"), tmpl: tmpl, mux: http.NewServeMux()}
	s.routes()
	return s, nil
}

// routes lists every route of the portal, in one place.
func (s *Server) routes() {
	s.mux.HandleFunc("GET /m/{token}", s.handleLink)
	s.mux.Handle("GET /static/", http.FileServerFS(assets))
	s.mux.HandleFunc("GET /{$}", s.handleHome)
	s.mux.HandleFunc("/", s.handleNotFound)
}

// ServeHTTP implements http.Handler with the security headers applied.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if s.cfg.TLS {
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	}
	s.mux.ServeHTTP(w, r)
}

// NewHTTPServer wraps a handler in an http.Server with every timeout set.
func NewHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute, // replies with photos over slow links
		WriteTimeout:      10 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

type page struct {
	Org     string
	Title   string
	Heading string
	Text    string
}

// render writes a page into a buffer first, so that a template error gives
// a clean 500 instead of half a page.
func (s *Server) render(w http.ResponseWriter, status int, name string, p page) {
	p.Org = s.cfg.Org
	var buf bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&buf, name, p); err != nil {
		s.logger.Error("render", "template", name, "err", err)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
