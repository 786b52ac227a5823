package portal

import (
	"net/http"
	"strings"

	"github.com/securetextd/securetextd"
)

// resetPage asks for the phone number whose password to reset.
type resetPage struct {
	layout
}

// newPasswordPage asks for the new password, behind a reset link.
type newPasswordPage struct {
	layout
	Token  string
	Error  string
	AskDOB bool   // the sender gave a date of birth: ask it first (factor.go)
	Phone  string // E.164: the username of password managers
}

func (s *Server) handleResetForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "reset.html", &resetPage{layout{Title: "ResetTitle"}})
}

// handleResetRequest emails a reset link to the recovery address of the
// number typed. It answers the same page whatever was typed (a number
// with an account or without, a typo, too many requests), so that it
// tells nobody which numbers have an account. Requests are limited per
// client address and per number.
func (s *Server) handleResetRequest(w http.ResponseWriter, r *http.Request) {
	l := s.printer(r)
	defer s.render(w, r, http.StatusOK, "message.html", &messagePage{layout: layout{Title: "CheckEmail"},
		Heading: l.T("CheckEmail"), Text: l.T("CheckEmailText", "Valid", l.Duration(s.cfg.ResetValidFor))})
	phone, err := s.cfg.ParsePhone(strings.TrimSpace(r.PostFormValue("phone")))
	if err != nil {
		return
	}
	allowed, err := s.store.StrikeUnlessLocked(r.Context(), limitReset, s.lockoutRule(), limitKeys(r, phone)...)
	if err != nil {
		s.logger.Error("reset request limit", "phone", phone.Masked(), "err", err)
		return
	}
	if !allowed {
		s.logger.Warn("reset request limited", "phone", phone.Masked(), "addr", clientKey(r))
		return
	}
	if err := s.store.RequestPasswordReset(r.Context(), phone, s.cfg.ResetValidFor); err != nil {
		// The page is the same; the operator sees the failure.
		s.logger.Error("reset request", "phone", phone.Masked(), "err", err)
		return
	}
	s.logger.Info("reset requested", "phone", phone.Masked())
}

// resetToken returns a reset link's phone number, or answers the request
// with the 404 look and a line saying that the link has expired or was
// used.
func (s *Server) resetToken(w http.ResponseWriter, r *http.Request) (string, securetextd.Phone) {
	token := r.PathValue("token")
	var phone securetextd.Phone
	var err error = securetextd.Errorf(securetextd.ENOTFOUND, "bad token")
	if validToken(token) {
		phone, err = s.store.CheckResetToken(r.Context(), token)
	}
	switch securetextd.ErrorCode(err) {
	case "":
		return token, phone
	case securetextd.ENOTFOUND:
		s.resetExpired(w, r)
	default:
		s.fail(w, r, "check reset token", err)
	}
	return "", ""
}

// resetExpired answers a reset link that is unknown, used or expired: the
// 404 page, with one line more.
func (s *Server) resetExpired(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusNotFound, "notfound.html", &messagePage{
		layout: layout{Title: "NotFoundTitle"},
		Notice: s.printer(r).T("ResetLinkExpired"),
	})
}

// handleResetToken shows the new-password form of a valid reset link.
// Like every GET it changes nothing: the token is used by the POST.
func (s *Server) handleResetToken(w http.ResponseWriter, r *http.Request) {
	token, phone := s.resetToken(w, r)
	if phone == "" {
		return
	}
	askDOB, err := s.hasDOB(r, phone)
	if err != nil {
		s.fail(w, r, "reset date of birth", err)
		return
	}
	s.render(w, r, http.StatusOK, "newpassword.html", &newPasswordPage{layout: layout{Title: "NewPasswordTitle"}, Token: token, AskDOB: askDOB, Phone: string(phone)})
}

// handleResetPassword sets the new password, signs the browser in, and
// opens the inbox.
func (s *Server) handleResetPassword(w http.ResponseWriter, r *http.Request) {
	token, phone := s.resetToken(w, r)
	if phone == "" {
		return
	}
	// The date of birth the sender gave, before anything else: a reset
	// link in someone else's mailbox opens nothing without it. Wrong
	// dates count toward the lockout, and on their own count (limitDOB),
	// since a reset is the way out of a lockout and is not paused by it.
	askDOB, err := s.hasDOB(r, phone)
	if err != nil {
		s.fail(w, r, "reset date of birth", err)
		return
	}
	username := string(phone) // for the forms below, whatever ResetPassword returns
	problem, done := s.checkDOB(w, r, phone, nil)
	if done {
		return
	}
	if problem == "" {
		if problem = checkPassword(r.PostFormValue("password"), r.PostFormValue("confirm")); problem != "" {
			problem = s.printer(r).T(problem)
		}
	}
	if problem != "" {
		s.render(w, r, http.StatusBadRequest, "newpassword.html", &newPasswordPage{layout: layout{Title: "NewPasswordTitle"}, Token: token, Error: problem, AskDOB: askDOB, Phone: username})
		return
	}
	phone, err = s.store.ResetPassword(r.Context(), token, r.PostFormValue("password"))
	switch securetextd.ErrorCode(err) {
	case securetextd.EINVALID:
		s.render(w, r, http.StatusBadRequest, "newpassword.html", &newPasswordPage{layout: layout{Title: "NewPasswordTitle"}, Token: token, Error: s.printer(r).T("PasswordShort"), AskDOB: askDOB, Phone: username})
		return
	case securetextd.ENOTFOUND:
		// Used meanwhile, or expired while the form was open.
		s.resetExpired(w, r)
		return
	case "":
	default:
		s.fail(w, r, "reset password", err)
		return
	}
	// A reset ends the lockout it may have followed: the number's, and
	// that of the address the reset came from (the patient's own phone,
	// usually), or the next login, with the new password, would be
	// refused. Each clearing takes a reset link from the recovery
	// mailbox, and reset requests are limited per address too, so an
	// address cannot clear its count this way more than a few times in a
	// window.
	if err := s.store.ForgetStrikes(r.Context(), limitLogin, limitKeys(r, phone)...); err != nil {
		s.logger.Error("clear wrong passwords", "phone", phone.Masked(), "err", err)
	}
	if askDOB {
		// Right, as the reset above needed it: the lockout it may have
		// followed ends with the others.
		if err := s.store.ForgetStrikes(r.Context(), limitDOB, phoneLimitKey(phone)); err != nil {
			s.logger.Error("clear wrong dates of birth", "phone", phone.Masked(), "err", err)
		}
	}
	s.logger.Info("password reset", "phone", phone.Masked())
	if code, err := s.needsCode(r, phone); err != nil {
		s.fail(w, r, "reset device", err)
		return
	} else if code {
		// A browser the account has not seen signs in through a link,
		// which asks for the code: the reset link came by email, and
		// the code is what proves the phone.
		text := s.printer(r).T("PasswordChangedText")
		if phone.IsEmail() {
			text = s.printer(r).T("PasswordChangedTextEmail")
		}
		s.render(w, r, http.StatusOK, "message.html", &messagePage{
			layout:  layout{Title: "PasswordChangedTitle"},
			Heading: s.printer(r).T("PasswordChangedHeading"),
			Text:    text,
		})
		return
	}
	if err := s.setSession(w, r, phone); err != nil {
		s.fail(w, r, "create session", err)
		return
	}
	s.recordSignIn(r, phone)
	http.Redirect(w, r, "/inbox", http.StatusSeeOther)
}
