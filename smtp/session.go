package smtp

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// session is one SMTP connection on the submission listener.
type session struct {
	s      *Server
	conn   *gosmtp.Conn
	remote netip.Addr

	account *securetextd.Sender // set by a successful AUTH
	from    string
	targets []store.Target
}

var (
	_ gosmtp.Session     = (*session)(nil)
	_ gosmtp.AuthSession = (*session)(nil)
)

// storeTimeout bounds one store call made while a client waits.
const storeTimeout = 30 * time.Second

func (s *session) AuthMechanisms() []string {
	return []string{sasl.Plain, sasl.Login}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			// PLAIN carries an authorization identity: the user to act as.
			// Accepting any value would let one account send as another
			// (maddy's CVE-2023-27582), so it must be empty or the login.
			if identity != "" && identity != username {
				return &gosmtp.SMTPError{
					Code:         535,
					EnhancedCode: gosmtp.EnhancedCode{5, 7, 8},
					Message:      "Authentication refused: the authorization identity must be empty or equal the login name",
				}
			}
			return s.authenticate(username, password)
		}), nil
	case sasl.Login:
		return &loginServer{authenticate: s.authenticate}, nil
	}
	return nil, &gosmtp.SMTPError{
		Code:         504,
		EnhancedCode: gosmtp.EnhancedCode{5, 5, 4},
		Message:      "Unsupported authentication mechanism: use PLAIN or LOGIN",
	}
}

func (s *session) authenticate(username, password string) error {
	if len(username) > maxCredential || len(password) > maxCredential {
		return errCredentialTooLong
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	attempt, err := s.s.throttle.begin(ctx, s.remote, username)
	if err != nil {
		s.s.logger.Error("auth throttle: known client not checked", "client", s.remote.String(), "err", err)
	}
	if attempt == nil {
		// The caps bound the hashing and the guessing; a login checked
		// lately costs neither, and no guess passes it. A mail server
		// that relays over twenty connections at once, each logging in
		// to the one account, is not told to wait.
		if acct, err := s.s.remembered(ctx, username, password); err == nil && acct != nil {
			s.account = acct
			s.s.logger.Info("auth ok", "account", acct.Address, "client", s.remote.String(), "remembered", true)
			return nil
		}
		s.s.logger.Warn("auth refused: too many attempts in progress", "client", s.remote.String())
		return errAuthBusy
	}
	defer attempt.end()
	acct, err := s.s.checkPassword(ctx, username, password)
	switch securetextd.ErrorCode(err) {
	case "":
		if err := attempt.succeed(ctx); err != nil {
			// The login stands; the pair's failures stay counted.
			s.s.logger.Error("auth throttle: success not recorded", "client", s.remote.String(), "err", err)
		}
		s.account = acct
		s.s.logger.Info("auth ok", "account", acct.Address, "client", s.remote.String())
		return nil
	case securetextd.EUNAUTHORIZED:
		// The attempt stays in progress through the delay: a guesser
		// gains nothing by hanging up early.
		delay, err := attempt.fail(ctx)
		if err != nil {
			s.s.logger.Error("auth throttle: failure not counted", "client", s.remote.String(), "err", err)
		}
		s.s.logger.Warn("auth failed", "client", s.remote.String(), "delay", delay)
		s.s.sleep(ctx, delay)
		return gosmtp.ErrAuthFailed
	}
	// The database down (451 4.3.0: try again), or an internal error.
	return s.replyError("auth", err)
}

func (s *session) Mail(from string, opts *gosmtp.MailOptions) error {
	if s.account == nil {
		return &gosmtp.SMTPError{
			Code:         530,
			EnhancedCode: gosmtp.EnhancedCode{5, 7, 0},
			Message:      "Authentication required: log in with AUTH (after STARTTLS) before MAIL FROM",
		}
	}
	if !strings.EqualFold(from, s.account.Address) {
		return &gosmtp.SMTPError{
			Code:         553,
			EnhancedCode: gosmtp.EnhancedCode{5, 7, 1},
			Message:      fmt.Sprintf("Sender address <%s> refused: account %s may only send as <%s>", from, s.account.Address, s.account.Address),
		}
	}
	s.from = s.account.Address
	return nil
}

func (s *session) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	t, err := s.s.parseRecipient(to)
	if err != nil {
		return err
	}
	if t.ConversationID != 0 {
		if t.Phone, err = s.checkConversation(t.ConversationID, t.Phone); err != nil {
			return err
		}
	}
	if !slices.Contains(s.targets, t) {
		s.targets = append(s.targets, t)
	}
	return nil
}

// checkConversation refuses a conversation reference that is not this
// account's conversation with this phone (or, for phone "", with an email
// recipient: email+<id>@domain), and returns the conversation's
// recipient. Unknown and foreign ones get the same reply, so that
// references cannot be probed.
func (s *session) checkConversation(id int64, phone securetextd.Phone) (securetextd.Phone, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	c, err := s.s.db.Conversation(ctx, id)
	switch securetextd.ErrorCode(err) {
	case "":
		if sameRecipient(c.Phone, phone) && strings.EqualFold(c.Sender, s.account.Address) {
			return c.Phone, nil
		}
	case securetextd.ENOTFOUND:
	default:
		return "", s.replyError("rcpt", err)
	}
	return "", &gosmtp.SMTPError{
		Code:         550,
		EnhancedCode: gosmtp.EnhancedCode{5, 1, 1},
		Message:      fmt.Sprintf("Recipient refused: no conversation %d between you and %s; write to the phone number alone to start one", id, recipientWords(phone)),
	}
}

func (s *session) Data(r io.Reader) error {
	draft := s.s.db.NewDraft()
	defer draft.Discard()

	h, err := walkMessage(&crlfReader{r: r}, draft, s.s.limits)
	if err != nil {
		return s.replyError("data", err)
	}
	name, err := s.checkFrom(h)
	if err != nil {
		return err
	}
	msgID := h.MessageID
	if msgID == "" {
		msgID = fmt.Sprintf("%s@%s", messageIDLocal(), s.s.cfg.Hostname)
	}
	m := &securetextd.Message{
		Direction:  securetextd.Inbound,
		Sender:     s.account.Address,
		SenderName: name,
		Subject:    h.Subject,
		MessageID:  msgID,
		References: append(slices.Clone(h.References), h.InReplyTo...),
		Received:   s.s.now(),
		Auth:       "smtp-auth",
		Language:   h.Language,
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	ctx = securetextd.WithOrigin(ctx, securetextd.Origin{Actor: s.account.Address, Client: s.remote.String()})
	receipt, err := draft.CommitTargets(ctx, m, s.targets)
	if err != nil {
		return s.replyError("commit", err)
	}
	s.s.logger.Info("message accepted",
		"message", receipt.MessageID, "account", s.account.Address, "client", s.remote.String(),
		"parts", len(m.Parts), "recipients", maskedPhones(s.targets))
	return nil
}

// checkFrom makes sure the From header shows the account that logged in:
// the recipient sees this address beside the message, so it must be the
// one that was checked. It returns the display name to show, without one
// that holds an address (displayName).
func (s *session) checkFrom(h *headerInfo) (string, error) {
	refuse := func(format string, args ...any) error {
		return &gosmtp.SMTPError{
			Code:         550,
			EnhancedCode: gosmtp.EnhancedCode{5, 7, 1},
			Message:      "Message refused: " + fmt.Sprintf(format, args...),
		}
	}
	switch {
	case h.FromFields > 1:
		return "", refuse("it has %d From: header fields; a message must have one", h.FromFields)
	case len(h.From) > 1:
		return "", refuse("its From: header lists %d addresses; it must list only yours", len(h.From))
	case len(h.From) == 0:
		return "", nil // no From: the account's address is shown
	}
	if !strings.EqualFold(h.From[0].Address, s.account.Address) {
		return "", refuse("From: <%s> is not the address of the account that logged in (<%s>)", h.From[0].Address, s.account.Address)
	}
	return displayName(h.From[0].Name), nil
}

func (s *session) Reset() {
	s.from = ""
	s.targets = nil
}

func (s *session) Logout() error { return nil }

func (s *session) replyError(op string, err error) error { return s.s.replyError(op, s.remote, err) }
