package securetextd

// The second factor: what proves, beyond holding a link and a password,
// that the person at the portal is the patient. A one-time code goes to
// the phone (for a recipient reached by email, to the mailbox) when a browser
// the account has not seen signs in, and a date of birth that the sender
// chose is asked at the first visit and at every password reset.

// CodeJob is what the outbox keeps for one text or email carrying a
// one-time code: the phone (or address) and the code. The store seals it
// like every payload; notify renders the text or the email at the moment
// it sends.
type CodeJob struct {
	To   Phone  `json:"to"`
	Code string `json:"code"`
	// Language is the text's: the account's, else the page's that asked.
	Language string `json:"language,omitempty"`
}

// JobKindCode is the outbox job kind of a CodeJob: a text, sent by the
// worker that sends texts and held to the same rate.
const JobKindCode = "code"

// JobKindEmailCode is the outbox job kind of a CodeJob to an email
// recipient: an email, sent by the mail drain.
const JobKindEmailCode = "email-code"

// CodeDigits is the length of a one-time code.
const CodeDigits = 6

// Audit events of the second factor. Detail names the factor
// (FactorSMSCode, FactorEmailCode, FactorDateOfBirth); none carries the
// code or the date.
const (
	AuditFactorSent   = "factor.sent"   // a code was queued
	AuditFactorOK     = "factor.ok"     // a factor was given right
	AuditFactorFailed = "factor.failed" // a factor was given wrong (Detail adds why)
)

// The factors, as audit details and configuration name them.
const (
	FactorSMSCode     = "sms-code"
	FactorEmailCode   = "email-code" // an email recipient's code, under second_factor "sms-code"
	FactorDateOfBirth = "date-of-birth"
)
