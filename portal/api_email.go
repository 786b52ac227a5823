package portal

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/securetextd/securetextd"
)

// apiTo is one recipient of a JSON message: a phone number or an email
// address as a string, or an object that adds, for a phone, the address
// its notice goes to by email if the text fails for good:
//
//	"to": ["2125550123", "jane@example.net",
//	       {"to": "2125550124", "fallback_email": "sam@example.net"}]
type apiTo struct {
	To            string `json:"to"`
	FallbackEmail string `json:"fallback_email"`
}

func (t *apiTo) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		type plain apiTo // without this method
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		return dec.Decode((*plain)(t))
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("a recipient is a string or an object with to and fallback_email")
	}
	*t = apiTo{To: s}
	return nil
}

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
