package portal

import (
	"net/http"
	"strconv"

	"github.com/securetextd/securetextd"
)

// linkPage is the page a link opens: who is writing, and the next step.
type linkPage struct {
	layout
	Token    string
	Setup    bool   // no password yet for this number: choose one
	Error    string // what was wrong with the last attempt
	Email    string // the recovery address typed, kept on an error
	Left     int    // tries left before a lockout, when few
	Conflict bool   // a password was set meanwhile
	Locked   string // logins are paused for this long: "12 minutes"
	AskDOB   bool   // the sender gave a date of birth: ask it with the first password
	Phone    string // the number, E.164: the username of password managers
	NoReset  bool   // no confirmed recovery address: ask the sender

	// ByEmail is set for an email recipient, whose account is their
	// address rather than a phone number.
	ByEmail bool
}

// validToken reports whether s can be a token of ours (base64url, not
// too long), so that garbage never reaches the store.
func validToken(s string) bool {
	if s == "" || len(s) > maxTokenLen {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// linkConversation returns the conversation of the link in the request's
// path, or answers the request itself (404, or an error page) and returns
// nil.
func (s *Server) linkConversation(w http.ResponseWriter, r *http.Request) (string, *securetextd.Conversation) {
	token := r.PathValue("token")
	if !validToken(token) {
		s.handleNotFound(w, r)
		return "", nil
	}
	conv, err := s.store.ConversationByToken(r.Context(), token)
	if err != nil {
		s.fail(w, r, "link lookup", err)
		return "", nil
	}
	return token, conv
}

// handleLink answers a link from a text message. It never changes
// anything and never shows content, because link previews fetch it too:
// it says who is writing, and asks for a password (or says for how long
// signing in is paused, before anyone types one), or goes straight to the
// conversation when this browser is signed in for this number.
func (s *Server) handleLink(w http.ResponseWriter, r *http.Request) {
	token, conv := s.linkConversation(w, r)
	if conv == nil {
		return
	}
	sess, err := s.session(r)
	if err != nil {
		s.fail(w, r, "link session", err)
		return
	}
	s.audit(r, securetextd.AuditLinkOpened, conv, "")
	if sess != nil && sess.Phone == conv.Phone {
		http.Redirect(w, r, "/c/"+strconv.FormatInt(conv.ID, 10), http.StatusSeeOther)
		return
	}
	p := &linkPage{Token: token, ByEmail: conv.Phone.IsEmail()}
	p.Setup, err = s.needsSetup(r, conv.Phone)
	if err != nil {
		s.fail(w, r, "link recipient", err)
		return
	}
	if p.Setup && p.ByEmail {
		// An email recipient's own address is where a reset link goes
		// unless they give another.
		p.Email = string(conv.Phone)
	}
	code, err := s.needsCode(r, conv.Phone)
	if err != nil {
		s.fail(w, r, "link device", err)
		return
	}
	if p.Setup {
		if p.AskDOB, err = s.hasDOB(r, conv.Phone); err != nil {
			s.fail(w, r, "link date of birth", err)
			return
		}
	}
	// A first password with nothing to check has nothing to guess: only
	// a step that checks something is paused by the lockout.
	if !p.Setup || code || p.AskDOB {
		wait, err := s.loginsLocked(r, conv.Phone)
		if err != nil {
			s.fail(w, r, "link lockout", err)
			return
		}
		if wait > 0 {
			p.Locked = s.printer(r).Duration(wait)
			p.Setup = false
		}
	}
	if code && p.Locked == "" {
		// A browser the account has not seen: the code first. The
		// page offers to send it; a GET sends nothing (factor.go).
		s.renderCode(w, r, http.StatusOK, token, conv, &codePage{})
		return
	}
	s.renderLink(w, r, http.StatusOK, conv.Phone, p)
}

// needsSetup reports whether phone has no password yet.
func (s *Server) needsSetup(r *http.Request, phone securetextd.Phone) (bool, error) {
	_, err := s.store.Recipient(r.Context(), phone)
	if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
		return true, nil
	}
	return false, err
}

// noReset reports whether phone's account has no confirmed recovery
// address, so that a reset cannot help and the page says to ask the
// sender instead. Whoever holds a link to the number may learn it.
func (s *Server) noReset(r *http.Request, phone securetextd.Phone) (bool, error) {
	if s.accounts == nil {
		return false, nil
	}
	a, err := s.accounts.Account(r.Context(), phone)
	if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !a.Confirmed, nil
}

// renderLink renders the link page of phone's conversation.
func (s *Server) renderLink(w http.ResponseWriter, r *http.Request, status int, phone securetextd.Phone, p *linkPage) {
	p.Phone = string(phone)
	if !p.Setup {
		var err error
		if p.NoReset, err = s.noReset(r, phone); err != nil {
			// The page still works; it offers a reset that may not come.
			s.logger.Error("link account", "phone", phone.Masked(), "err", err)
		}
	}
	switch {
	case p.Setup:
		p.Title = "ChoosePassword"
	case p.Locked != "":
		p.Title = "TooManyTries"
	default:
		p.Title = "EnterPasswordTitle"
	}
	s.render(w, r, status, "link.html", p)
}

func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "message.html", &messagePage{
		layout:   layout{Title: "HomeTitle"},
		Heading:  s.printer(r).T("HomeTitle"),
		Text:     s.printer(r).T("HomeText"),
		Href:     "/inbox",
		LinkText: s.printer(r).T("InboxTitle"),
	})
}
