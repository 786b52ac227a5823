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
	if !p.Setup {
		wait, err := s.loginsLocked(r, conv.Phone)
		if err != nil {
			s.fail(w, r, "link lockout", err)
			return
		}
		if wait > 0 {
			p.Locked = waitFor(wait)
		}
	}
	s.renderLink(w, http.StatusOK, p)
}

// needsSetup reports whether phone has no password yet.
func (s *Server) needsSetup(r *http.Request, phone securetextd.Phone) (bool, error) {
	_, err := s.store.Recipient(r.Context(), phone)
	if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
		return true, nil
	}
	return false, err
}

func (s *Server) renderLink(w http.ResponseWriter, status int, p *linkPage) {
	switch {
	case p.Setup:
		p.Title = "Choose a password"
	case p.Locked != "":
		p.Title = "Too many tries"
	default:
		p.Title = "Enter your password"
	}
	s.render(w, status, "link.html", p)
}

func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "message.html", &messagePage{
		layout:   layout{Title: "Secure messages"},
		Heading:  "Secure messages",
		Text:     "Open the link in the text message you received to read your secure message.",
		Href:     "/inbox",
		LinkText: "Your messages",
	})
}
