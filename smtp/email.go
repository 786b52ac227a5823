package smtp

import (
	"fmt"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// emailRecipient reads an address outside the gateway's domain as an
// email recipient (Config.EmailRecipients): its notice goes to it by
// email, and its account is keyed by the address in lowercase.
func (s *Server) emailRecipient(to string) (store.Target, error) {
	addr, err := securetextd.ParseEmail(to)
	if err != nil {
		return store.Target{}, &gosmtp.SMTPError{
			Code:         550,
			EnhancedCode: gosmtp.EnhancedCode{5, 1, 3},
			Message:      fmt.Sprintf("Recipient <%s> refused: %s", quoteAddress(to), securetextd.ErrorMessage(err)),
		}
	}
	return store.Target{Phone: addr}, nil
}

// emailConversationLocal is the local part of the address that answers
// into a conversation with an email recipient, email+<id>@Domain: the
// Reply-To of the emails that carry their replies (notify's reply). A
// phone's is <phone>+<id>@Domain; an email address cannot stand in a
// local part, so the conversation alone names the recipient.
const emailConversationLocal = "email"

// sameRecipient reports whether a conversation's recipient is the one a
// reference names: the same phone, or, for a reference that names none
// (email+<id>), an email recipient.
func sameRecipient(conversation, named securetextd.Phone) bool {
	if named == "" {
		return conversation.IsEmail()
	}
	return conversation == named
}

// recipientWords names a reference's recipient in a refusal.
func recipientWords(p securetextd.Phone) string {
	if p == "" {
		return "that email recipient"
	}
	return string(p)
}
