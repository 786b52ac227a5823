package portal

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/securetextd/securetextd"
)

// lockedPage says that logins are paused, and for how long.
type lockedPage struct {
	layout
	Wait string // "12 minutes"
}

// handleLogin checks the password of the link's phone number. Wrong
// passwords count against the number and against the client address;
// LockoutFailures of either within LockoutWindow pause logins, even with
// the right password, until the window has passed.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	token, conv := s.linkConversation(w, r)
	if conv == nil {
		return
	}
	phoneKey, addrKey := "phone:"+string(conv.Phone), "addr:"+clientKey(r)
	now := time.Now()
	if until := s.loginsLocked(r, now, conv.Phone); !until.IsZero() {
		s.logger.Warn("login while locked", "phone", conv.Phone.Masked(), "addr", clientKey(r))
		s.audit(r, securetextd.AuditLoginLocked, conv, "while locked")
		s.metrics().Login(LoginLocked)
		s.renderLocked(w, now, until)
		return
	}
	err := s.store.AuthenticateRecipient(r.Context(), conv.Phone, r.PostFormValue("password"))
	switch securetextd.ErrorCode(err) {
	case "":
	case securetextd.EUNAUTHORIZED, securetextd.ENOTFOUND:
		until, left := s.logins.strike(now, phoneKey, addrKey)
		s.logger.Warn("login failed", "phone", conv.Phone.Masked(), "addr", clientKey(r), "locked", !until.IsZero())
		s.audit(r, securetextd.AuditLoginFailed, conv, "")
		s.metrics().Login(LoginFailed)
		if !until.IsZero() {
			s.metrics().Lockout()
			s.audit(r, securetextd.AuditLoginLocked, conv, "until "+until.UTC().Format(time.RFC3339))
			s.renderLocked(w, now, until)
			return
		}
		p := &linkPage{Token: token, Error: "That password is not right. Try again, or reset it below."}
		if left <= 2 {
			p.Left = left
		}
		s.renderLink(w, http.StatusUnauthorized, p)
		return
	default:
		s.fail(w, r, "authenticate", err)
		return
	}
	s.logins.forget(phoneKey)
	if err := s.setSession(w, r, conv.Phone); err != nil {
		s.fail(w, r, "create session", err)
		return
	}
	s.logger.Info("login", "phone", conv.Phone.Masked(), "conversation", conv.ID)
	s.audit(r, securetextd.AuditLoginOK, conv, "")
	s.metrics().Login(LoginOK)
	http.Redirect(w, r, "/c/"+strconv.FormatInt(conv.ID, 10), http.StatusSeeOther)
}

// renderLocked answers a login while logins are paused.
func (s *Server) renderLocked(w http.ResponseWriter, now, until time.Time) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(until.Sub(now).Seconds()))))
	s.render(w, http.StatusTooManyRequests, "locked.html", &lockedPage{
		layout: layout{Title: "Too many tries"},
		Wait:   waitFor(until.Sub(now)),
	})
}

// loginsLocked returns until when logins to phone from the request's
// client are paused, or the zero time. It only reads: a link page may ask.
func (s *Server) loginsLocked(r *http.Request, now time.Time, phone securetextd.Phone) time.Time {
	return s.logins.lockedUntil(now, "phone:"+string(phone), "addr:"+clientKey(r))
}

// waitFor says how long a lockout still lasts, as a patient reads it on a
// phone in any time zone: "12 minutes", rounded up, so that it is never a
// minute early; "1 minute" at the end.
func waitFor(d time.Duration) string {
	m := max(1, int(math.Ceil(d.Minutes())))
	if m == 1 {
		return "1 minute"
	}
	return strconv.Itoa(m) + " minutes"
}

// handleLogout ends the browser's session.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if token := s.sessionToken(r); token != "" {
		if err := s.store.DeleteSession(r.Context(), token); err != nil &&
			securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
			s.fail(w, r, "delete session", err)
			return
		}
	}
	s.clearSession(w)
	s.renderMessage(w, r, http.StatusOK, "Logged out", "You are logged out",
		"To read your messages again, open the link in your text message and enter your password.")
}
