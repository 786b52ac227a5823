package portal

import (
	"net/http"
	"slices"

	"github.com/securetextd/securetextd"
)

// inboxPage lists every open conversation of the signed-in phone number,
// newest first, so that a patient who hears from two clinicians finds
// both in one place.
type inboxPage struct {
	layout
	Entries []securetextd.InboxEntry
}

// handleInbox shows the inbox of the browser's session.
func (s *Server) handleInbox(w http.ResponseWriter, r *http.Request) {
	sess, err := s.session(r)
	if err != nil {
		s.fail(w, r, "session", err)
		return
	}
	if sess == nil {
		s.render(w, r, http.StatusUnauthorized, "message.html", &messagePage{
			layout:   layout{Title: "SignedOutTitle"},
			Heading:  s.printer(r).T("NotSignedInHeading"),
			Text:     s.printer(r).T("NotSignedInInbox"),
			Href:     "/reset",
			LinkText: s.printer(r).T("ForgotPassword"),
		})
		return
	}
	entries, err := s.store.Inbox(r.Context(), sess.Phone)
	if err != nil {
		s.fail(w, r, "inbox", err)
		return
	}
	slices.SortStableFunc(entries, func(a, b securetextd.InboxEntry) int {
		return b.Conversation.LastActivity.Compare(a.Conversation.LastActivity)
	})
	s.render(w, r, http.StatusOK, "inbox.html", &inboxPage{layout: layout{Title: "InboxTitle", SignedIn: true, Zone: zoneOf(sess.Phone, s.cfg.Location)}, Entries: entries})
}
