package portal

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/securetextd/securetextd"
)

// handleReport answers GET /api/v1/messages/{id}: each recipient's text
// state and what happened in its conversation since (the sender's "read
// report"). Only the key's sender's messages are found; any other id gets
// the same 404 as one that does not exist.
func (a *API) handleReport(w http.ResponseWriter, r *http.Request, key *securetextd.APIKey) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		a.problem(w, r, http.StatusNotFound, "not-found", "Not found", "No such message.")
		return
	}
	rep, err := a.store.MessageReport(r.Context(), key.Sender, id)
	if err != nil {
		a.fail(w, r, "message report", err)
		return
	}
	v := &apiMessage{ID: rep.MessageID, Received: rep.Received.UTC(), Recipients: []apiRecipient{}}
	for _, rc := range rep.Recipients {
		rv := apiRecipient{To: rc.Phone, ConversationID: rc.ConversationID, State: rc.State, Attempts: rc.Attempts, Events: []apiEvent{}}
		if !rc.Updated.IsZero() {
			u := rc.Updated.UTC()
			rv.Updated = &u
		}
		for _, e := range rc.Events {
			rv.Events = append(rv.Events, apiEvent{Type: e.Type, At: e.At.UTC()})
		}
		v.Recipients = append(v.Recipients, rv)
	}
	writeJSON(w, http.StatusOK, v)
}

// apiRevoked is the answer to a revocation.
type apiRevoked struct {
	ConversationID int64  `json:"conversation_id"`
	State          string `json:"state"` // "revoked"
}

// handleRevoke answers POST /api/v1/conversations/{id}/revoke: the
// recipient can no longer open the conversation, and texts about it still
// queued are not sent. Revoking twice is no error. Another sender's
// conversation gets the same 404 as one that does not exist.
func (a *API) handleRevoke(w http.ResponseWriter, r *http.Request, key *securetextd.APIKey) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		a.problem(w, r, http.StatusNotFound, "not-found", "Not found", "No such conversation.")
		return
	}
	c, err := a.store.Conversation(r.Context(), id)
	if err == nil && !strings.EqualFold(c.Sender, key.Sender) {
		err = securetextd.Errorf(securetextd.ENOTFOUND, "No such conversation.")
	}
	if err == nil {
		err = a.store.RevokeConversation(r.Context(), id)
	}
	switch securetextd.ErrorCode(err) {
	case "", securetextd.EREVOKED:
		a.logger.Info("conversation revoked", "conversation", id, "key", key.ID, "account", key.Sender)
		writeJSON(w, http.StatusOK, &apiRevoked{ConversationID: id, State: "revoked"})
	default:
		a.fail(w, r, "revoke", err)
	}
}
