package console

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"html/template"
	"image/png"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/securetextd/securetextd"
)

// TOTP (RFC 6238) as every authenticator app reads it: SHA-1, six digits,
// a 30-second step, a 160-bit secret. A code is accepted for the step
// before and after the current one (clock drift), and only for a step
// later than the last one accepted (store.UseTOTPStep), so a code read
// over a shoulder cannot be used again within its window.

const (
	totpPeriod       = 30
	secretBytes      = 20
	recoveryCodes    = 10
	recoveryCodeLen  = 16 // base32 characters: 80 bits
	maxCodeFieldSize = 64
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// matchStep returns the time step of secret whose code is code, trying
// the step of now and the steps beside it, or false.
func matchStep(secret, code string, now time.Time) (int64, bool) {
	if len(code) != 6 {
		return 0, false
	}
	step := now.Unix() / totpPeriod
	for _, s := range []int64{step, step - 1, step + 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), totpOpts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

// cleanCode keeps the digits and letters of what was typed: "123 456",
// "abcd-efgh-…".
func cleanCode(s string) string {
	if len(s) > maxCodeFieldSize {
		s = s[:maxCodeFieldSize]
	}
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// codePage asks for the second factor.
type codePage struct {
	layout
	Error string
}

// pendingSession returns the session that passed the password and waits
// for its second factor, or answers the request and returns nil.
func (s *Server) pendingSession(w http.ResponseWriter, r *http.Request) *securetextd.ConsoleSession {
	sess, err := s.session(r)
	switch {
	case err != nil:
		s.fail(w, r, "session", err)
		return nil
	case sess == nil:
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	case sess.Level == securetextd.LevelSignedIn:
		http.Redirect(w, r, "/sent", http.StatusSeeOther)
		return nil
	}
	return sess
}

func (s *Server) handleCodeForm(w http.ResponseWriter, r *http.Request) {
	if s.pendingSession(w, r) == nil {
		return
	}
	s.render(w, http.StatusOK, "code.html", &codePage{layout: layout{Title: "Your code"}})
}

// handleCode checks a TOTP code or a recovery code, and completes the
// sign-in with a new session.
func (s *Server) handleCode(w http.ResponseWriter, r *http.Request) {
	sess := s.pendingSession(w, r)
	if sess == nil {
		return
	}
	r = r.WithContext(securetextd.WithOrigin(r.Context(), origin(r, sess.Address)))
	keys := limitKeys(r, sess.Address)
	if s.locked(w, r, keys) {
		return
	}
	secret, _, err := s.store.TOTPSecret(r.Context(), sess.Address)
	if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
		// Reset meanwhile: start again.
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if err != nil {
		s.fail(w, r, "totp secret", err)
		return
	}
	code, how := cleanCode(r.PostFormValue("code")), "totp"
	if isDigits(code) {
		step, ok := matchStep(secret, code, s.cfg.Now())
		if ok {
			err = s.store.UseTOTPStep(r.Context(), sess.Address, step)
		} else {
			err = securetextd.Errorf(securetextd.EUNAUTHORIZED, "wrong code")
		}
	} else {
		how = "recovery"
		_, err = s.store.UseRecoveryCode(r.Context(), sess.Address, code)
	}
	switch securetextd.ErrorCode(err) {
	case "":
	case securetextd.EUNAUTHORIZED:
		if s.strike(w, r, keys, how) {
			return
		}
		s.render(w, http.StatusUnauthorized, "code.html", &codePage{layout: layout{Title: "Your code"},
			Error: "That code is not right, or was used already. Wait for the next code and try again."})
		return
	default:
		s.fail(w, r, "check code", err)
		return
	}
	if err := s.store.ForgetStrikes(r.Context(), limitKind, keys[0]); err != nil {
		s.logger.Error("clear wrong codes", "err", err)
	}
	if err := s.startSession(w, r, sess.Address, securetextd.LevelSignedIn); err != nil {
		s.fail(w, r, "start session", err)
		return
	}
	s.signedInNow(r, sess.Address, how)
	http.Redirect(w, r, "/sent", http.StatusSeeOther)
}

// enrolPage shows a new secret as a QR code and asks for its first code.
type enrolPage struct {
	layout
	Required bool         // sign-in cannot go on without it
	QR       template.URL // a data: PNG of the otpauth:// URL
	Secret   string       // the same secret, to type in by hand
	Grouped  string       // Secret in groups of four
	Error    string
}

// recoveryPage shows the recovery codes, once.
type recoveryPage struct {
	layout
	Codes []string
}

// enrolSession returns the session and account that may enrol TOTP: a
// signed-in one, or one that passed the password and must enrol before
// it goes on. Otherwise it answers the request and returns nil.
func (s *Server) enrolSession(w http.ResponseWriter, r *http.Request) (*securetextd.ConsoleSession, *securetextd.SenderAccount) {
	sess, err := s.session(r)
	if err != nil {
		s.fail(w, r, "session", err)
		return nil, nil
	}
	if sess == nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil, nil
	}
	acct, err := s.store.SenderAccount(r.Context(), sess.Address)
	if err != nil {
		s.fail(w, r, "account", err)
		return nil, nil
	}
	if sess.Level == securetextd.LevelPassword && acct.TOTP {
		http.Redirect(w, r, "/login/code", http.StatusSeeOther)
		return nil, nil
	}
	return sess, acct
}

func (s *Server) handleEnrolForm(w http.ResponseWriter, r *http.Request) {
	sess, acct := s.enrolSession(w, r)
	if sess == nil {
		return
	}
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(randomBytes(secretBytes))
	s.renderEnrol(w, r, http.StatusOK, sess, acct, secret, "")
}

func (s *Server) renderEnrol(w http.ResponseWriter, r *http.Request, status int, sess *securetextd.ConsoleSession, acct *securetextd.SenderAccount, secret, problem string) {
	qr, err := s.qrCode(acct.Address, secret)
	if err != nil {
		s.fail(w, r, "qr code", err)
		return
	}
	p := &enrolPage{layout: layout{Title: "Set up your authenticator"}, Required: sess.Level == securetextd.LevelPassword,
		QR: qr, Secret: secret, Grouped: group(secret, 4, " "), Error: problem}
	if !p.Required {
		p.layout = layoutFor(acct, p.Title)
	}
	s.render(w, status, "enrol.html", p)
}

// qrCode renders the otpauth:// URL of secret as a PNG, inline: the
// secret never leaves for a QR service.
func (s *Server) qrCode(address, secret string) (template.URL, error) {
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", s.cfg.Org)
	v.Set("algorithm", "SHA1")
	v.Set("digits", "6")
	v.Set("period", "30")
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + s.cfg.Org + ":" + address, RawQuery: v.Encode()}
	key, err := otp.NewKeyFromURL(u.String())
	if err != nil {
		return "", err
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return "", err
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes())), nil
}

// handleEnrol checks the first code of the secret the form carries, then
// keeps the secret (sealed) with new recovery codes, shown once.
func (s *Server) handleEnrol(w http.ResponseWriter, r *http.Request) {
	sess, acct := s.enrolSession(w, r)
	if sess == nil {
		return
	}
	r = r.WithContext(securetextd.WithOrigin(r.Context(), origin(r, acct.Address)))
	secret := strings.ToUpper(strings.TrimSpace(r.PostFormValue("secret")))
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil || len(raw) != secretBytes {
		s.renderMessage(w, http.StatusBadRequest, "Try again", "This form could not be read", "Open the set-up page again.")
		return
	}
	step, ok := matchStep(secret, cleanCode(r.PostFormValue("code")), s.cfg.Now())
	if !ok {
		s.renderEnrol(w, r, http.StatusUnprocessableEntity, sess, acct, secret,
			"That code does not match. Check the time on your phone, and type the code the app shows now.")
		return
	}
	codes := make([]string, recoveryCodes)
	for i := range codes {
		codes[i] = group(rand.Text()[:recoveryCodeLen], 4, "-")
	}
	if err := s.store.EnrollTOTP(r.Context(), acct.Address, secret, step, codes); err != nil {
		s.fail(w, r, "enrol totp", err)
		return
	}
	// Enrolment ended every session of the account, this one too.
	if err := s.startSession(w, r, acct.Address, securetextd.LevelSignedIn); err != nil {
		s.fail(w, r, "start session", err)
		return
	}
	s.logger.Info("totp enrolled", "account", acct.Address)
	if sess.Level == securetextd.LevelPassword {
		s.signedInNow(r, acct.Address, "totp")
	}
	acct.TOTP = true
	s.render(w, http.StatusOK, "recovery.html", &recoveryPage{layout: layoutFor(acct, "Your recovery codes"), Codes: codes})
}

// group writes s in groups of n joined by sep.
func group(s string, n int, sep string) string {
	var parts []string
	for len(s) > n {
		parts = append(parts, s[:n])
		s = s[n:]
	}
	return strings.Join(append(parts, s), sep)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
