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
// the right password, until the window has passed. The store counts
// them, so the pause holds on every node and across restarts; a login
// that follows no failure writes nothing for it.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	token, conv := s.linkConversation(w, r)
	if conv == nil {
		return
	}
	keys := limitKeys(r, conv.Phone)
	if code, err := s.needsCode(r, conv.Phone); err != nil {
		s.fail(w, r, "login device", err)
		return
	} else if code {
		// A browser the account has not seen gives the code first.
		linkAgain(w, r, token)
		return
	}
	wait, err := s.loginsLocked(r, conv.Phone)
	if err != nil {
		s.fail(w, r, "check lockout", err)
		return
	}
	if wait > 0 {
		s.logger.Warn("login while locked", "phone", conv.Phone.Masked(), "addr", clientKey(r))
		s.audit(r, securetextd.AuditLoginLocked, conv, "while locked")
		s.metrics().Login(LoginLocked)
		s.renderLocked(w, r, wait)
		return
	}
	err = s.store.AuthenticateRecipient(r.Context(), conv.Phone, r.PostFormValue("password"))
	switch securetextd.ErrorCode(err) {
	case "":
	case securetextd.EUNAUTHORIZED, securetextd.ENOTFOUND:
		// A wrong password that cannot be counted is not answered as
		// one: a guesser gets no answer the count missed.
		wait, left, err := s.store.Strike(r.Context(), limitLogin, s.lockoutRule(), keys...)
		if err != nil {
			s.fail(w, r, "count wrong password", err)
			return
		}
		s.logger.Warn("login failed", "phone", conv.Phone.Masked(), "addr", clientKey(r), "locked", wait > 0)
		s.audit(r, securetextd.AuditLoginFailed, conv, "")
		s.metrics().Login(LoginFailed)
		if wait > 0 {
			s.metrics().Lockout()
			s.audit(r, securetextd.AuditLoginLocked, conv, "until "+time.Now().Add(wait).UTC().Format(time.RFC3339))
			s.renderLocked(w, r, wait)
			return
		}
		p := &linkPage{Token: token, Error: s.printer(r).T("PasswordWrong")}
		if left <= 2 {
			p.Left = left
		}
		s.renderLink(w, r, http.StatusUnauthorized, conv.Phone, p)
		return
	default:
		s.fail(w, r, "authenticate", err)
		return
	}
	// The number's count starts afresh; the address's stands, so that an
	// address guessing many numbers cannot clear its count with a number
	// of its own.
	if err := s.store.ForgetStrikes(r.Context(), limitLogin, phoneLimitKey(conv.Phone)); err != nil {
		s.logger.Error("clear wrong passwords", "phone", conv.Phone.Masked(), "err", err)
	}
	if err := s.setSession(w, r, conv.Phone); err != nil {
		s.fail(w, r, "create session", err)
		return
	}
	s.recordSignIn(r, conv.Phone)
	s.logger.Info("login", "phone", conv.Phone.Masked(), "conversation", conv.ID)
	s.audit(r, securetextd.AuditLoginOK, conv, "")
	s.metrics().Login(LoginOK)
	http.Redirect(w, r, "/c/"+strconv.FormatInt(conv.ID, 10), http.StatusSeeOther)
}

// renderLocked answers a login while logins are paused, for wait more.
func (s *Server) renderLocked(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	s.render(w, r, http.StatusTooManyRequests, "locked.html", &lockedPage{
		layout: layout{Title: "TooManyTries"},
		Wait:   s.printer(r).Duration(wait),
	})
}

// loginsLocked returns how long logins to phone from the request's client
// stay paused, or 0. It only reads: a link page may ask.
func (s *Server) loginsLocked(r *http.Request, phone securetextd.Phone) (time.Duration, error) {
	return s.store.StrikesLocked(r.Context(), limitLogin, limitKeys(r, phone)...)
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
	s.renderMessage(w, r, http.StatusOK, "LoggedOutTitle", "LoggedOutHeading", "LoggedOutText")
}
