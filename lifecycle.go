package securetextd

import (
	"context"
	"time"
)

// The information lifecycle: how long a recipient may open a conversation,
// how long its content is kept, how a sender withdraws it, what the sender
// is told (delivery notices, read receipts, failed texts), and the audit
// trail that records who did what, when, from where — never what was
// written.

// Error codes of the lifecycle, beside those in error.go. The portal shows
// each in plain words; a guesser learns from them only that a link was
// real, which the link itself already says.
const (
	// EEXPIRED: the conversation's access period has passed without a new
	// message; a new message from the sender renews it.
	EEXPIRED = "expired"
	// EREVOKED: the sender withdrew the conversation. It does not come
	// back.
	EREVOKED = "revoked"
)

// Outbox job kinds of the lifecycle. Each is a MailJob to the sender of
// the conversation, threaded under the message it is about (In-Reply-To
// and References carry that message's Message-ID).
const (
	// JobKindNotice tells the sender that a message was texted: a MailJob
	// with MessageID, ConversationID and Token, the revocation token its
	// link carries.
	JobKindNotice = "notice"
	// JobKindMDN is an RFC 8098 message disposition notification
	// ("displayed"), sent when the original message asked for one with
	// Disposition-Notification-To: a MailJob with MessageID and
	// ConversationID.
	JobKindMDN = "mdn"
	// JobKindRead is a plain read notice, for senders who asked for none
	// when mail.read_receipts is "always": as JobKindMDN.
	JobKindRead = "read"
	// JobKindUndelivered tells the sender that a text could not be
	// delivered: a MailJob with MessageID and ConversationID.
	JobKindUndelivered = "undelivered"
)

// Read-receipt policies (config mail.read_receipts).
const (
	// ReceiptsMDN sends an RFC 8098 MDN when the message asked for one.
	ReceiptsMDN = "mdn"
	// ReceiptsAlways sends an MDN when asked, and a plain notice otherwise.
	ReceiptsAlways = "always"
	// ReceiptsNever sends none.
	ReceiptsNever = "never"
)

// Audit events. Each is a row of the audit trail with its time, actor,
// conversation, client address and user agent; none carries content.
const (
	AuditMessageAccepted = "message.accepted" // Detail: how the sender was checked
	AuditMessageRefused  = "message.refused"  // Detail: the SMTP command and reply code
	AuditTextQueued      = "text.queued"
	AuditTextSent        = "text.sent"
	AuditTextDelivered   = "text.delivered"
	AuditTextFailed      = "text.failed" // Detail: why
	AuditLinkOpened      = "link.opened"
	AuditPasswordSet     = "password.set"
	AuditLoginOK         = "login.ok"
	AuditLoginFailed     = "login.failed"
	AuditLoginLocked     = "login.locked"
	AuditMessageViewed   = "message.viewed"
	AuditDownloaded      = "attachment.downloaded" // Detail: the part
	AuditReplySent       = "reply.sent"
	AuditResetRequested  = "reset.requested"
	AuditResetUsed       = "reset.used"
	AuditReceiptQueued   = "receipt.queued" // Detail: "mdn" or "read"
	AuditExpired         = "conversation.expired"
	AuditRevoked         = "conversation.revoked"
	AuditPurged          = "content.purged"
	AuditConfigLoaded    = "config.loaded" // Detail: a fingerprint of the configuration
	AuditKeyLoaded       = "key.loaded"    // Detail: the public key that seals
	AuditKeyChanged      = "key.changed"   // Detail: the new public key
	AuditSenderChanged   = "sender.changed"
)

// AuditEvent is one row of the audit trail. Seq, Time and Hash are set by
// the store when it appends the row.
type AuditEvent struct {
	Seq            int64
	Time           time.Time
	Event          string
	Actor          string // who: a sender address, a phone number, "system", "operator"
	ConversationID int64  // 0 when none
	MessageID      int64  // 0 when none
	Client         string // the client's IP address, when there is one
	UserAgent      string
	Detail         string // a short, content-free qualifier
	Hash           []byte // SHA-256 of the previous row's hash and this row
}

// Origin says where a request comes from: who, from which address, with
// which program. Transports put it in the context of each request
// (WithOrigin), and the store copies it into the audit rows that the
// request causes, so that every method need not take it as an argument.
type Origin struct {
	Actor     string
	Client    string
	UserAgent string
}

type originKey struct{}

// WithOrigin returns a copy of ctx that carries o.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginFrom returns the Origin that ctx carries, or the zero Origin.
func OriginFrom(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	return o
}

// Text states, as reports show them.
const (
	TextQueued    = "queued"
	TextSent      = "texted"
	TextDelivered = "delivered"
	TextFailed    = "failed"
)

// DeliveryReport is what an SMS provider says became of a text: a Vonage
// delivery receipt, in the provider's words.
type DeliveryReport struct {
	// ProviderID is the provider's id of the text (Vonage's messageId);
	// Ref is the client reference we gave it (the outbox job id), when
	// the provider echoes it. Either finds the text.
	ProviderID string
	Ref        string
	// Delivered and Failed are the outcome: neither for intermediate
	// states (accepted, buffered, unknown).
	Delivered, Failed bool
	// Status and ErrCode are the provider's, for the audit trail.
	Status, ErrCode string
}

// SentMessage is a message as a report for its sender lists it: one line
// per phone it went to, with its state and the history of its access.
type SentMessage struct {
	MessageID      int64
	ConversationID int64
	Sender         string
	Phone          Phone
	Received       time.Time
	// State is the furthest the message got: queued, texted, delivered,
	// read, replied; or expired, revoked, purged, failed when access has
	// ended.
	State   string
	History []AuditEvent
}

// States of a SentMessage besides the text states.
const (
	StateRead    = "read"
	StateReplied = "replied"
	StateExpired = "expired"
	StateRevoked = "revoked"
	StatePurged  = "purged"
)
