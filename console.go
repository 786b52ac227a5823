package securetextd

import "time"

// The clinician's console (console/) is where a sender account signs in
// to see what it sent. These are its domain words.

// SenderAccount is a sender account as the console sees it: who, whether
// it sees every sender's messages, and whether its second factor is set.
// (A patient's account is an Account.)
type SenderAccount struct {
	Address string
	Created time.Time
	// Admin accounts see every sender's messages.
	Admin bool
	// TOTP is true once a TOTP secret is enrolled: signing in then takes
	// a code (or a recovery code) after the password.
	TOTP bool
}

// ConsoleSession is a sign-in to the console in one browser. A session
// of LevelPassword has passed the password only; it may enrol or enter a
// second factor and nothing else.
type ConsoleSession struct {
	Address  string
	Level    int
	Created  time.Time
	LastSeen time.Time
}

// Levels of a ConsoleSession.
const (
	LevelPassword = 1 // the password was right; a second factor is to come
	LevelSignedIn = 2 // signed in
)

// SentQuery selects and pages the Sent list: one row per message and
// phone it went to, newest first.
type SentQuery struct {
	// Sender limits the list to one account's messages; "" lists every
	// sender's (for admins).
	Sender string
	// Phone, when set, keeps the rows to that number.
	Phone Phone
	// From and To, when not zero, keep rows received in [From, To).
	From, To time.Time
	// State, when set, keeps rows in that state (a State* or Text*
	// value).
	State string
	// MessageID, when not 0, keeps the rows of one message.
	MessageID int64
	// Offset and Limit page the list.
	Offset, Limit int
}

// Audit events of the console and its accounts.
const (
	AuditConsoleLogin       = "console.login"        // Detail: "password" or "totp" or "recovery"
	AuditConsoleLoginFailed = "console.login_failed" // Detail: what was wrong: "password", "totp"
	AuditConsoleLocked      = "console.locked"
	AuditTOTPEnrolled       = "totp.enrolled"
	AuditTOTPReset          = "totp.reset"       // Actor: who reset it; Detail: the account
	AuditRecoveryUsed       = "totp.recovery"    // Detail: how many codes are left
	AuditAdminChanged       = "sender.admin"     // Detail: "on ADDRESS" or "off ADDRESS"
	AuditPartReadBack       = "sender.part_read" // the sender read back a part of their message
	AuditAPIKeyChanged      = "apikey.changed"   // Detail: "created ID ADDRESS" or "revoked ID"
)
