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
// confirmation, in words for the recipient, or "".
func checkPassword(password, confirm string) string {
	n := utf8.RuneCountInString(password)
	switch {
	case n < minPasswordLen:
		return "Your password must have at least 10 characters. A few words you will remember make a good one."
	case n > maxPasswordLen || !utf8.ValidString(password):
		return "Your password is too long: use at most 256 characters."
	case commonPasswords[strings.ToLower(password)]:
		return "This password is one of the most common ones, which people try first. Choose another."
	case password != confirm:
		return "The two passwords are not the same. Type them again."
	}
	return ""
}

// checkEmail returns the recovery address as typed, trimmed, and what is
// wrong with it, or "".
func checkEmail(s string) (string, string) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || len(s) > 254 {
		return s, "Enter an email address like name@example.com. It is used only if you forget your password."
	}
	_, domain, _ := strings.Cut(s, "@")
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, "[") {
		return s, "Enter an email address like name@example.com. It is used only if you forget your password."
	}
	return s, ""
}
