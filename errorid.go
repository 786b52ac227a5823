package securetextd

import (
	"crypto/rand"
	"strings"
)

// Error ids. An internal error (a bug, or an outside failure that is no
// *Error) reaches nobody as it is: each transport answers with a generic
// text that carries a fresh error id (an SMTP reply, a portal or console
// page, the API's JSON problem) and logs the error under the same id, with
// the key "error_id". Whoever quotes the id leads the operator to the log
// line, and learns nothing else from it.

// ErrorIDLen is the length of an error id.
const ErrorIDLen = 10

// errorIDAlphabet is the alphabet of rand.Text, whose first ErrorIDLen
// characters an id is: RFC 4648 base32, upper case, without 0, 1, 8 and 9,
// so that an id read aloud or copied by hand comes out right.
const errorIDAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// NewErrorID returns a fresh error id: ErrorIDLen characters of base32
// from crypto/rand (50 bits), random only. It says nothing of the error,
// the request, the client or the time, so showing it leaks nothing; two
// are the same by chance only (even odds of one repeat after some 40
// million). Every transport makes its ids here, so they look alike
// everywhere.
func NewErrorID() string { return rand.Text()[:ErrorIDLen] }

// IsErrorID reports whether s has the shape of an id from NewErrorID.
func IsErrorID(s string) bool {
	if len(s) != ErrorIDLen {
		return false
	}
	for _, c := range []byte(s) {
		if !strings.ContainsRune(errorIDAlphabet, rune(c)) {
			return false
		}
	}
	return true
}
