package securetextd

import "time"

// APIKey is a key of the REST API, bound to one sender account: software
// that holds it sends as that sender. The key itself is shown once, when it
// is made; the store keeps only its hash and Prefix, its first characters,
// so that an operator can tell keys apart.
type APIKey struct {
	ID       int64
	Prefix   string // "stx_Ab12Cd34"
	Sender   string
	Name     string // what the operator called it: "EHR scheduling"
	Created  time.Time
	LastUsed time.Time // zero: never used
	Revoked  time.Time // zero: live
	// Admin keys place and remove legal holds; they cannot send. Sender
	// is then the account answerable for the key.
	Admin bool
}

// APIKeyPrefix starts every API key, so that a leaked key is easy to find
// in logs and repositories by secret scanners.
const APIKeyPrefix = "stx_"

// Delivery states of a text, as a sender's report shows them.
const (
	DeliveryQueued    = "queued"    // not tried yet
	DeliveryRetrying  = "retrying"  // tried, failed, will be tried again
	DeliverySent      = "sent"      // the SMS provider accepted it
	DeliveryDelivered = "delivered" // the provider's delivery report says it arrived
	DeliveryFailed    = "failed"    // given up for good, or reported undeliverable
	DeliveryUnknown   = "unknown"   // sent before the gateway kept track
)

// MessageReport is what a sender may know about a message it sent: each
// recipient's text and what the recipient did, without the content.
type MessageReport struct {
	MessageID  int64
	Sender     string
	Received   time.Time
	Recipients []RecipientReport
}

// RecipientReport is one recipient of a message: the conversation made for
// it, the state of its latest text about the message, and what happened in
// the conversation since.
type RecipientReport struct {
	ConversationID int64
	Phone          Phone
	State          string // Delivery*
	Attempts       int
	Updated        time.Time // last change of State
	Events         []AccessEvent
}

// AccessEvent is one thing that happened in a conversation, as the audit
// trail records it: Type is an Audit* event name ("link.opened",
// "message.viewed", "attachment.downloaded", "reply.sent", …).
type AccessEvent struct {
	Type string
	At   time.Time
}
