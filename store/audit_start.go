package store

import (
	"context"

	"github.com/securetextd/securetextd"
)

// RecordStart writes to the audit trail, when the daemon starts, the
// configuration it runs with and the key that seals new content.
// configuration identifies the configuration without its secrets
// (cmd/securetextd writes "sha256:" and a digest of it); publicKey is the
// sealing key's age recipient (SealingKey). A key is recorded when it
// differs from the last one recorded: as key.loaded the first time, as
// key.changed after another. The actor is ctx's origin's.
func (db *DB) RecordStart(ctx context.Context, configuration, publicKey string) error {
	if err := db.Audit(ctx, securetextd.AuditEvent{
		Event: securetextd.AuditConfigLoaded, Detail: configuration,
	}); err != nil {
		return err
	}
	last, err := db.LastAudit(ctx, securetextd.AuditKeyLoaded, securetextd.AuditKeyChanged)
	if err != nil {
		return err
	}
	event := securetextd.AuditKeyLoaded
	switch {
	case last == nil:
	case last.Detail == publicKey:
		return nil // the same key as last time
	default:
		event = securetextd.AuditKeyChanged
	}
	return db.Audit(ctx, securetextd.AuditEvent{Event: event, Detail: publicKey})
}
