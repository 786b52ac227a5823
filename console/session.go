package console

import (
	"net/http"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/webedge"
)

// maxTokenLen bounds a cookie's token before it reaches the store.
const maxTokenLen = 64

// cookieName is the session cookie's name; over HTTPS it carries the
// __Host- prefix, which binds it to this exact host, path / and Secure.
// It differs from the portal's, which may share the host on another port
// (cookies do not tell ports apart).
func (s *Server) cookieName() string {
	if s.cfg.Secure {
		return "__Host-console"
	}
	return "console"
}

// startSession ends the browser's session, if any, and starts one of
// level for address, handing its token to the browser. A new token at
// every step of sign-in means that a token seen before the second factor
// is worth nothing after it.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, address string, level int) error {
	if old := s.sessionToken(r); old != "" {
		if err := s.store.DeleteConsoleSession(r.Context(), old); err != nil {
			return err
		}
	}
	token, err := s.store.CreateConsoleSession(r.Context(), address, level)
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
	return nil
}

func (s *Server) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(), Value: "", Path: "/", MaxAge: -1,
		Secure: s.cfg.Secure, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) sessionToken(r *http.Request) string {
	c, err := r.Cookie(s.cookieName())
	if err != nil || c.Value == "" || len(c.Value) > maxTokenLen {
		return ""
	}
	return c.Value
}

// session returns the browser's live session, nil when it has none, and
// an error only when the store failed.
func (s *Server) session(r *http.Request) (*securetextd.ConsoleSession, error) {
	token := s.sessionToken(r)
	if token == "" {
		return nil, nil
	}
	sess, err := s.store.ConsoleSession(r.Context(), token, s.cfg.IdleTimeout, s.cfg.SessionLifetime)
	if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
		return nil, nil
	}
	return sess, err
}

// signedIn returns the account of a fully signed-in session, or answers
// the request itself (to the sign-in page, or an error) and returns nil.
// The request's context then carries the account as the origin of the
// audit events it causes.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request) (*securetextd.SenderAccount, *http.Request) {
	sess, err := s.session(r)
	if err != nil {
		s.fail(w, r, "session", err)
		return nil, r
	}
	if sess == nil || sess.Level != securetextd.LevelSignedIn {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil, r
	}
	acct, err := s.store.SenderAccount(r.Context(), sess.Address)
	if err != nil {
		if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
			// The account was removed while signed in.
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return nil, r
		}
		s.fail(w, r, "account", err)
		return nil, r
	}
	return acct, r.WithContext(securetextd.WithOrigin(r.Context(), origin(r, acct.Address)))
}

// origin is who a request of address is, for the audit trail.
func origin(r *http.Request, address string) securetextd.Origin {
	return securetextd.Origin{Actor: address, Client: webedge.ClientAddr(r), UserAgent: r.UserAgent()}
}

// layoutFor is the layout of a signed-in page.
func layoutFor(a *securetextd.SenderAccount, title string) layout {
	return layout{Title: title, Account: a.Address, Admin: a.Admin}
}
