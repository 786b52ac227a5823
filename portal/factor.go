package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// The second factor. A link can be forwarded, seen on a lock screen or
// typed on someone else's phone, so holding it is not enough:
//
//   - With Config.SecondFactor "sms-code", a browser the account has not
//     seen (the first visit's included) proves it is the patient's with a
//     one-time code texted to the phone (emailed, to a recipient reached
//     by email) when the patient asks for it (POST /m/{token}/code; a GET
//     never sends one), before the password is set or asked. The browser that gives the right code
//     (POST /m/{token}/verify) is remembered for Config.RememberDevice by
//     a device cookie, random and kept hashed, as the session's is.
//   - A date of birth that the sender chose (the API's
//     verify.date_of_birth) is asked with the first password and with
//     every password reset, before anything is shown.
//
// Every wrong code and every wrong date counts as a wrong password toward
// the lockout (limits.go), and each outcome is an audit event. Codes are
// sent through a CodeSender, which picks the channel (store.Codes: a
// text, or an email); the pages differ only in what they call it.

// CodeSender sends and checks one-time codes. store.DB.Codes() is the
// one that texts them to a phone and emails them to an address.
type CodeSender interface {
	// SendCode makes a fresh code for phone's account and sends it. It is
	// a *store.CodeLimitError (ELIMIT) when one was sent too recently or
	// too many were.
	SendCode(ctx context.Context, phone securetextd.Phone) error
	// CheckCode uses phone's live code: nil when right (then it is used
	// up), EUNAUTHORIZED when wrong, ENOTFOUND when none is live.
	CheckCode(ctx context.Context, phone securetextd.Phone, code string) error
}

// Factors is what the second factor needs of the store beyond Store.
// *store.DB implements it. A store without it (a test's fake) asks for no
// date of birth, and cannot serve SecondFactor "sms-code".
type Factors interface {
	// RememberDevice remembers the browser holding token (or a new one,
	// when token is not live) as proven for phone, and returns the token
	// the browser is to keep.
	RememberDevice(ctx context.Context, phone securetextd.Phone, token string, validFor time.Duration) (string, error)
	// KnownDevice reports whether token is a live device token of phone.
	KnownDevice(ctx context.Context, phone securetextd.Phone, token string) (bool, error)
	// HasDateOfBirth reports whether a date of birth is kept for phone.
	HasDateOfBirth(ctx context.Context, phone securetextd.Phone) (bool, error)
	// CheckDateOfBirth checks a date (YYYY-MM-DD): EUNAUTHORIZED when
	// wrong.
	CheckDateOfBirth(ctx context.Context, phone securetextd.Phone, dob string) error
}

var _ Factors = (*store.DB)(nil)
var _ CodeSender = store.Codes{}

// Second factors, as Config.SecondFactor names them.
const (
	SecondFactorNone    = "none"
	SecondFactorSMSCode = securetextd.FactorSMSCode
)

// DefaultRememberDevice is how long a browser that gave a code is
// remembered, when Config.RememberDevice is zero.
const DefaultRememberDevice = 30 * 24 * time.Hour

// limitDOB counts wrong dates of birth given with a password reset, which
// the login lockout does not stop (a reset is the way out of it).
const limitDOB = "dob"

// codeAddrRule bounds the codes one client address may ask for, whatever
// the numbers: the store bounds those per number (store.CodesPerHour),
// this keeps one address holding many links from running up texts.
var codeAddrRule = store.StrikeRule{Max: 20, Window: time.Hour}

// limitCodeAsked is the strike kind of codeAddrRule.
const limitCodeAsked = "code-asked"

// codePage asks for a one-time code: first to send one, then to type it.
type codePage struct {
	layout
	Token  string
	Ending string // the phone number's last two digits
	Email  string // the address, masked, when the code goes by email
	Sent   bool   // a code was sent: ask for it
	Error  string
	Notice string
	Left   int
}

// deviceCookieName is the device cookie's name: __Host- over HTTPS, as the
// session cookie's.
func (s *Server) deviceCookieName() string {
	if s.cfg.Secure {
		return "__Host-device"
	}
	return "device"
}

// deviceToken returns the token of the browser's device cookie, or "".
func (s *Server) deviceToken(r *http.Request) string {
	c, err := r.Cookie(s.deviceCookieName())
	if err != nil || !validToken(c.Value) {
		return ""
	}
	return c.Value
}

// needsCode reports whether the browser must give a one-time code for
// phone before a password is set or asked.
func (s *Server) needsCode(r *http.Request, phone securetextd.Phone) (bool, error) {
	if s.cfg.SecondFactor != SecondFactorSMSCode {
		return false, nil
	}
	known, err := s.factors.KnownDevice(r.Context(), phone, s.deviceToken(r))
	return !known, err
}

// hasDOB reports whether a date of birth is to be asked for phone.
func (s *Server) hasDOB(r *http.Request, phone securetextd.Phone) (bool, error) {
	if s.factors == nil {
		return false, nil
	}
	return s.factors.HasDateOfBirth(r.Context(), phone)
}

// renderCode renders the code page of the link token for conv.
func (s *Server) renderCode(w http.ResponseWriter, r *http.Request, status int, token string, conv *securetextd.Conversation, p *codePage) {
	p.Title, p.Token = "CodeTitle", token
	if conv.Phone.IsEmail() {
		p.Email = conv.Phone.Masked()
	} else if n := len(conv.Phone); n >= 2 {
		p.Ending = string(conv.Phone[n-2:])
	}
	s.render(w, r, status, "code.html", p)
}

// linkAgain sends the browser back to the link's page, which shows the
// step it is at.
func linkAgain(w http.ResponseWriter, r *http.Request, token string) {
	http.Redirect(w, r, "/m/"+token, http.StatusSeeOther)
}

// handleSendCode texts a one-time code to the link's phone number (or
// emails it to the link's address) and asks for it. Asking again within a minute shows the form for the code already
// sent.
func (s *Server) handleSendCode(w http.ResponseWriter, r *http.Request) {
	token, conv := s.linkConversation(w, r)
	if conv == nil {
		return
	}
	need, err := s.needsCode(r, conv.Phone)
	if err != nil {
		s.fail(w, r, "known device", err)
		return
	}
	if !need {
		linkAgain(w, r, token)
		return
	}
	if wait, err := s.loginsLocked(r, conv.Phone); err != nil {
		s.fail(w, r, "check lockout", err)
		return
	} else if wait > 0 {
		s.renderLocked(w, r, wait)
		return
	}
	allowed, err := s.store.StrikeUnlessLocked(r.Context(), limitCodeAsked, codeAddrRule, "addr:"+clientKey(r))
	if err != nil {
		s.fail(w, r, "code limit", err)
		return
	}
	if !allowed {
		s.logger.Warn("code limited", "phone", conv.Phone.Masked(), "addr", clientKey(r))
		s.renderCode(w, r, http.StatusTooManyRequests, token, conv, &codePage{Sent: true,
			Error: s.printer(r).T("CodeTooMany")})
		return
	}
	err = s.cfg.Codes.SendCode(r.Context(), conv.Phone)
	var limited *store.CodeLimitError
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(int(limited.Wait.Seconds()+0.999)))
		s.renderCode(w, r, http.StatusTooManyRequests, token, conv, &codePage{Sent: true,
			Notice: s.printer(r).T("CodeJustSent", "Wait", s.printer(r).Seconds(limited.Wait))})
		return
	case err != nil:
		s.fail(w, r, "send code", err)
		return
	}
	s.logger.Info("code sent", "phone", conv.Phone.Masked(), "conversation", conv.ID)
	s.renderCode(w, r, http.StatusOK, token, conv, &codePage{Sent: true})
}

// handleVerifyCode checks the code typed. The right one remembers the
// browser for the number and goes on to the password; a wrong one counts
// as a wrong password.
func (s *Server) handleVerifyCode(w http.ResponseWriter, r *http.Request) {
	token, conv := s.linkConversation(w, r)
	if conv == nil {
		return
	}
	need, err := s.needsCode(r, conv.Phone)
	if err != nil {
		s.fail(w, r, "known device", err)
		return
	}
	if !need {
		linkAgain(w, r, token)
		return
	}
	if wait, err := s.loginsLocked(r, conv.Phone); err != nil {
		s.fail(w, r, "check lockout", err)
		return
	} else if wait > 0 {
		s.audit(r, securetextd.AuditLoginLocked, conv, "code while locked")
		s.renderLocked(w, r, wait)
		return
	}
	code := strings.Join(strings.Fields(r.PostFormValue("code")), "") // "482 913" as typed
	err = s.cfg.Codes.CheckCode(r.Context(), conv.Phone, code)
	switch securetextd.ErrorCode(err) {
	case "":
	case securetextd.EUNAUTHORIZED, securetextd.ENOTFOUND:
		problem := s.printer(r).T("CodeWrong")
		if conv.Phone.IsEmail() {
			problem = s.printer(r).T("CodeWrongEmail")
		}
		detail := codeFactor(conv.Phone) + ": wrong"
		if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
			problem = s.printer(r).T("CodeExpired")
			detail = codeFactor(conv.Phone) + ": none live"
		}
		wait, left, ok := s.factorFailed(w, r, conv.Phone, conv, detail)
		if !ok || wait > 0 {
			return
		}
		p := &codePage{Sent: true, Error: problem}
		if left <= 2 {
			p.Left = left
		}
		s.renderCode(w, r, http.StatusUnauthorized, token, conv, p)
		return
	default:
		s.fail(w, r, "check code", err)
		return
	}
	s.auditFactor(r, conv.Phone, conv, securetextd.AuditFactorOK, codeFactor(conv.Phone))
	device, err := s.factors.RememberDevice(r.Context(), conv.Phone, s.deviceToken(r), s.cfg.RememberDevice)
	if err != nil {
		s.fail(w, r, "remember device", err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     s.deviceCookieName(),
		Value:    device,
		Path:     "/",
		MaxAge:   int(s.cfg.RememberDevice.Seconds()),
		Secure:   s.cfg.Secure,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
	s.logger.Info("code right", "phone", conv.Phone.Masked(), "conversation", conv.ID)
	linkAgain(w, r, token)
}

// codeFactor names the code factor of phone in audit details: the text's,
// or the email's for an address.
func codeFactor(phone securetextd.Phone) string {
	if phone.IsEmail() {
		return securetextd.FactorEmailCode
	}
	return securetextd.FactorSMSCode
}

// factorFailed counts a wrong factor for phone against the login lockout
// (and a wrong date against its own count, limitDOB), records it, and
// when that locks answers the request itself. It returns the lock's
// wait, the tries left, and false when it answered the request with an
// error page.
func (s *Server) factorFailed(w http.ResponseWriter, r *http.Request, phone securetextd.Phone, conv *securetextd.Conversation, detail string) (time.Duration, int, bool) {
	keys := limitKeys(r, phone)
	wait, left, err := s.store.Strike(r.Context(), limitLogin, s.lockoutRule(), keys...)
	if err == nil && strings.HasPrefix(detail, securetextd.FactorDateOfBirth) {
		var w2 time.Duration
		var l2 int
		w2, l2, err = s.store.Strike(r.Context(), limitDOB, s.lockoutRule(), phoneLimitKey(phone))
		wait, left = max(wait, w2), min(left, l2)
	}
	if err != nil {
		// As for a wrong password: an answer the count missed is not
		// given.
		s.fail(w, r, "count wrong factor", err)
		return 0, 0, false
	}
	s.logger.Warn("factor failed", "phone", phone.Masked(), "addr", clientKey(r), "factor", detail, "locked", wait > 0)
	s.auditFactor(r, phone, conv, securetextd.AuditFactorFailed, detail)
	s.metrics().Login(LoginFailed)
	if wait > 0 {
		s.metrics().Lockout()
		s.auditFactor(r, phone, conv, securetextd.AuditLoginLocked, "until "+time.Now().Add(wait).UTC().Format(time.RFC3339))
		s.renderLocked(w, r, wait)
	}
	return wait, left, true
}

// checkDOB checks the date of birth typed into a form (fields dob-year,
// dob-month, dob-day) for phone, when one is kept. It returns "" when it
// is right or none is kept; else what to tell the recipient, having
// counted the wrong answer, or answered the request itself (done true)
// when that locked or failed.
func (s *Server) checkDOB(w http.ResponseWriter, r *http.Request, phone securetextd.Phone, conv *securetextd.Conversation) (problem string, done bool) {
	has, err := s.hasDOB(r, phone)
	if err != nil {
		s.fail(w, r, "date of birth", err)
		return "", true
	}
	if !has {
		return "", false
	}
	if wait, err := s.store.StrikesLocked(r.Context(), limitDOB, phoneLimitKey(phone)); err != nil {
		s.fail(w, r, "check lockout", err)
		return "", true
	} else if wait > 0 {
		s.renderLocked(w, r, wait)
		return "", true
	}
	dob := formDate(r)
	if dob == "" {
		// The form had no date (it was shown before the sender gave
		// one): ask, without counting.
		return s.printer(r).T("DOBMissing"), false
	}
	err = s.factors.CheckDateOfBirth(r.Context(), phone, dob)
	switch securetextd.ErrorCode(err) {
	case "":
		s.auditFactor(r, phone, conv, securetextd.AuditFactorOK, securetextd.FactorDateOfBirth)
		return "", false
	case securetextd.EUNAUTHORIZED:
		wait, left, ok := s.factorFailed(w, r, phone, conv, securetextd.FactorDateOfBirth+": wrong")
		if !ok || wait > 0 {
			return "", true
		}
		problem = s.printer(r).T("DOBWrong")
		if left <= 2 {
			problem += " " + s.printer(r).N("TriesLeft", left)
		}
		return problem, false
	default:
		s.fail(w, r, "check date of birth", err)
		return "", true
	}
}

// formDate reads the date of birth typed into a form's three fields as
// YYYY-MM-DD, or "" when they are all empty. What is not a date is
// returned as typed, to be found wrong.
func formDate(r *http.Request) string {
	y := strings.TrimSpace(r.PostFormValue("dob-year"))
	m := strings.TrimSpace(r.PostFormValue("dob-month"))
	d := strings.TrimSpace(r.PostFormValue("dob-day"))
	if y == "" && m == "" && d == "" {
		return ""
	}
	mi, err1 := strconv.Atoi(m)
	di, err2 := strconv.Atoi(d)
	if err1 != nil || err2 != nil || len(y) != 4 {
		return y + "-" + m + "-" + d
	}
	return fmt.Sprintf("%s-%02d-%02d", y, mi, di)
}

// auditFactor records an event of the second factor, done by phone's
// recipient, about conv when there is one.
func (s *Server) auditFactor(r *http.Request, phone securetextd.Phone, conv *securetextd.Conversation, event, detail string) {
	if s.life == nil {
		return
	}
	ev := securetextd.AuditEvent{Event: event, Actor: string(phone), Detail: detail}
	key := event + " " + clientKey(r) + " " + string(phone)
	if conv != nil {
		ev.ConversationID = conv.ID
	}
	recorded, err := s.life.AuditUnlessFlooded(r.Context(), ev, key, auditFloodRule)
	switch {
	case err != nil:
		s.logger.Error("audit", "event", event, "err", err)
	case !recorded:
		s.logger.Warn("audit: too many events, not recorded", "event", event, "addr", clientKey(r))
	}
}
