package portal

import (
	"net/http"

	"github.com/securetextd/securetextd"
)

// maxTokenLen bounds the token read from a URL before it is hashed.
const maxTokenLen = 64

// handleLink answers a link from a text message. It only says that a
// message is waiting: reading it is the next step, behind a password.
func (s *Server) handleLink(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if len(token) > maxTokenLen {
		s.handleNotFound(w, r)
		return
	}
	_, err := s.links.ConversationByToken(r.Context(), token)
	switch securetextd.ErrorCode(err) {
	case "":
	case securetextd.ENOTFOUND:
		s.handleNotFound(w, r)
		return
	default:
		s.logger.Error("link lookup", "err", err)
		s.render(w, http.StatusInternalServerError, "message.html", page{
			Title:   "Try again later",
			Heading: "Something went wrong on our side",
			Text:    "Please try the link again in a few minutes.",
		})
		return
	}
	s.render(w, http.StatusOK, "message.html", page{
		Title:   "A secure message is waiting",
		Heading: "You have a secure message",
		Text:    s.cfg.Org + " sent you a secure message. Only you can open it, with your password.",
	})
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusNotFound, "message.html", page{
		Title:   "Link not found",
		Heading: "This link does not work",
		Text:    "Check that you opened the whole link from your text message, or ask the sender to write again.",
	})
}

func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "message.html", page{
		Title:   "Secure messages",
		Heading: "Secure messages",
		Text:    "Open the link in the text message you received to read your secure message.",
	})
}
