package securetextd

import "time"

// Legal hold: a conversation that a subpoena, an audit or a dispute needs
// is kept whole until the hold is removed. Retention does not purge it and
// a sender's delete waits; access to it still expires and may still be
// withdrawn, since a hold is about keeping the record, not about showing
// it to the recipient.

// Audit events of holds, deletes and exports. Their Actor is who acted
// ("operator:NAME" from the command line, the admin key's account from the
// API); none carries the hold's reason, which may name a patient or a
// matter and is kept sealed in the store.
const (
	AuditHoldPlaced     = "hold.placed"
	AuditHoldRemoved    = "hold.removed"
	AuditDeleteDeferred = "conversation.delete_deferred" // a delete asked for while held
	AuditDeleted        = "conversation.deleted"         // Detail: how many messages were purged
	AuditExported       = "conversation.exported"        // Detail: format, messages, whether sealed
)

// DeferredMessage is what a delete of a held conversation answers, on the
// command line and in the API.
const DeferredMessage = "held: deletion deferred until the hold is removed"

// DeletedMessage is the message of the EREVOKED error that a conversation
// its sender deleted answers, where a withdrawn one says it was withdrawn:
// the portal tells the recipient which.
const DeletedMessage = "This conversation was deleted by the sender."

// Hold is a legal hold on one conversation.
type Hold struct {
	ConversationID int64
	// Reason is the operator's free text, as given. It may be sensitive:
	// the store keeps it sealed, and it is shown only to operators and
	// admins (hold list), never logged or audited.
	Reason string
	By     string // who placed it
	Placed time.Time
	// DeletePending is set when a delete was asked for while held: it
	// happens when the hold is removed.
	DeletePending bool
}

// DeleteResult says what a delete of a conversation did.
type DeleteResult struct {
	// Deferred is true when the conversation is held: nothing was
	// purged, the delete is recorded and happens when the hold is
	// removed (DeferredMessage).
	Deferred bool
	// Purged counts the messages whose content was deleted. A message
	// that another conversation still shares (an email to several
	// phones) is kept until that one is deleted or its retention ends.
	Purged int
}
