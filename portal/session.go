package portal

import (
	"net/http"

	"github.com/securetextd/securetextd"
)

// maxTokenLen bounds a token read from a URL or a cookie before it reaches
// the store: longer ones are not ours.
const maxTokenLen = 64

// cookieName is the session cookie's name. Over HTTPS it carries the
// __Host- prefix, which binds it to this exact host, path / and Secure.
func (s *Server) cookieName() string {
	if s.cfg.Secure {
		return "__Host-session"
	}
	return "session"
}

// setSession starts a session for phone and gives its token to the
// browser, ending the session the browser had before, if any.
func (s *Server) setSession(w http.ResponseWriter, r *http.Request, phone securetextd.Phone) error {
	if old := s.sessionToken(r); old != "" {
		if err := s.store.DeleteSession(r.Context(), old); err != nil && securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
			return err
		}
	}
	token, err := s.store.CreateSession(r.Context(), phone)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookieName(),
		Value:    token,
		Path:     "/",
		MaxAge:   int(s.cfg.SessionLifetime.Seconds()),
		Secure:   s.cfg.Secure,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
	s.adoptLanguage(w, r, phone)
	return nil
}

// clearSession tells the browser to forget its session cookie.
func (s *Server) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookieName(),
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		Secure:   s.cfg.Secure,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
}

// sessionToken returns the token of the browser's session cookie, or "".
func (s *Server) sessionToken(r *http.Request) string {
	c, err := r.Cookie(s.cookieName())
	if err != nil || c.Value == "" || len(c.Value) > maxTokenLen {
		return ""
	}
	return c.Value
}

// session returns the browser's live session, nil when it has none (no
// cookie, or one that is unknown, idle too long or too old), and an error
// only when the store failed. The store enforces both time limits and
// marks the session active.
func (s *Server) session(r *http.Request) (*securetextd.Session, error) {
	token := s.sessionToken(r)
	if token == "" {
		return nil, nil
	}
	sess, err := s.store.Session(r.Context(), token, s.cfg.IdleTimeout, s.cfg.SessionLifetime)
	if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
		return nil, nil
	}
	return sess, err
}
