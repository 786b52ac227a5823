package store

import (
	"context"

	"github.com/securetextd/securetextd"
)

// What RecordSenderChange records of a change to a sender account.
const (
	SenderAdded    = "add"     // the account was created
	SenderPassword = "passwd"  // its password was set
	SenderRemoved  = "removed" // the account was removed
)

// RecordSenderChange writes to the audit trail that the sender account
// address was changed: what is SenderAdded, SenderPassword or
// SenderRemoved. The actor is ctx's origin's (the operator at the command
// line, the admin in the console). The trail holds the address and what
// was done, never a password.
func (db *DB) RecordSenderChange(ctx context.Context, what, address string) error {
	return db.Audit(ctx, securetextd.AuditEvent{
		Event: securetextd.AuditSenderChanged, Detail: what + " " + address,
	})
}
