package portal

import (
	"net/http"
	"time"

	"github.com/securetextd/securetextd"
)

// revokePage asks the sender to confirm that a message is to be withdrawn.
// It shows the masked phone and the date, nothing of the content: mail
// scanners fetch the link too.
type revokePage struct {
	layout
	Token string
	Phone string
	Sent  time.Time
}

// handleRevokeForm answers the link in a delivery notice. Like every GET it
// changes nothing — mail scanners and link previews fetch it — it asks
// for confirmation with a form that POSTs.
func (s *Server) handleRevokeForm(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if s.life == nil || !validToken(token) {
		s.handleNotFound(w, r)
		return
	}
	conv, err := s.life.RevocationByToken(r.Context(), token)
	switch securetextd.ErrorCode(err) {
	case "":
		s.render(w, r, http.StatusOK, "revoke.html", &revokePage{
			layout: layout{Title: "RevokeTitle"},
			Token:  token,
			Phone:  conv.Phone.Masked(),
			Sent:   conv.Created,
		})
	case securetextd.EREVOKED:
		s.renderWithdrawn(w, r, conv)
	default:
		s.fail(w, r, "revocation lookup", err)
	}
}

// handleRevoke withdraws the conversation of a revocation link, at once:
// the recipient's next request, from any browser, is told that the sender
// withdrew it. Withdrawing twice is no error.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if s.life == nil || !validToken(token) {
		s.handleNotFound(w, r)
		return
	}
	conv, err := s.life.RevocationByToken(r.Context(), token)
	if err == nil {
		// The holder of the link acts for the sender it was mailed to.
		o := securetextd.OriginFrom(r.Context())
		o.Actor = conv.Sender
		conv, err = s.life.RevokeByToken(securetextd.WithOrigin(r.Context(), o), token)
	}
	switch securetextd.ErrorCode(err) {
	case "", securetextd.EREVOKED:
		s.logger.Info("conversation withdrawn", "conversation", conv.ID, "phone", conv.Phone.Masked())
		s.renderWithdrawn(w, r, conv)
	default:
		s.fail(w, r, "revoke", err)
	}
}

// renderWithdrawn tells the sender that the message is withdrawn.
func (s *Server) renderWithdrawn(w http.ResponseWriter, r *http.Request, conv *securetextd.Conversation) {
	s.render(w, r, http.StatusOK, "message.html", &messagePage{
		layout:  layout{Title: "WithdrawnTitle"},
		Heading: s.printer(r).T("RevokedHeading"),
		Text:    s.printer(r).T("RevokedText", "Phone", conv.Phone.Masked()),
	})
}
