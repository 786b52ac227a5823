package console

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/webedge"
	"github.com/securetextd/securetextd/store"
)

// Sign-in is the password, then, when the account has TOTP, a code from
// the authenticator app or a recovery code. Wrong passwords and wrong
// codes count alike against the account and against the client address
// (limitKeys); LockoutFailures of either within LockoutWindow pause
// sign-in, even with the right password, until the window has passed.
// The store counts them, so the pause holds on every node.

// limitKind is the kind of the console's strike keys, apart from the
// portal's "login".
const limitKind = "console"

func (s *Server) lockoutRule() store.StrikeRule {
	return store.StrikeRule{Max: s.cfg.LockoutFailures, Window: s.cfg.LockoutWindow}
}

// limitKeys are the keys a sign-in of address from r counts against.
func limitKeys(r *http.Request, address string) []string {
	return []string{"sender:" + strings.ToLower(strings.TrimSpace(address)), "addr:" + webedge.ClientKey(r)}
}

// loginPage is the sign-in form.
type loginPage struct {
	layout
	Address string
	Error   string
}

func (s *Server) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "login.html", &loginPage{layout: layout{Title: "Sign in"}})
}

// requiresTOTP says whether console.require_totp covers a.
func (s *Server) requiresTOTP(a *securetextd.SenderAccount) bool {
	switch s.cfg.RequireTOTP {
	case RequireAll:
		return true
	case RequireAdmins:
		return a.Admin
	}
	return false
}

// handleLogin checks the address and password.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	address := strings.TrimSpace(r.PostFormValue("address"))
	if len(address) > 254 {
		address = address[:254]
	}
	ctx := securetextd.WithOrigin(r.Context(), origin(r, strings.ToLower(address)))
	r = r.WithContext(ctx)
	keys := limitKeys(r, address)
	if s.locked(w, r, keys) {
		return
	}
	_, err := s.store.AuthenticateSender(ctx, address, r.PostFormValue("password"))
	switch securetextd.ErrorCode(err) {
	case "":
	case securetextd.EUNAUTHORIZED, securetextd.ENOTFOUND, securetextd.EINVALID:
		if s.strike(w, r, keys, "password") {
			return
		}
		s.render(w, http.StatusUnauthorized, "login.html", &loginPage{layout: layout{Title: "Sign in"},
			Address: address, Error: "That address or password is not right."})
		return
	default:
		s.fail(w, r, "authenticate", err)
		return
	}
	acct, err := s.store.SenderAccount(ctx, address)
	if err != nil {
		s.fail(w, r, "account", err)
		return
	}
	// The account's count starts afresh; the address's stands.
	if err := s.store.ForgetStrikes(ctx, limitKind, keys[0]); err != nil {
		s.logger.Error("clear wrong passwords", "err", err)
	}
	level, next := securetextd.LevelSignedIn, "/sent"
	switch {
	case acct.TOTP:
		level, next = securetextd.LevelPassword, "/login/code"
	case s.requiresTOTP(acct):
		level, next = securetextd.LevelPassword, "/totp"
	}
	if err := s.startSession(w, r, acct.Address, level); err != nil {
		s.fail(w, r, "start session", err)
		return
	}
	if level == securetextd.LevelSignedIn {
		s.signedInNow(r, acct.Address, "password")
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signedInNow logs and audits a completed sign-in.
func (s *Server) signedInNow(r *http.Request, address, how string) {
	s.logger.Info("signed in", "account", address, "with", how)
	if err := s.store.Audit(r.Context(), securetextd.AuditEvent{Event: securetextd.AuditConsoleLogin, Actor: address, Detail: how}); err != nil {
		s.logger.Error("audit sign-in", "err", err)
	}
}

// locked answers a sign-in step while sign-in is paused for keys, and
// reports true then.
func (s *Server) locked(w http.ResponseWriter, r *http.Request, keys []string) bool {
	wait, err := s.store.StrikesLocked(r.Context(), limitKind, keys...)
	if err != nil {
		s.fail(w, r, "check lockout", err)
		return true
	}
	if wait <= 0 {
		return false
	}
	// Logged, not audited: the lockout itself was, and a client posting
	// in a loop while locked must not fill the audit trail.
	s.logger.Warn("sign-in while locked", "addr", webedge.ClientKey(r))
	s.renderLocked(w, wait)
	return true
}

// strike counts a wrong password or code (what) against keys. When that
// locks sign-in it answers the request and reports true.
func (s *Server) strike(w http.ResponseWriter, r *http.Request, keys []string, what string) bool {
	wait, _, err := s.store.Strike(r.Context(), limitKind, s.lockoutRule(), keys...)
	if err != nil {
		// A wrong try that cannot be counted is not answered as one.
		s.fail(w, r, "count wrong "+what, err)
		return true
	}
	s.logger.Warn("sign-in failed", "wrong", what, "addr", webedge.ClientKey(r), "locked", wait > 0)
	s.audit(r, securetextd.AuditEvent{Event: securetextd.AuditConsoleLoginFailed, Detail: what})
	if wait > 0 {
		s.audit(r, securetextd.AuditEvent{Event: securetextd.AuditConsoleLocked,
			Detail: "until " + time.Now().Add(wait).UTC().Format(time.RFC3339)})
		s.renderLocked(w, wait)
		return true
	}
	return false
}

// audit appends ev, logging (not failing the request) when it cannot.
func (s *Server) audit(r *http.Request, ev securetextd.AuditEvent) {
	if err := s.store.Audit(r.Context(), ev); err != nil {
		s.logger.Error("audit", "event", ev.Event, "err", err)
	}
}

func (s *Server) renderLocked(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	m := max(1, int(math.Ceil(wait.Minutes())))
	words := strconv.Itoa(m) + " minutes"
	if m == 1 {
		words = "1 minute"
	}
	s.renderMessage(w, http.StatusTooManyRequests, "Too many tries", "Signing in is paused",
		"There were too many wrong tries. Try again in "+words+".")
}

// handleLogout ends the browser's session.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if token := s.sessionToken(r); token != "" {
		if err := s.store.DeleteConsoleSession(r.Context(), token); err != nil {
			s.fail(w, r, "delete session", err)
			return
		}
	}
	s.clearSession(w)
	s.render(w, http.StatusOK, "message.html", &messagePage{layout: layout{Title: "Signed out"},
		Heading: "You are signed out", Text: "Close this window, or sign in again.", Href: "/login", LinkText: "Sign in"})
}
