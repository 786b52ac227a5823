package portal

import (
	"errors"
	"net/http"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// replyRefused answers a reply the malware scanner stopped, and reports
// whether err was such a refusal. The conversation is shown again with
// what happened above the reply form and the typed text back in it, so
// that the patient can send it again without the file (the browser does
// not let a page choose files again for them):
//
//   - a finding (EMALWARE): 422, naming the file and what was found;
//   - a scanner that gave no verdict (EUNSCANNED): 503, try again.
//
// Nothing of the reply was stored. The log has what was found, never the
// file's name.
func (s *Server) replyRefused(w http.ResponseWriter, r *http.Request, conv *securetextd.Conversation, err error, text string) bool {
	switch securetextd.ErrorCode(err) {
	case securetextd.EMALWARE:
		var m *store.MalwareError
		found, name := "unknown", ""
		if errors.As(err, &m) {
			found, name = m.Found, m.Filename
		}
		s.logger.Warn("reply refused: malware", "phone", conv.Phone.Masked(), "conversation", conv.ID, "found", found)
		problem := s.printer(r).T("ReplyMalware", "Name", name, "Found", found)
		if name == "" {
			problem = s.printer(r).T("ReplyMalwareText", "Found", found)
		}
		if text != "" {
			problem += " " + s.printer(r).T("ReplyMalwareKept")
		}
		s.renderConversationDraft(w, r, http.StatusUnprocessableEntity, conv, problem, text)
		return true
	case securetextd.EUNSCANNED:
		s.logger.Warn("reply not scanned", "phone", conv.Phone.Masked(), "conversation", conv.ID)
		w.Header().Set("Retry-After", "60")
		problem := s.printer(r).T("ReplyUnscanned")
		if text != "" {
			problem += " " + s.printer(r).T("ReplyTextKept")
		}
		s.renderConversationDraft(w, r, http.StatusServiceUnavailable, conv, problem, text)
		return true
	}
	return false
}
