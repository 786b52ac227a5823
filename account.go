package securetextd

import "time"

// A recipient's account (issue 12): what the patient manages on the
// portal's account page, and what an operator sees and repairs with
// `securetextd recipient`.

// JobKindConfirm emails a link that confirms a recovery address: a MailJob
// with To (the address to confirm), Phone and Token.
const JobKindConfirm = "confirm"

// ConfirmValidFor is how long a confirmation link works. Confirming gives
// nothing by itself (the address was typed by whoever knew the password),
// so the window is long enough for a patient who reads email once a week;
// a link older than that is more likely to sit in a mailbox someone else
// now reads than in the patient's hands, and a new one is one tap away on
// the account page.
const ConfirmValidFor = 7 * 24 * time.Hour

// Audit events of accounts. The operator's commands are recorded with the
// actor "operator:NAME" (--by NAME).
const (
	AuditConfirmSent         = "recovery.confirm_sent"
	AuditRecoveryConfirmed   = "recovery.confirmed"
	AuditPasswordChanged     = "password.changed"
	AuditLanguageSet         = "language.set" // Detail: the tag
	AuditSignedOutEverywhere = "sessions.ended"
	AuditRecipientListed     = "recipient.listed" // Detail: "masked" or "full"
	AuditRecipientShown      = "recipient.shown"
	AuditRecipientUnlocked   = "recipient.unlocked"
	AuditRecipientReset      = "recipient.reset"
	AuditRecipientDeleted    = "recipient.deleted"
)

// Account is a phone number's account as its account page and the
// operator's commands show it.
type Account struct {
	Phone   Phone
	Created time.Time
	// LastSeen is the latest sign-in or request of a session; zero when
	// never.
	LastSeen time.Time
	// NeedsSetup is true after an operator's reset: the next link visit
	// sets a password (and a recovery address) as on a first visit.
	NeedsSetup bool
	// Recovery is the recovery address in force, "" for none; Confirmed
	// says whether its owner confirmed it. Only a confirmed address is
	// sent password resets. (Account lists leave the addresses out.)
	Recovery  string
	Confirmed bool
	// Pending is an address waiting for its confirmation link to be
	// opened, "" for none. Recovery stays in force until then.
	Pending string
	// Language is the tag the patient chose ("en", "es"), "" for none.
	Language string
	// LockedUntil is when logins to the number are allowed again after
	// too many wrong passwords; zero when they are not paused.
	LockedUntil time.Time
	// Sessions counts the browsers signed in.
	Sessions int
}

// SignIn is one sign-in of an account, as its account page lists it:
// nothing in it is looked up anywhere.
type SignIn struct {
	Time time.Time
	// Device is the browser and system, summarized from the User-Agent:
	// "Chrome on Android".
	Device string
	// Network is the client's network: the /24 of an IPv4 address, the
	// /48 of an IPv6 one. Private is true when it is a private, loopback
	// or link-local network (the clinic's own, or a proxy's).
	Network string
	Private bool
}
