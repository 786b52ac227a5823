package portal

import (
	"net/http"

	"github.com/securetextd/securetextd"
)

// notFoundPage is the one page for everything that does not exist or is
// not for this browser: unknown links, altered tokens, other people's
// conversations and files, unknown paths. Its bytes never vary, so a
// guesser cannot tell these cases apart.
func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusNotFound, "notfound.html", &messagePage{layout: layout{Title: "NotFoundTitle"}})
}

// fail is the portal's one translation point for errors: the codes of
// securetextd.Error become a status and a page; anything else is logged
// under an id that the page shows, and the client learns nothing more.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	switch securetextd.ErrorCode(err) {
	case securetextd.ENOTFOUND, securetextd.EFORBIDDEN:
		s.handleNotFound(w, r)
		return
	case securetextd.EEXPIRED, securetextd.EREVOKED:
		s.renderEnded(w, r, err)
		return
	case securetextd.EUNAVAILABLE, securetextd.ESTORAGE:
		// The database is down or failing over, or the disk is full:
		// the page asks to come back, and so does Retry-After, for a
		// proxy or load balancer in front.
		s.logger.Warn(op, "err", err)
		w.Header().Set("Retry-After", "60")
		s.renderMessage(w, r, http.StatusServiceUnavailable, "BusyTitle", "BusyHeading", "BusyText")
		return
	}
	id := securetextd.NewErrorID()
	s.logger.Error(op, "error_id", id, "err", err)
	s.render(w, r, http.StatusInternalServerError, "message.html", &messagePage{
		layout:  layout{Title: "BusyTitle"},
		Heading: s.printer(r).T("ErrorHeading"),
		Text:    s.printer(r).T("ErrorText", "ID", id),
	})
}
