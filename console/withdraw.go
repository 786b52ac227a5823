package console

import (
	"net/http"
	"strconv"

	"github.com/securetextd/securetextd"
)

// Withdraw and delete. Both are asked for on a confirmation page (a GET
// that changes nothing) and done by its form's POST; both work without
// script, and the store records each in the audit trail as the signed-in
// account's act.
//
//   - Withdraw is what the revoke link does (store.RevokeMessage): every
//     recipient loses access at once; the content stays sealed until the
//     retention period ends.
//   - Delete now is store.DeleteConversation for each conversation the
//     message went to: access ends at once and the content is purged (its
//     parts, their sealed chunks and wrapped keys, its sealed manifest;
//     secure_delete, then a checkpoint). A conversation under legal hold
//     is withdrawn, and its delete happens when the hold is removed.

type confirmPage struct {
	layout
	ID      int64
	Subject string
	Phones  []string
	Action  string // "withdraw" or "delete"
}

// confirm shows the confirmation page of action for the account's
// message.
func (s *Server) confirm(w http.ResponseWriter, r *http.Request, action, title string) {
	acct, r := s.signedIn(w, r)
	if acct == nil {
		return
	}
	m := s.ownMessage(w, r, acct)
	if m == nil {
		return
	}
	rows, err := s.rows(r, acct, m.ID)
	if err != nil {
		s.fail(w, r, "message recipients", err)
		return
	}
	p := &confirmPage{layout: layoutFor(acct, title), ID: m.ID, Subject: m.Subject, Action: action}
	if p.Subject == "" {
		p.Subject = "(no subject)"
	}
	for _, row := range rows {
		p.Phones = append(p.Phones, string(row.Phone))
	}
	s.render(w, http.StatusOK, "confirm.html", p)
}

func (s *Server) handleWithdrawForm(w http.ResponseWriter, r *http.Request) {
	s.confirm(w, r, "withdraw", "Withdraw")
}

func (s *Server) handleDeleteForm(w http.ResponseWriter, r *http.Request) {
	s.confirm(w, r, "delete", "Delete")
}

// rows returns the Sent rows of message id that acct may see.
func (s *Server) rows(r *http.Request, acct *securetextd.SenderAccount, id int64) ([]securetextd.SentMessage, error) {
	q := securetextd.SentQuery{MessageID: id}
	if !acct.Admin {
		q.Sender = acct.Address
	}
	rows, _, err := s.store.SentPage(r.Context(), q)
	return rows, err
}

// handleWithdraw withdraws the account's message from every recipient.
func (s *Server) handleWithdraw(w http.ResponseWriter, r *http.Request) {
	acct, r := s.signedIn(w, r)
	if acct == nil {
		return
	}
	m := s.ownMessage(w, r, acct)
	if m == nil {
		return
	}
	convs, err := s.store.RevokeMessage(r.Context(), m.ID)
	if err != nil {
		s.fail(w, r, "withdraw", err)
		return
	}
	s.logger.Info("message withdrawn", "message", m.ID, "account", acct.Address, "conversations", len(convs))
	http.Redirect(w, r, "/m/"+strconv.FormatInt(m.ID, 10)+"?done=withdrawn", http.StatusSeeOther)
}

// handleDelete deletes the account's message now: every conversation it
// went to, unless held.
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	acct, r := s.signedIn(w, r)
	if acct == nil {
		return
	}
	m := s.ownMessage(w, r, acct)
	if m == nil {
		return
	}
	rows, err := s.rows(r, acct, m.ID)
	if err != nil {
		s.fail(w, r, "message recipients", err)
		return
	}
	deferred := false
	for _, row := range rows {
		res, err := s.store.DeleteConversation(r.Context(), row.ConversationID, acct.Address)
		if securetextd.ErrorCode(err) == securetextd.ECONFLICT {
			continue // deleted already
		}
		if err != nil {
			s.fail(w, r, "delete", err)
			return
		}
		deferred = deferred || res.Deferred
	}
	s.logger.Info("message deleted", "message", m.ID, "account", acct.Address, "deferred", deferred)
	done := "deleted"
	if deferred {
		done = "held"
	}
	http.Redirect(w, r, "/m/"+strconv.FormatInt(m.ID, 10)+"?done="+done, http.StatusSeeOther)
}
