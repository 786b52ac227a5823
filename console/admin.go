package console

import (
	"crypto/rand"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// The admin pages: sender accounts (add, remove), API keys (create, shown
// once; revoke), the limits on texts, and the audit chain's verify status.
// Only an admin account reaches them; to any other they do not exist
// (404). Each change asks for confirmation where it cannot be undone, and
// is recorded in the audit trail as the admin's.

func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin", s.admin(s.handleAdmin))
	mux.HandleFunc("POST /admin/senders", s.form(s.admin(s.handleAddSender)))
	mux.HandleFunc("GET /admin/senders/remove", s.admin(s.handleRemoveSenderForm))
	mux.HandleFunc("POST /admin/senders/remove", s.form(s.admin(s.handleRemoveSender)))
	mux.HandleFunc("POST /admin/keys", s.form(s.admin(s.handleCreateKey)))
	mux.HandleFunc("GET /admin/keys/{id}/revoke", s.admin(s.handleRevokeKeyForm))
	mux.HandleFunc("POST /admin/keys/{id}/revoke", s.form(s.admin(s.handleRevokeKey)))
	mux.HandleFunc("GET /admin/audit", s.admin(s.handleAuditCheck))
}

// admin lets only a signed-in admin account through to h.
func (s *Server) admin(h func(http.ResponseWriter, *http.Request, *securetextd.SenderAccount)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		acct, r := s.signedIn(w, r)
		if acct == nil {
			return
		}
		if !acct.Admin {
			s.handleNotFound(w, r)
			return
		}
		h(w, r, acct)
	}
}

type adminPage struct {
	layout
	Senders []senderRow
	Keys    []securetextd.APIKey
	Limits  Limits
	Error   string
	// Shown once: a new account's password, or a new key.
	NewAddress, NewPassword, NewKey string
}

type senderRow struct {
	securetextd.Sender
	Admin, TOTP bool
}

// handleAdmin shows the accounts, the keys and the limits.
func (s *Server) handleAdmin(w http.ResponseWriter, r *http.Request, acct *securetextd.SenderAccount) {
	s.renderAdmin(w, r, acct, http.StatusOK, &adminPage{})
}

func (s *Server) renderAdmin(w http.ResponseWriter, r *http.Request, acct *securetextd.SenderAccount, status int, p *adminPage) {
	p.layout, p.Limits = layoutFor(acct, "Administration"), s.cfg.Limits
	senders, err := s.store.ListSenders(r.Context())
	if err != nil {
		s.fail(w, r, "list senders", err)
		return
	}
	for _, snd := range senders {
		row := senderRow{Sender: snd}
		if a, err := s.store.SenderAccount(r.Context(), snd.Address); err == nil {
			row.Admin, row.TOTP = a.Admin, a.TOTP
		}
		p.Senders = append(p.Senders, row)
	}
	if p.Keys, err = s.store.ListAPIKeys(r.Context(), ""); err != nil {
		s.fail(w, r, "list api keys", err)
		return
	}
	s.render(w, status, "admin.html", p)
}

// handleAddSender adds a sender account with a password made here, shown
// once: no weak password is ever chosen, and the new sender changes it
// with `securetextd user passwd` or keeps it in a password manager.
func (s *Server) handleAddSender(w http.ResponseWriter, r *http.Request, acct *securetextd.SenderAccount) {
	address := strings.TrimSpace(r.PostFormValue("address"))
	password := rand.Text() + rand.Text()[:6] // 32 base32 characters: 160 bits
	err := s.store.CreateSender(r.Context(), address, password)
	switch securetextd.ErrorCode(err) {
	case "":
	case securetextd.EINVALID, securetextd.ECONFLICT:
		s.renderAdmin(w, r, acct, http.StatusUnprocessableEntity, &adminPage{Error: securetextd.ErrorMessage(err)})
		return
	default:
		s.fail(w, r, "add sender", err)
		return
	}
	address = strings.ToLower(address)
	if r.PostFormValue("admin") != "" {
		if err := s.store.SetAdmin(r.Context(), address, true); err != nil {
			s.fail(w, r, "set admin", err)
			return
		}
	}
	if err := s.store.RecordSenderChange(r.Context(), store.SenderAdded, address); err != nil {
		s.fail(w, r, "audit", err)
		return
	}
	s.logger.Info("sender added", "account", acct.Address, "sender", address)
	s.renderAdmin(w, r, acct, http.StatusOK, &adminPage{NewAddress: address, NewPassword: password})
}

type adminConfirm struct {
	layout
	Heading, Text, Action, Button string
	Address                       string // a form field, when the action takes one
}

func (s *Server) handleRemoveSenderForm(w http.ResponseWriter, r *http.Request, acct *securetextd.SenderAccount) {
	address := clip(r.URL.Query().Get("address"))
	if _, err := s.store.SenderAccount(r.Context(), address); err != nil {
		s.fail(w, r, "account", err)
		return
	}
	s.render(w, http.StatusOK, "admin_confirm.html", &adminConfirm{layout: layoutFor(acct, "Remove account"),
		Heading: "Remove " + address + "?",
		Text:    "The account can no longer send mail or sign in to the console. The messages it sent, and their audit trail, are kept.",
		Action:  "/admin/senders/remove", Button: "Remove the account", Address: address})
}

func (s *Server) handleRemoveSender(w http.ResponseWriter, r *http.Request, acct *securetextd.SenderAccount) {
	address := strings.ToLower(strings.TrimSpace(r.PostFormValue("address")))
	if address == acct.Address {
		s.renderAdmin(w, r, acct, http.StatusUnprocessableEntity, &adminPage{Error: "You cannot remove your own account."})
		return
	}
	if err := s.store.DeleteSender(r.Context(), address); err != nil {
		s.fail(w, r, "remove sender", err)
		return
	}
	if err := s.store.RecordSenderChange(r.Context(), store.SenderRemoved, address); err != nil {
		s.fail(w, r, "audit", err)
		return
	}
	s.logger.Info("sender removed", "account", acct.Address, "sender", address)
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

// handleCreateKey makes an API key for a sender and shows it, once.
func (s *Server) handleCreateKey(w http.ResponseWriter, r *http.Request, acct *securetextd.SenderAccount) {
	sender, name := strings.TrimSpace(r.PostFormValue("sender")), strings.TrimSpace(r.PostFormValue("name"))
	if len(name) > 100 {
		name = name[:100]
	}
	token, k, err := s.store.CreateAPIKey(r.Context(), sender, name)
	if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
		s.renderAdmin(w, r, acct, http.StatusUnprocessableEntity, &adminPage{Error: securetextd.ErrorMessage(err)})
		return
	}
	if err != nil {
		s.fail(w, r, "create api key", err)
		return
	}
	if err := s.store.Audit(r.Context(), securetextd.AuditEvent{Event: securetextd.AuditAPIKeyChanged,
		Detail: "created " + strconv.FormatInt(k.ID, 10) + " " + k.Sender}); err != nil {
		s.fail(w, r, "audit", err)
		return
	}
	s.logger.Info("api key created", "account", acct.Address, "key", k.ID, "sender", k.Sender)
	s.renderAdmin(w, r, acct, http.StatusOK, &adminPage{NewKey: token})
}

// key returns the key of the path's id, or answers 404.
func (s *Server) key(w http.ResponseWriter, r *http.Request) *securetextd.APIKey {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err == nil {
		keys, err := s.store.ListAPIKeys(r.Context(), "")
		if err != nil {
			s.fail(w, r, "list api keys", err)
			return nil
		}
		for i := range keys {
			if keys[i].ID == id {
				return &keys[i]
			}
		}
	}
	s.handleNotFound(w, r)
	return nil
}

func (s *Server) handleRevokeKeyForm(w http.ResponseWriter, r *http.Request, acct *securetextd.SenderAccount) {
	k := s.key(w, r)
	if k == nil {
		return
	}
	whose := k.Sender
	if k.Name != "" {
		whose += " (" + k.Name + ")"
	}
	s.render(w, http.StatusOK, "admin_confirm.html", &adminConfirm{layout: layoutFor(acct, "Revoke API key"),
		Heading: "Revoke the API key " + k.Prefix + "…?",
		Text:    "The key of " + whose + " stops working at once: the software that uses it can no longer send.",
		Action:  "/admin/keys/" + strconv.FormatInt(k.ID, 10) + "/revoke", Button: "Revoke the key"})
}

func (s *Server) handleRevokeKey(w http.ResponseWriter, r *http.Request, acct *securetextd.SenderAccount) {
	k := s.key(w, r)
	if k == nil {
		return
	}
	if err := s.store.RevokeAPIKey(r.Context(), k.ID); err != nil {
		s.fail(w, r, "revoke api key", err)
		return
	}
	if err := s.store.Audit(r.Context(), securetextd.AuditEvent{Event: securetextd.AuditAPIKeyChanged,
		Detail: "revoked " + strconv.FormatInt(k.ID, 10)}); err != nil {
		s.fail(w, r, "audit", err)
		return
	}
	s.logger.Info("api key revoked", "account", acct.Address, "key", k.ID)
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

type auditPage struct {
	layout
	Check   *store.AuditCheck
	Checked time.Time
}

// handleAuditCheck verifies the audit trail's hash chain now, and shows
// the verdict.
func (s *Server) handleAuditCheck(w http.ResponseWriter, r *http.Request, acct *securetextd.SenderAccount) {
	check, err := s.store.VerifyAudit(r.Context())
	if err != nil {
		s.fail(w, r, "verify audit", err)
		return
	}
	s.render(w, http.StatusOK, "audit.html", &auditPage{layout: layoutFor(acct, "Audit trail"), Check: check, Checked: time.Now()})
}
