package portal

import (
	"context"
	"net/http"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/locale"
	"github.com/securetextd/securetextd/store"
)

// Accounts is what the account page needs of the store, besides Store:
// the patient's own view of their account, and the changes they may make
// to it. *store.DB implements it. Without it (a store that keeps no
// accounts), the account page is not found, and every page offers a
// password reset as before.
type Accounts interface {
	// Account returns the account of a phone number, its addresses
	// opened, or ENOTFOUND.
	Account(ctx context.Context, phone securetextd.Phone) (*securetextd.Account, error)
	// SignIns returns the latest sign-ins, newest first.
	SignIns(ctx context.Context, phone securetextd.Phone) ([]securetextd.SignIn, error)
	// RecordSignIn adds a sign-in to the list.
	RecordSignIn(ctx context.Context, phone securetextd.Phone, in securetextd.SignIn) error
	// SetRecipientPassword replaces the password and ends every session.
	SetRecipientPassword(ctx context.Context, phone securetextd.Phone, password string) error
	// SetRecoveryAddress mails a confirmation link to a new address; the
	// address in force stays until it is confirmed.
	SetRecoveryAddress(ctx context.Context, phone securetextd.Phone, address string) error
	// CheckConfirmToken returns the number and the address a
	// confirmation link would confirm, or ENOTFOUND.
	CheckConfirmToken(ctx context.Context, token string) (securetextd.Phone, string, error)
	// ConfirmRecoveryAddress uses a confirmation link once.
	ConfirmRecoveryAddress(ctx context.Context, token string) (securetextd.Phone, error)
	// SetRecipientLanguage remembers the language chosen.
	SetRecipientLanguage(ctx context.Context, phone securetextd.Phone, tag string) error
	// SignOutEverywhere ends every session of the number.
	SignOutEverywhere(ctx context.Context, phone securetextd.Phone) (int, error)
}

var _ Accounts = (*store.DB)(nil)

// accountPage is the account page: the recovery address, the password,
// the language, the latest sign-ins, and signing out everywhere.
type accountPage struct {
	layout
	Account   *securetextd.Account
	SignIns   []securetextd.SignIn
	Languages []locale.Language
	Done      string // what the last change did, said once
	Error     string // what was wrong with the last change
	Form      string // the form Error concerns: "email" or "password"
	Email     string // the address typed, kept on an error
}

// accountDone says what a change did, by the key its redirect carries
// (?done=…): GET never changes anything, it only says so.
var accountDone = map[string]string{
	"password": "DonePassword",
	"email":    "DoneEmail",
	"language": "DoneLanguage",
}

// accountSession returns the phone number of the browser's session for
// an account route, or answers the request (not signed in, no accounts)
// and returns "".
func (s *Server) accountSession(w http.ResponseWriter, r *http.Request) securetextd.Phone {
	if s.accounts == nil {
		s.handleNotFound(w, r)
		return ""
	}
	sess, err := s.session(r)
	if err != nil {
		s.fail(w, r, "session", err)
		return ""
	}
	if sess == nil {
		s.render(w, r, http.StatusUnauthorized, "message.html", &messagePage{
			layout:  layout{Title: "SignedOutTitle"},
			Heading: s.printer(r).T("NotSignedInHeading"),
			Text:    s.printer(r).T("NotSignedInAccount"),
		})
		return ""
	}
	return sess.Phone
}

// handleAccount shows the account page.
func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request) {
	phone := s.accountSession(w, r)
	if phone == "" {
		return
	}
	s.renderAccount(w, r, http.StatusOK, phone, &accountPage{Done: doneText(s.printer(r), accountDone[r.URL.Query().Get("done")])})
}

// renderAccount fills in the account and its sign-ins and renders p.
func (s *Server) renderAccount(w http.ResponseWriter, r *http.Request, status int, phone securetextd.Phone, p *accountPage) {
	var err error
	if p.Account, err = s.accounts.Account(r.Context(), phone); err != nil {
		s.fail(w, r, "account", err)
		return
	}
	if p.SignIns, err = s.accounts.SignIns(r.Context(), phone); err != nil {
		s.fail(w, r, "sign-ins", err)
		return
	}
	p.Title, p.SignedIn, p.Languages = "AccountTitle", true, s.cat.Languages()
	s.render(w, r, status, "account.html", p)
}

// checkCurrentPassword checks the password typed on an account form. A
// wrong one counts as a wrong login (a stolen session must not become a
// way to guess the password), and a lockout pauses these forms as it
// pauses logins. It answers the request and returns false unless the
// password is right.
func (s *Server) checkCurrentPassword(w http.ResponseWriter, r *http.Request, phone securetextd.Phone, form string, p *accountPage) bool {
	wait, err := s.loginsLocked(r, phone)
	if err != nil {
		s.fail(w, r, "check lockout", err)
		return false
	}
	if wait > 0 {
		s.renderLocked(w, r, wait)
		return false
	}
	err = s.store.AuthenticateRecipient(r.Context(), phone, r.PostFormValue("current"))
	switch securetextd.ErrorCode(err) {
	case "":
		return true
	case securetextd.EUNAUTHORIZED, securetextd.ENOTFOUND:
	default:
		s.fail(w, r, "authenticate", err)
		return false
	}
	wait, _, err = s.store.Strike(r.Context(), limitLogin, s.lockoutRule(), limitKeys(r, phone)...)
	if err != nil {
		s.fail(w, r, "count wrong password", err)
		return false
	}
	s.logger.Warn("account: wrong current password", "phone", phone.Masked(), "addr", clientKey(r), "locked", wait > 0)
	if wait > 0 {
		s.renderLocked(w, r, wait)
		return false
	}
	p.Error, p.Form = s.printer(r).T("CurrentPasswordWrong"), form
	s.renderAccount(w, r, http.StatusUnauthorized, phone, p)
	return false
}

// handleAccountPassword changes the password: the current one first. The
// change signs out every browser (store.SetRecipientPassword); this one
// gets a new session.
func (s *Server) handleAccountPassword(w http.ResponseWriter, r *http.Request) {
	phone := s.accountSession(w, r)
	if phone == "" {
		return
	}
	if msg := checkPassword(r.PostFormValue("password"), r.PostFormValue("confirm")); msg != "" {
		s.renderAccount(w, r, http.StatusBadRequest, phone, &accountPage{Error: s.printer(r).T(msg), Form: "password"})
		return
	}
	if !s.checkCurrentPassword(w, r, phone, "password", &accountPage{}) {
		return
	}
	err := s.accounts.SetRecipientPassword(r.Context(), phone, r.PostFormValue("password"))
	if securetextd.ErrorCode(err) == securetextd.EINVALID {
		s.renderAccount(w, r, http.StatusBadRequest, phone, &accountPage{Error: s.printer(r).T("PasswordShort"), Form: "password"})
		return
	}
	if err != nil {
		s.fail(w, r, "change password", err)
		return
	}
	s.logger.Info("password changed", "phone", phone.Masked())
	if err := s.setSession(w, r, phone); err != nil {
		s.fail(w, r, "create session", err)
		return
	}
	http.Redirect(w, r, "/account?done=password", http.StatusSeeOther)
}

// handleAccountEmail mails a confirmation link to a new recovery address,
// behind the password.
func (s *Server) handleAccountEmail(w http.ResponseWriter, r *http.Request) {
	phone := s.accountSession(w, r)
	if phone == "" {
		return
	}
	email, problem := checkEmail(r.PostFormValue("email"))
	if problem != "" {
		s.renderAccount(w, r, http.StatusBadRequest, phone, &accountPage{Error: s.printer(r).T(problem), Form: "email", Email: email})
		return
	}
	if !s.checkCurrentPassword(w, r, phone, "email", &accountPage{Email: email}) {
		return
	}
	err := s.accounts.SetRecoveryAddress(r.Context(), phone, email)
	if securetextd.ErrorCode(err) == securetextd.EINVALID {
		s.renderAccount(w, r, http.StatusBadRequest, phone, &accountPage{Error: s.printer(r).T("EmailInvalid"), Form: "email", Email: email})
		return
	}
	if err != nil {
		s.fail(w, r, "set recovery address", err)
		return
	}
	s.logger.Info("recovery address changed, waiting for confirmation", "phone", phone.Masked())
	http.Redirect(w, r, "/account?done=email", http.StatusSeeOther)
}

// handleAccountLanguage remembers the language chosen.
func (s *Server) handleAccountLanguage(w http.ResponseWriter, r *http.Request) {
	phone := s.accountSession(w, r)
	if phone == "" {
		return
	}
	err := s.accounts.SetRecipientLanguage(r.Context(), phone, r.PostFormValue("language"))
	if securetextd.ErrorCode(err) == securetextd.EINVALID {
		s.renderAccount(w, r, http.StatusBadRequest, phone, &accountPage{Error: s.printer(r).T("LanguageUnknown"), Form: "language"})
		return
	}
	if err != nil {
		s.fail(w, r, "set language", err)
		return
	}
	s.setLangCookie(w, r.PostFormValue("language"))
	http.Redirect(w, r, "/account?done=language", http.StatusSeeOther)
}

// handleSignOutEverywhere ends every session of the account, this
// browser's too.
func (s *Server) handleSignOutEverywhere(w http.ResponseWriter, r *http.Request) {
	phone := s.accountSession(w, r)
	if phone == "" {
		return
	}
	n, err := s.accounts.SignOutEverywhere(r.Context(), phone)
	if err != nil {
		s.fail(w, r, "sign out everywhere", err)
		return
	}
	s.logger.Info("signed out everywhere", "phone", phone.Masked(), "sessions", n)
	s.clearSession(w)
	s.renderMessage(w, r, http.StatusOK, "SignedOutEverywhereTitle", "SignedOutEverywhereHeading", "SignedOutEverywhereText")
}

// recordSignIn adds this browser's sign-in to the account page's list. It
// is best effort: the patient is signed in whether or not the list is.
func (s *Server) recordSignIn(r *http.Request, phone securetextd.Phone) {
	if s.accounts == nil {
		return
	}
	in := signInOf(r)
	in.Time = time.Now()
	if err := s.accounts.RecordSignIn(r.Context(), phone, in); err != nil {
		s.logger.Error("record sign-in", "phone", phone.Masked(), "err", err)
	}
}

// doneText writes what a change did, by its message id; "" for none.
func doneText(l *locale.Printer, id string) string {
	if id == "" {
		return ""
	}
	return l.T(id)
}
