package portal

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/securetextd/securetextd/internal/webedge"
)

// pageCSP allows the portal's own stylesheets and images and nothing else:
// no script at all, no inline style, no remote fetch, no framing.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// maxFormBytes bounds the body of every small form (passwords, phone
// numbers, logout).
const maxFormBytes = 16 << 10

// headers sets the security headers of every response (webedge.Headers,
// shared with the console).
func (s *Server) headers(next http.Handler) http.Handler {
	return webedge.Headers(s.cfg.Secure, pageCSP, next)
}

// handleCrossOrigin answers a POST that another site's page sent.
func (s *Server) handleCrossOrigin(w http.ResponseWriter, r *http.Request) {
	s.logger.Warn("cross-origin request refused", "route", route(r), "addr", clientKey(r))
	s.renderMessage(w, r, http.StatusForbidden, "CrossOriginTitle", "CrossOriginHeading", "CrossOriginText")
}

// form bounds the body of a small form and parses it before calling h.
func (s *Server) form(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				s.renderMessage(w, r, http.StatusRequestEntityTooLarge, "FormTooLargeTitle", "FormTooLargeHeading", "GoBack")
				return
			}
			s.renderMessage(w, r, http.StatusBadRequest, "FormUnreadableTitle", "FormUnreadableHeading", "GoBack")
			return
		}
		h(w, r)
	}
}

// route names the route of a request for the log without the tokens its
// path may hold: "/m/…/login".
func route(r *http.Request) string {
	parts := strings.Split(r.URL.Path, "/")
	for i, p := range parts {
		if i > 1 && p != "" && p != "login" && p != "setup" && p != "reply" && p != "m" && p != "p" {
			if _, err := strconv.ParseInt(p, 10, 64); err != nil {
				parts[i] = "…"
			}
		}
	}
	return strings.Join(parts, "/")
}
