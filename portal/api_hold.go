package portal

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
)

// Legal holds through the API, for admin keys (securetextd apikey create
// --admin), and a sender's delete of a conversation. An admin key is
// answerable to the account it names, which stands as the actor of the
// audit rows; it cannot send, and a sender's key cannot hold.

// maxHoldBody bounds the JSON of a hold request.
const maxHoldBody = 16 << 10

// apiHold is a hold as the API shows it. The reason is shown to admins
// only, and never logged.
type apiHold struct {
	ConversationID int64     `json:"conversation_id"`
	State          string    `json:"state"` // "held"
	Reason         string    `json:"reason,omitempty"`
	PlacedBy       string    `json:"placed_by,omitempty"`
	Placed         time.Time `json:"placed,omitzero"`
	DeletePending  bool      `json:"delete_pending"`
}

// apiDeleted answers a delete, and the removal of a hold that carried one
// out.
type apiDeleted struct {
	ConversationID int64  `json:"conversation_id"`
	State          string `json:"state"` // "deleted", "deferred", "released"
	Purged         *int   `json:"purged,omitempty"`
	Detail         string `json:"detail,omitempty"`
}

// pathConversation reads the {id} of a route, answering 404 when it is
// not one.
func (a *API) pathConversation(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		a.problem(w, r, http.StatusNotFound, "not-found", "Not found", "No such conversation.")
		return 0, false
	}
	return id, true
}

// handlePlaceHold answers POST /api/v1/conversations/{id}/hold.
func (a *API) handlePlaceHold(w http.ResponseWriter, r *http.Request, key *securetextd.APIKey) {
	id, ok := a.pathConversation(w, r)
	if !ok {
		return
	}
	var req struct {
		Reason string `json:"reason"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxHoldBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.problem(w, r, http.StatusRequestEntityTooLarge, "too-large", "Too large", "A hold request is at most 16 KiB.")
			return
		}
		a.problem(w, r, http.StatusBadRequest, "bad-json", "Malformed JSON", `Send {"reason": "…"}.`)
		return
	}
	if err := a.store.PlaceHold(r.Context(), id, req.Reason, key.Sender); err != nil {
		a.fail(w, r, "place hold", err)
		return
	}
	a.logger.Info("hold placed", "conversation", id, "key", key.ID, "account", key.Sender)
	writeJSON(w, http.StatusCreated, &apiHold{ConversationID: id, State: "held", PlacedBy: key.Sender})
}

// handleRemoveHold answers DELETE /api/v1/conversations/{id}/hold.
func (a *API) handleRemoveHold(w http.ResponseWriter, r *http.Request, key *securetextd.APIKey) {
	id, ok := a.pathConversation(w, r)
	if !ok {
		return
	}
	done, err := a.store.RemoveHold(r.Context(), id, key.Sender)
	if err != nil {
		a.fail(w, r, "remove hold", err)
		return
	}
	a.logger.Info("hold removed", "conversation", id, "key", key.ID, "account", key.Sender)
	v := &apiDeleted{ConversationID: id, State: "released"}
	if done != nil {
		v.State, v.Purged = "deleted", &done.Purged
		v.Detail = "The delete that the hold deferred is done."
	}
	writeJSON(w, http.StatusOK, v)
}

// handleListHolds answers GET /api/v1/holds.
func (a *API) handleListHolds(w http.ResponseWriter, r *http.Request, key *securetextd.APIKey) {
	holds, err := a.store.ListHolds(r.Context())
	if err != nil {
		a.fail(w, r, "list holds", err)
		return
	}
	v := struct {
		Holds []apiHold `json:"holds"`
	}{Holds: []apiHold{}}
	for _, h := range holds {
		v.Holds = append(v.Holds, apiHold{
			ConversationID: h.ConversationID, State: "held", Reason: h.Reason,
			PlacedBy: h.By, Placed: h.Placed.UTC(), DeletePending: h.DeletePending,
		})
	}
	writeJSON(w, http.StatusOK, v)
}

// handleDeleteConversation answers DELETE /api/v1/conversations/{id}: the
// sender deletes a conversation of its own now (200), or, when it is held,
// the delete is recorded and waits for the hold to go (202, with
// securetextd.DeferredMessage). Another sender's conversation gets the
// same 404 as one that does not exist.
func (a *API) handleDeleteConversation(w http.ResponseWriter, r *http.Request, key *securetextd.APIKey) {
	id, ok := a.pathConversation(w, r)
	if !ok {
		return
	}
	c, err := a.store.Conversation(r.Context(), id)
	if err == nil && !strings.EqualFold(c.Sender, key.Sender) {
		err = securetextd.Errorf(securetextd.ENOTFOUND, "No such conversation.")
	}
	if err != nil {
		a.fail(w, r, "delete conversation", err)
		return
	}
	res, err := a.store.DeleteConversation(r.Context(), id, key.Sender)
	if err != nil {
		a.fail(w, r, "delete conversation", err)
		return
	}
	if res.Deferred {
		a.logger.Info("conversation delete deferred by a hold", "conversation", id, "key", key.ID, "account", key.Sender)
		writeJSON(w, http.StatusAccepted, &apiDeleted{ConversationID: id, State: "deferred", Detail: securetextd.DeferredMessage})
		return
	}
	a.logger.Info("conversation deleted", "conversation", id, "key", key.ID, "account", key.Sender, "purged", res.Purged)
	writeJSON(w, http.StatusOK, &apiDeleted{ConversationID: id, State: "deleted", Purged: &res.Purged})
}
