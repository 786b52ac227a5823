package main

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
)

// A sender's password guards what the gateway texts in the organization's
// name, and AUTH is offered to the whole internet, so it must resist an
// offline-quality guesser, not just a length rule.
const (
	minSenderPasswordLen = 12
	// minSenderPasswordScore is zxcvbn's score, 0 to 4: 3 means "safely
	// unguessable" (about 10^8 guesses or more, counted the way password
	// crackers order their guesses: common passwords, words, names, dates,
	// keyboard walks, repeats and the account's own details first).
	minSenderPasswordScore = 3
	// zxcvbnMaxRunes bounds the work of the estimator, whose matching
	// grows faster than the length: a passphrase whose first 100
	// characters are strong is strong.
	zxcvbnMaxRunes = 100
)

// passphraseHint is what every refusal suggests instead.
const passphraseHint = "Use a passphrase: four or more unrelated words you will remember, with spaces between them."

// checkSenderPassword returns why password is too weak for the sender
// account address of org, in words for the operator who typed it, or nil.
// It never repeats the password.
func checkSenderPassword(password, address, org string) error {
	if n := utf8.RuneCountInString(password); n < minSenderPasswordLen {
		return fmt.Errorf("the password needs at least %d characters; this one has %d. %s",
			minSenderPasswordLen, n, passphraseHint)
	}
	head := password
	if utf8.RuneCountInString(head) > zxcvbnMaxRunes {
		head = string([]rune(head)[:zxcvbnMaxRunes])
	}
	r := zxcvbn.PasswordStrength(head, senderUserInputs(address, org))
	if r.Score >= minSenderPasswordScore {
		return nil
	}
	why := "it is too easy to guess"
	if reasons := weakReasons(r); len(reasons) > 0 {
		why += ": " + strings.Join(reasons, ", and ")
	}
	return fmt.Errorf("the password is refused: %s. %s", why, passphraseHint)
}

// senderUserInputs are the words a guesser who knows whose account it is
// tries first: the address, its parts, and the organization's name.
func senderUserInputs(address, org string) []string {
	inputs := []string{address, org, strings.ReplaceAll(org, " ", "")}
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	}
	local, domain, _ := strings.Cut(address, "@")
	inputs = append(inputs, local, domain)
	inputs = append(inputs, split(address)...)
	inputs = append(inputs, split(org)...)
	return inputs
}

// weakReasons names, in plain words, the patterns zxcvbn found in the
// cheapest way to guess the password.
func weakReasons(r zxcvbn.Result) []string {
	var reasons []string
	add := func(s string) {
		if !slices.Contains(reasons, s) {
			reasons = append(reasons, s)
		}
	}
	for _, m := range r.Sequence {
		switch m.Pattern {
		case "dictionary":
			switch m.DictionaryName {
			case "user_inputs":
				add("it contains the account's address or the organization's name")
			case "passwords":
				add("it is built on a common password")
			default:
				add("it is built on a common word or name")
			}
		case "spatial":
			add("it follows a keyboard pattern")
		case "repeat":
			add("it repeats characters")
		case "sequence":
			add("it has a run such as abc or 123")
		case "date", "regex":
			add("it contains a date or a year")
		}
	}
	return reasons
}
