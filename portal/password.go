package portal

import (
	_ "embed"
	"net/mail"
	"strings"
	"unicode/utf8"
)

// Password rules: long enough, not one everybody uses, and nothing else.
// Composition rules ("a digit and a symbol") make passwords harder to
// remember without making them harder to guess.
const (
	minPasswordLen = 10
	maxPasswordLen = 256
)

// commonPasswords holds the most common passwords of 10 characters or more
// (shorter ones fail the length rule anyway), lowercase. See NOTICE.
//
//go:embed common-passwords.txt
var commonPasswordList string

var commonPasswords = func() map[string]bool {
	m := make(map[string]bool)
	for line := range strings.Lines(commonPasswordList) {
		if line = strings.TrimSpace(line); line != "" {
			m[line] = true
		}
	}
	return m
}()

// checkPassword returns what is wrong with a new password and its
// confirmation, as a message id of the catalogue, or "".
func checkPassword(password, confirm string) string {
	n := utf8.RuneCountInString(password)
	switch {
	case n < minPasswordLen:
		return "PasswordShort"
	case n > maxPasswordLen || !utf8.ValidString(password):
		return "PasswordLong"
	case commonPasswords[strings.ToLower(password)]:
		return "PasswordCommon"
	case password != confirm:
		return "PasswordMismatch"
	}
	return ""
}

// checkEmail returns the recovery address as typed, trimmed, and what is
// wrong with it (a message id), or "".
func checkEmail(s string) (string, string) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || len(s) > 254 {
		return s, "EmailInvalid"
	}
	_, domain, _ := strings.Cut(s, "@")
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, "[") {
		return s, "EmailInvalid"
	}
	return s, ""
}
