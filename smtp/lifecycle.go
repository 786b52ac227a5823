package smtp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd"
)

// receiptRequester is implemented by a partCreator that keeps a message's
// request for a read receipt (*store.Draft does). The walk tells it when
// the top-level header has Disposition-Notification-To; the receipt goes
// to the checked sender, whatever address the header names.
type receiptRequester interface {
	RequestReadReceipt(address string)
}

// requestReceipt passes a read-receipt request in info on to pc, if pc
// keeps such requests.
func requestReceipt(pc partCreator, info *headerInfo) {
	if rr, ok := pc.(receiptRequester); ok && info != nil && info.DispositionNotificationTo != "" {
		rr.RequestReadReceipt(info.DispositionNotificationTo)
	}
}

// The audit trail records every message refused, with the command, the
// reply and who tried: a session is wrapped so that each refusal of MAIL,
// RCPT or DATA is written as a message.refused event. (A message accepted
// is recorded by the store, in the transaction that commits it.) On the
// submission listener only sessions that logged in are recorded: before
// AUTH anyone on the network could write rows at will. The relay listener
// only has sessions from its trusted networks.

// audited wraps a session of client remote so that its refusals are
// recorded, keeping AUTH where the session offers it.
func (s *Server) audited(inner gosmtp.Session, remote netip.Addr) gosmtp.Session {
	a := &auditSession{Session: inner, s: s, remote: remote}
	if as, ok := inner.(gosmtp.AuthSession); ok {
		return &auditAuthSession{auditSession: a, auth: as}
	}
	return a
}

type auditSession struct {
	gosmtp.Session
	s      *Server
	remote netip.Addr
	from   string
}

type auditAuthSession struct {
	*auditSession
	auth gosmtp.AuthSession
}

var (
	_ gosmtp.Session     = (*auditSession)(nil)
	_ gosmtp.AuthSession = (*auditAuthSession)(nil)
)

func (a *auditAuthSession) AuthMechanisms() []string { return a.auth.AuthMechanisms() }

func (a *auditAuthSession) Auth(mech string) (sasl.Server, error) { return a.auth.Auth(mech) }

func (a *auditSession) Mail(from string, opts *gosmtp.MailOptions) error {
	a.from = from
	return a.refused("MAIL", a.Session.Mail(from, opts))
}

func (a *auditSession) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	return a.refused("RCPT", a.Session.Rcpt(to, opts))
}

func (a *auditSession) Data(r io.Reader) error {
	return a.refused("DATA", a.Session.Data(r))
}

func (a *auditSession) Reset() {
	a.from = ""
	a.Session.Reset()
}

// refused records err, the answer to cmd, when it is an SMTP refusal, and
// returns it unchanged. A client that went away refused nothing.
func (a *auditSession) refused(cmd string, err error) error {
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) {
		return err
	}
	actor := a.from
	if sub, ok := a.Session.(*session); ok {
		if sub.account == nil {
			// Not a message, and anyone on the network can cause
			// it: the log has it, the trail does not.
			return err
		}
		actor = sub.account.Address
	}
	if actor == "" {
		actor = "unauthenticated"
	}
	detail := fmt.Sprintf("%s %d", cmd, se.Code)
	if se.EnhancedCode != (gosmtp.EnhancedCode{}) && se.EnhancedCode != gosmtp.NoEnhancedCode {
		detail += fmt.Sprintf(" %d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	}
	// The reply says why (no account, a failed DKIM check, a limit); it
	// quotes addresses, never content.
	detail += " " + strings.TrimSpace(se.Message)
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	ctx = securetextd.WithOrigin(ctx, securetextd.Origin{Actor: actor, Client: a.remote.String()})
	if aerr := a.s.db.Audit(ctx, securetextd.AuditEvent{Event: securetextd.AuditMessageRefused, Detail: detail}); aerr != nil {
		a.s.logger.Error("audit", "event", securetextd.AuditMessageRefused, "err", aerr)
	}
	return err
}
