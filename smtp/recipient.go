package smtp

import (
	"fmt"
	"strings"
)

// addressPhoneChars are what the phone number of a recipient address may
// hold: digits, a leading + and the separators - and . (2125550123,
// +447400123456, 212-555-0123, 212.555.0123). A space or parentheses,
// which Parse accepts where a person writes a number (a form, a JSON
// field), do not belong in an address: unquoted, an address cannot hold
// them (go-smtp answers 501), and a mail program reads "(212)" as an RFC
// 5322 comment and drops it.
const addressPhoneChars = "0123456789+-."

// notAddressPhone says why the local part of a recipient address, as
// go-smtp hands it over (unquoted), cannot be a phone number in an
// address, or returns "" when it may be one. Only a space and parentheses
// are judged here; anything else is for the phone rules to explain.
func (s *Server) notAddressPhone(local string) string {
	if !strings.ContainsAny(local, " ()") {
		return ""
	}
	var has []string
	if strings.Contains(local, " ") {
		has = append(has, "a space")
	}
	if strings.ContainsAny(local, "()") {
		has = append(has, "parentheses")
	}
	why := fmt.Sprintf("%q cannot be the phone number of an address, as it has %s; an address holds only digits, a leading + and the separators - and .",
		local, strings.Join(has, " and "))
	// Its digits, when they are all it holds besides separators:
	// "(212) 555-0199" becomes 2125550199@domain.
	if strings.Trim(local, addressPhoneChars+" ()") == "" {
		digits := strings.Map(func(r rune) rune {
			if r < '0' || r > '9' {
				return -1
			}
			return r
		}, local)
		if strings.HasPrefix(strings.TrimLeft(local, " ("), "+") {
			digits = "+" + digits
		}
		if digits != "" && digits != "+" {
			why += fmt.Sprintf(", as in %s@%s", digits, s.cfg.Domain)
		}
	}
	return why
}

// droppedHint returns what to add to the refusal of a number with too few
// digits: the likely reason is an area code written in parentheses, which
// the sender's mail program took for a comment and left out of the
// address ("(212) 555-0199@domain" is sent as 555-0199@domain), so the
// address named in the reply is not what the sender typed.
func (s *Server) droppedHint(local string) string {
	if !s.cfg.Phones.TooShort(local) {
		return ""
	}
	return ". A mail program leaves out what an address has in parentheses, such as an area code: write the number with digits only"
}

// quoteAddress writes an address as a client sends it in RCPT TO: go-smtp
// unquotes a quoted local part ("(212) 555-0199"@domain arrives as
// (212) 555-0199@domain), so one that needs quotes gets them back, and a
// reply names the address as it was received.
func quoteAddress(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr
	}
	local := addr[:at]
	if !strings.ContainsAny(local, " \t()<>[]:;@\\,\"") {
		return addr
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(local) + `"` + addr[at:]
}
