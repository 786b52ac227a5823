package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/securetextd/securetextd"
)

// purgeBatch is how many messages one purge transaction deletes, so that
// a large purge does not hold the write lock for long.
const purgeBatch = 50

// PurgeResult says what Purge did.
type PurgeResult struct {
	Messages int // messages whose content was deleted
	Jobs     int // finished outbox jobs deleted (their payloads held tokens)
	// Fingerprints counts the API's idempotency records deleted once
	// past IdempotencyWindow.
	Fingerprints int
	// Checkpointed is true when the WAL was folded into the database file
	// and truncated afterwards: no copy of the deleted pages is left in
	// it. A reader that held a snapshot throughout can prevent it; the
	// next purge tries again.
	Checkpointed bool
}

// Purge deletes the content of every message received more than
// Policy.Retention ago (nothing when Retention is zero), except a message
// of a conversation under legal hold (hold.go): its parts, with
// the sealed chunks of each (the parts_shred trigger), and its sealed
// manifest (subject, names, filenames). What the audit trail and reports
// need stays: the message row (sender, time, size, how it was checked),
// its conversations and their events. Each batch is one transaction that
// records a content.purged event per conversation of each message.
//
// The database runs with secure_delete, so SQLite zeroes the freed pages;
// Purge then checkpoints the WAL and truncates it, so that the deleted
// ciphertext is in neither file. PostgreSQL has no such setting: a deleted
// row stays in the server's files, as it was, until VACUUM reuses its
// space; it is still sealed. Finished outbox jobs past the retention
// period are deleted too: their sealed payloads hold link tokens.
//
// The REST API's idempotency records go once IdempotencyWindow has passed,
// whatever the retention (zero included): no retry is answered from them
// after it, and each holds a keyed fingerprint of a message's content
// (fingerprint.go). They are kept for the whole window even when the
// retention is shorter: a retry that found none would send the message
// again.
func (db *DB) Purge(ctx context.Context) (PurgeResult, error) {
	var res PurgeResult
	var err error
	if res.Fingerprints, err = db.purgeFingerprints(ctx); err != nil {
		return res, fmt.Errorf("store: purge idempotency records: %w", err)
	}
	if db.Policy.Retention <= 0 {
		return res, nil
	}
	for {
		n, err := db.purgeBatch(ctx)
		if err != nil {
			return res, fmt.Errorf("store: purge: %w", err)
		}
		res.Messages += n
		if n < purgeBatch {
			break
		}
	}
	err = db.update(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM jobs WHERE state != 'pending' AND updated < ?`,
			nanos(db.Now().Add(-db.Policy.Retention)))
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		res.Jobs = int(n)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("store: purge jobs: %w", err)
	}
	if res.Messages > 0 || res.Jobs > 0 {
		if res.Checkpointed, err = db.Checkpoint(ctx); err != nil {
			return res, err
		}
	}
	return res, nil
}

// purgeBatch purges the content of up to purgeBatch messages and returns
// how many.
func (db *DB) purgeBatch(ctx context.Context) (int, error) {
	n := 0
	err := db.update(ctx, func(tx *sql.Tx) error {
		now := db.Now()
		ids, err := queryIDs(ctx, tx, `
			SELECT id FROM messages WHERE purged IS NULL AND received < ? AND `+notHeld+`
			ORDER BY received LIMIT ?`, nanos(now.Add(-db.Policy.Retention)), purgeBatch)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := db.purgeMessage(ctx, tx, id, "system", now); err != nil {
				return fmt.Errorf("message %d: %w", id, err)
			}
		}
		n = len(ids)
		return nil
	})
	return n, err
}

// purgeMessage deletes the content of message id, recording a
// content.purged event by actor for each of its conversations.
func (db *DB) purgeMessage(ctx context.Context, tx *sql.Tx, id int64, actor string, now time.Time) error {
	var convs []int64
	rows, err := tx.QueryContext(ctx, `SELECT conversation_id FROM conversation_messages WHERE message_id = ? ORDER BY conversation_id`, id)
	if err != nil {
		return err
	}
	for rows.Next() {
		var c int64
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return err
		}
		convs = append(convs, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// The trigger parts_shred deletes each part's blob, and the blob its
	// chunks (ON DELETE CASCADE).
	if _, err := tx.ExecContext(ctx, `DELETE FROM parts WHERE message_id = ?`, id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx,
		`UPDATE messages SET manifest = ?, purged = ? WHERE id = ?`, []byte{}, nanos(now), id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `
		UPDATE conversations SET purged = ? WHERE purged IS NULL AND id IN (
			SELECT conversation_id FROM conversation_messages WHERE message_id = ?)`, nanos(now), id); err != nil {
		return err
	}
	if len(convs) == 0 {
		convs = []int64{0}
	}
	for _, c := range convs {
		if err := db.audit(ctx, tx, securetextd.AuditEvent{
			Time: now, Event: securetextd.AuditPurged, Actor: actor, ConversationID: c, MessageID: id,
		}); err != nil {
			return err
		}
	}
	return nil
}

// Checkpoint folds the WAL into the database file and truncates it, and
// reports whether it could: a reader holding an old snapshot makes
// SQLite leave the WAL as it is. It tries for a few seconds.
//
// On PostgreSQL it does nothing: the server checkpoints its own WAL.
func (db *DB) Checkpoint(ctx context.Context) (bool, error) {
	if db.eng.name != SQLite {
		return true, nil
	}
	for range 20 {
		var busy, log, done int
		if err := db.write.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &log, &done); err != nil {
			return false, fmt.Errorf("store: checkpoint: %w", err)
		}
		if busy == 0 {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(150 * time.Millisecond):
		}
	}
	return false, nil
}

// ExpireConversations records, once each, the conversations whose access
// period has passed since the last sweep: a conversation.expired event
// apiece. Access itself ends on time whether or not the sweep has run
// (every lookup checks); the sweep is for the audit trail, and a new
// message that renews a conversation makes a later expiry count again.
func (db *DB) ExpireConversations(ctx context.Context) (int, error) {
	exp := db.Policy.AccessExpiry
	if exp <= 0 {
		return 0, nil
	}
	total := 0
	for {
		n := 0
		err := db.update(ctx, func(tx *sql.Tx) error {
			now := db.Now()
			rows, err := tx.QueryContext(ctx, `
				SELECT id, phone, last_activity FROM conversations
				WHERE revoked IS NULL AND expired IS NULL AND last_activity <= ?
				ORDER BY last_activity LIMIT 500`, nanos(now.Add(-exp)))
			if err != nil {
				return err
			}
			type expiring struct {
				id    int64
				phone string
				last  int64
			}
			var list []expiring
			for rows.Next() {
				var e expiring
				if err := rows.Scan(&e.id, &e.phone, &e.last); err != nil {
					rows.Close()
					return err
				}
				list = append(list, e)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, e := range list {
				at := fromNanos(e.last).Add(exp)
				if _, err := tx.ExecContext(ctx,
					`UPDATE conversations SET expired = ? WHERE id = ?`, nanos(at), e.id); err != nil {
					return err
				}
				if err := db.audit(ctx, tx, securetextd.AuditEvent{
					Time: now, Event: securetextd.AuditExpired, Actor: "system", ConversationID: e.id,
					Detail: "at=" + at.Format(time.RFC3339),
				}); err != nil {
					return err
				}
			}
			n = len(list)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("store: expire conversations: %w", err)
		}
		total += n
		if n < 500 {
			return total, nil
		}
	}
}
