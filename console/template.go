package console

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"time"

	"github.com/securetextd/securetextd"
)

//go:embed templates/*.html static/console.css static/console.js
var assets embed.FS

// pageCSP allows the console's own stylesheet and script, images of its
// own and the QR code (a data: PNG), fetches of its own pages (the Sent
// page's refresh) and nothing else: no inline script or style, no remote
// fetch, no framing.
const pageCSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// maxFormBytes bounds the body of every form but compose's, which takes
// files and is bounded by Config.MaxMessageBytes (compose.go).
const maxFormBytes = 16 << 10

// parsePages parses each page of templates/ with the shared layout, once,
// at start.
func parsePages(loc *time.Location) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"when": func(t time.Time) string { return t.In(loc).Format("2 Jan 2006, 15:04 MST") },
		"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"size": humanSize,
		"inc":  func(i int) int { return i + 1 },
	}
	layout, err := assets.ReadFile("templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := make(map[string]*template.Template)
	for _, name := range names {
		base := path.Base(name)
		if base == "layout.html" {
			continue
		}
		body, err := assets.ReadFile(name)
		if err != nil {
			return nil, err
		}
		t, err := template.New(base).Funcs(funcs).Parse(string(layout))
		if err == nil {
			_, err = t.Parse(string(body))
		}
		if err != nil {
			return nil, fmt.Errorf("console: parse %s: %w", base, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// layout is what every page shows around its content.
type layout struct {
	Org     string
	Title   string
	Account string // the signed-in address; empty before sign-in
	Admin   bool
}

func (l *layout) base() *layout { return l }

type page interface{ base() *layout }

// render writes a page into a buffer first, so that a template error
// gives a clean 500 instead of half a page.
func (s *Server) render(w http.ResponseWriter, status int, name string, p page) {
	p.base().Org = s.cfg.Org
	var buf bytes.Buffer
	err := fmt.Errorf("no page %q", name)
	if t, ok := s.pages[name]; ok {
		err = t.ExecuteTemplate(&buf, "layout", p)
	}
	if err != nil {
		s.logger.Error("render", "template", name, "err", err)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// messagePage is a page that says one thing, with an optional link.
type messagePage struct {
	layout
	Heading  string
	Text     string
	Href     string
	LinkText string
}

func (s *Server) renderMessage(w http.ResponseWriter, status int, title, heading, text string) {
	s.render(w, status, "message.html", &messagePage{layout: layout{Title: title}, Heading: heading, Text: text})
}

// handleStatic serves the stylesheet and the script, which may be cached.
func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) {
	name := path.Base(r.URL.Path)
	b, err := assets.ReadFile("static/" + name)
	if err != nil {
		s.handleNotFound(w, r)
		return
	}
	typ := "text/css; charset=utf-8"
	if path.Ext(name) == ".js" {
		typ = "text/javascript; charset=utf-8"
	}
	w.Header().Set("Content-Type", typ)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(b)
}

// handleNotFound is the one page for whatever does not exist or is not
// this account's to see: other senders' messages look like no message.
func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusNotFound, "message.html", &messagePage{
		layout:  layout{Title: "Not found"},
		Heading: "Not found",
		Text:    "There is nothing here, or it is not yours to see.",
		Href:    "/sent", LinkText: "Back to Sent",
	})
}

// handleCrossOrigin answers a POST that another site's page sent.
func (s *Server) handleCrossOrigin(w http.ResponseWriter, r *http.Request) {
	s.logger.Warn("cross-origin request refused", "path", r.URL.Path)
	s.renderMessage(w, http.StatusForbidden, "Refused", "This form was sent from another website",
		"For your safety it was not accepted. Open the console and try again there.")
}

// form bounds the body of a form and parses it before calling h.
func (s *Server) form(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				s.renderMessage(w, http.StatusRequestEntityTooLarge, "Too large", "This form is too large", "Go back and try again.")
				return
			}
			s.renderMessage(w, http.StatusBadRequest, "Try again", "This form could not be read", "Go back and try again.")
			return
		}
		h(w, r)
	}
}

// fail is the console's one translation point for errors: the codes of
// securetextd.Error become a status and a page; anything else is logged
// under an id that the page shows.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	switch securetextd.ErrorCode(err) {
	case securetextd.ENOTFOUND, securetextd.EFORBIDDEN:
		s.handleNotFound(w, r)
		return
	case securetextd.EUNAVAILABLE, securetextd.ESTORAGE:
		s.logger.Warn(op, "err", err)
		w.Header().Set("Retry-After", "60")
		s.renderMessage(w, http.StatusServiceUnavailable, "Try again later", "Busy right now", "Please try again in a few minutes.")
		return
	}
	id := securetextd.NewErrorID()
	s.logger.Error(op, "error_id", id, "err", err)
	s.renderMessage(w, http.StatusInternalServerError, "Try again later", "Something went wrong on our side",
		"Please try again in a few minutes. If it keeps happening, tell your administrator this code: "+id+".")
}

// humanSize writes a byte count as people read it: "820 KB".
func humanSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return fmt.Sprintf("%d KB", (n+1<<9)>>10)
	case n < 1<<30:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
}
