package portal

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/securetextd/securetextd"
)

// handleSetup sets the first password of the link's phone number, with a
// recovery address if one is given (the store mails it a confirmation
// link; resets go to it only once it is confirmed), and signs the browser
// in. The account belongs to the
// number: every later link to it asks for the same password.
func (s *Server) handleSetup(w http.ResponseWriter, r *http.Request) {
	token, conv := s.linkConversation(w, r)
	if conv == nil {
		return
	}
	// A password set meanwhile is the one that counts; asking first
	// spares a costly hash that the store would only refuse.
	setup, err := s.needsSetup(r, conv.Phone)
	if err != nil {
		s.fail(w, r, "setup recipient", err)
		return
	}
	if !setup {
		s.renderLink(w, r, http.StatusConflict, conv.Phone, &linkPage{Token: token, Conflict: true})
		return
	}
	// The second factor comes first (factor.go): a browser that owes a
	// code goes back to the link, which asks for it, and a date of birth
	// kept for the number must be given right.
	if code, err := s.needsCode(r, conv.Phone); err != nil {
		s.fail(w, r, "setup device", err)
		return
	} else if code {
		linkAgain(w, r, token)
		return
	}
	askDOB, err := s.hasDOB(r, conv.Phone)
	if err != nil {
		s.fail(w, r, "setup date of birth", err)
		return
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	if askDOB {
		if wait, err := s.loginsLocked(r, conv.Phone); err != nil {
			s.fail(w, r, "check lockout", err)
			return
		} else if wait > 0 {
			s.renderLocked(w, r, wait)
			return
		}
		problem, done := s.checkDOB(w, r, conv.Phone, conv)
		if done {
			return
		}
		if problem != "" {
			s.renderLink(w, r, http.StatusUnauthorized, conv.Phone, &linkPage{Token: token, Setup: true, AskDOB: true, Error: problem, Email: email})
			return
		}
	}
	// The address may be left out: the page says what that means.
	problem := ""
	if email != "" {
		email, problem = checkEmail(email)
	}
	if msg := checkPassword(r.PostFormValue("password"), r.PostFormValue("confirm")); msg != "" {
		problem = msg
	}
	if problem != "" {
		s.renderLink(w, r, http.StatusBadRequest, conv.Phone, &linkPage{Token: token, Setup: true, AskDOB: askDOB, Error: s.printer(r).T(problem), Email: email})
		return
	}
	err = s.store.CreateRecipient(r.Context(), conv.Phone, r.PostFormValue("password"), email)
	switch securetextd.ErrorCode(err) {
	case "":
	case securetextd.ECONFLICT:
		// Set meanwhile, in another tab or by someone else holding the
		// link: the password that was set is the one that counts.
		s.renderLink(w, r, http.StatusConflict, conv.Phone, &linkPage{Token: token, Conflict: true})
		return
	case securetextd.EINVALID:
		// What the checks above let through and the store refuses: the
		// address, or the password.
		problem := "PasswordShort"
		if email != "" {
			problem = "EmailInvalid"
		}
		s.renderLink(w, r, http.StatusBadRequest, conv.Phone, &linkPage{Token: token, Setup: true, AskDOB: askDOB, Error: s.printer(r).T(problem), Email: email})
		return
	default:
		s.fail(w, r, "create recipient", err)
		return
	}
	s.logger.Info("password set", "phone", conv.Phone.Masked(), "conversation", conv.ID, "recovery", email != "")
	if err := s.setSession(w, r, conv.Phone); err != nil {
		s.fail(w, r, "create session", err)
		return
	}
	s.recordSignIn(r, conv.Phone)
	http.Redirect(w, r, "/c/"+strconv.FormatInt(conv.ID, 10), http.StatusSeeOther)
}
