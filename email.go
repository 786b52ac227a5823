package securetextd

import (
	"net/mail"
	"strings"
)

// maxEmailLen is the longest address a recipient may have (RFC 5321's
// limit on a path, less its angle brackets).
const maxEmailLen = 254

// ParseEmail reads an email recipient's address as a sender writes it and
// returns it as the recipient's key: bare (no display name), ASCII, and
// in lowercase, so that Jane@Example.NET and jane@example.net are one
// account. Anything else is an EINVALID *Error that says why.
func ParseEmail(s string) (Phone, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxEmailLen {
		return "", Errorf(EINVALID, "%.20q… is too long to be an email address", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return "", Errorf(EINVALID, "%q is not an email address this gateway can write to: use plain ASCII, no spaces", s)
		}
	}
	a, err := mail.ParseAddress(s)
	at := strings.LastIndexByte(s, '@')
	if err != nil || a.Name != "" || a.Address != s || at <= 0 || !strings.Contains(s[at+1:], ".") ||
		strings.ContainsAny(s, `"\()<>[],;:`) {
		return "", Errorf(EINVALID, "%q is not an email address: give the bare address, as in name@example.com", s)
	}
	return Phone(strings.ToLower(s)), nil
}

// AuditTextFallback records that a text failed for good (the provider
// refused the number, or a delivery report said failed, rejected or
// expired) and that the link goes to a fallback address by email instead.
// Detail: the masked address. The notice email itself is recorded as a
// text is (text.queued, text.sent, text.failed), its Detail naming the
// masked address.
const AuditTextFallback = "text.fallback"
