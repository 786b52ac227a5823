// Package securetextd holds the domain of the securetextd gateway: phone
// numbers, messages and their parts, conversations, sender accounts, and the
// error type that every other package speaks.
//
// The gateway turns an email to <phone>@secure.text into a secure text: the
// message is sealed and stored, and the recipient is texted a link to read
// it. The packages below the module root each wrap one outside world:
//
//   - smtp accepts mail (submission and relay) and walks its MIME tree;
//   - store seals content with age and keeps it in SQLite, with the outbox;
//   - notify drains the outbox: texts and outgoing mail;
//   - portal serves the recipient's web pages.
//
// This package imports none of them; they all import it.
package securetextd

import (
	"time"
)

// Version is the gateway's version, set at build time with
// -ldflags "-X github.com/securetextd/securetextd.Version=…".
var Version = "dev"

// PartKind says what role a part plays in a message.
type PartKind int

const (
	// PartText is a text/plain body, stored as UTF-8.
	PartText PartKind = iota + 1
	// PartHTML is a text/html body, stored as UTF-8 and sanitised when shown.
	PartHTML
	// PartAttachment is a file the recipient can download.
	PartAttachment
	// PartInline is an image referenced from an HTML body by its Content-ID.
	PartInline
)

// String returns the kind's lowercase name, as stored and logged.
func (k PartKind) String() string {
	switch k {
	case PartText:
		return "text"
	case PartHTML:
		return "html"
	case PartAttachment:
		return "attachment"
	case PartInline:
		return "inline"
	}
	return "unknown"
}

// Part describes one body or file of a message. Its content is not held
// here: it is streamed into the store and read back by ranges.
type Part struct {
	Kind        PartKind
	ContentType string // media type without parameters, lowercase: "image/png"
	Filename    string // as the sender named it; never used as a path
	ContentID   string // without angle brackets, for cid: references
	Size        int64  // bytes of decoded content
	// Damaged is set when the part could not be decoded completely (corrupt
	// base64, truncated message): what could be decoded is kept.
	Damaged bool
}

// Direction says who wrote a message in a conversation.
type Direction int

const (
	// Inbound is a message from a sender (by email or the API) to a phone.
	Inbound Direction = iota + 1
	// Reply is a message from the recipient back to the sender.
	Reply
)

// Message is one email (or reply) as the gateway keeps it. Everything a
// reader could learn content from (subject, names, filenames) is sealed in
// the store; the fields here are the opened form.
type Message struct {
	ID        int64
	Direction Direction
	// Sender is the checked address of the account or domain that sent the
	// message; SenderName is the display name from the From header, shown
	// only because the address beside it was checked.
	Sender     string
	SenderName string
	Subject    string
	// MessageID is the RFC 5322 Message-ID, without angle brackets, used to
	// thread replies (In-Reply-To, References).
	MessageID  string
	References []string
	Received   time.Time
	Parts      []Part
	// Auth records how the sender was checked: "smtp-auth", "dkim", …
	Auth string
	// Language is the language the sender said the recipient reads (a
	// mail's Content-Language, the API's "language"), a BCP 47 tag; ""
	// when they said none. The text (or notice email) that brings the
	// link is in it, unless the recipient's account chose a language of
	// its own. It is not stored with the message.
	Language string
}

// Conversation is the thread between one sender and one phone. An email to
// several phones makes one conversation per phone.
type Conversation struct {
	ID           int64
	Phone        Phone
	Sender       string
	Created      time.Time
	LastActivity time.Time
}

// Sender is an account that may submit mail after SMTP AUTH.
type Sender struct {
	Address string
	Created time.Time
}

// TextJob is what the outbox keeps for one text to send: the phone, and the
// link token that the store made for it. The store seals it; notify renders
// the text from the template at the moment it sends.
type TextJob struct {
	To             Phone  `json:"to"`
	Token          string `json:"token"`
	ConversationID int64  `json:"conversation_id"`
	MessageID      int64  `json:"message_id"`
	// Language is the language the sender gave ("" for none). The text
	// is in the account's language when it chose one (asked when the
	// text is sent), else in this one, else in portal.default_language.
	Language string `json:"language,omitempty"`
}

// JobKindText is the outbox job kind of a TextJob.
const JobKindText = "text"

// JobKindEmail is the outbox job kind of a TextJob whose To is an email
// address: the notice email that gives an email recipient the link, as a
// text gives it to a phone. It goes through the mail drain, and carries
// no subject, body or filename of the message.
const JobKindEmail = "email"

// Job is one unit of work in the outbox: a text to send, later an email.
// Payload is the opened (decrypted) form of what the store keeps sealed.
type Job struct {
	ID       int64
	Kind     string
	Payload  []byte
	Attempts int // attempts made before this one
	Created  time.Time
	// Claim numbers the worker's hold on the job when the outbox handed
	// it out claimed (for a lease): the outbox records the job's outcome
	// only from the holder of its latest claim, so a worker whose lease
	// ran out, and whose job another took over, cannot undo what that
	// one did. Zero for a job handed out without a claim (read, or taken
	// when a SQLite store's full disk could not record a claim): its
	// outcome is recorded whoever holds it.
	Claim int64
}

// Recipient is the account of a phone number on the portal: one password
// for every conversation with that number.
type Recipient struct {
	Phone   Phone
	Created time.Time
}

// Session is a recipient's login in one browser. The browser holds a random
// token; the store keeps only its hash.
type Session struct {
	Phone    Phone
	Created  time.Time
	LastSeen time.Time
}

// InboxEntry is one conversation of a phone number, as its inbox lists it.
type InboxEntry struct {
	Conversation Conversation
	Latest       *Message // the newest message, opened (parts without content)
	Messages     int
	LastSeen     time.Time // when the recipient last opened it; zero if never
}

// Unread reports whether the conversation holds a message for the
// recipient that arrived after they last opened it.
func (e InboxEntry) Unread() bool {
	return e.Latest != nil && e.Latest.Direction == Inbound && e.Latest.Received.After(e.LastSeen)
}

// Outbox job kinds besides JobKindText.
const (
	// JobKindReply emails a recipient's reply to the sender: a MailJob
	// with MessageID (the reply) and ConversationID.
	JobKindReply = "reply"
	// JobKindReset emails a password-reset link: a MailJob with To, Phone
	// and Token.
	JobKindReset = "reset"
)

// MailJob is the sealed payload of an outbox job that sends an email.
type MailJob struct {
	MessageID      int64  `json:"message_id,omitempty"`
	ConversationID int64  `json:"conversation_id,omitempty"`
	To             string `json:"to,omitempty"`
	Phone          Phone  `json:"phone,omitempty"`
	Token          string `json:"token,omitempty"`
	// Language is the language of an email to the recipient (a reset, a
	// confirmation): the account's, else the page's that asked for it.
	Language string `json:"language,omitempty"`
}
