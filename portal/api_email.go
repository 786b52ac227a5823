package portal

import (
	"strings"

	"github.com/securetextd/securetextd"
)

// parseRecipient reads a recipient as the API takes it: an email address
// (with email_recipients.enabled) or a phone number.
func (c APIConfig) parseRecipient(v string) (securetextd.Phone, error) {
	if strings.Contains(v, "@") {
		if !c.EmailRecipients {
			return "", securetextd.Errorf(securetextd.EINVALID, "email recipients are not enabled on this gateway: give a phone number")
		}
		return securetextd.ParseEmail(v)
	}
	return c.ParsePhone(v)
}

// addFallback sets v as the fallback address of the recipient just
// added, named field in errors: for a phone number only, and only where
// email recipients are enabled.
func (s *submission) addFallback(enabled bool, field, v string) {
	if v == "" {
		return
	}
	if !enabled {
		s.bad(field, "email recipients are not enabled on this gateway")
		return
	}
	last := len(s.to) - 1
	if s.to[last].IsEmail() {
		s.bad(field, "a fallback address is for a phone number; this recipient is an email address already")
		return
	}
	e, err := securetextd.ParseEmail(v)
	if err != nil {
		s.bad(field, "%s", securetextd.ErrorMessage(err))
		return
	}
	s.fallbacks[last] = string(e)
}
