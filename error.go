package securetextd

import (
	"errors"
	"fmt"
)

// Error codes. Each transport translates them once: smtp into reply codes,
// portal into HTTP statuses.
const (
	EINVALID      = "invalid"      // the input is wrong and will stay wrong
	ENOTFOUND     = "not_found"    // no such thing (or not for you)
	EUNAUTHORIZED = "unauthorized" // credentials missing or wrong
	EFORBIDDEN    = "forbidden"    // authenticated, but not allowed
	ETOOLARGE     = "too_large"    // over a size limit
	ELIMIT        = "limit"        // over a rate or count limit; try later
	ECONFLICT     = "conflict"     // already exists
	EUNAVAILABLE  = "unavailable"  // temporary failure; try again
	ESTORAGE      = "storage_full" // the gateway's disk is full; try again later
	EMALWARE      = "malware"      // the scanner found malware in the content: refused, nothing stored
	EUNSCANNED    = "unscanned"    // the content could not be scanned for malware; try again
	EINTERNAL     = "internal"     // a bug or an outside failure: see the log
)

// Error is an error meant for the person on the other side: Message is safe
// to show them. Anything else that wraps no *Error is internal.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("securetextd: %s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the *Error in err's chain, EINTERNAL for any
// other error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the *Error in err's chain, or a
// generic text for internal errors, which must not reach a client.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
