package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/securetextd/securetextd"
)

// Legal holds (migration 0010). A hold is one row of holds per
// conversation; while it is there:
//
//   - Purge skips every message of the conversation (notHeld), and a
//     message the conversation shares with another, since content is kept
//     once per message;
//   - DeleteConversation purges nothing: it records the delete in
//     conversation_deletes with done NULL and says so (Deferred);
//   - RemoveHold, in the transaction that deletes the hold, carries out
//     such a pending delete.
//
// Nothing else deletes content: expiry only ends access (lifecycle.go),
// and removing a sender account leaves its messages.
//
// The reason is an operator's free text, and free text about a legal
// matter names people ("subpoena, Doe v. Mercy, re: Jane Roe's records"):
// it is sealed for its row like a recovery address, shown only by
// ListHolds, and kept out of the audit trail, whose rows are exported as
// plain text. Who placed a hold, and when, is not secret: it is audited.

// notHeld is a condition on the messages table (unaliased): the message
// belongs to no conversation under hold.
const notHeld = `NOT EXISTS (SELECT 1 FROM conversation_messages hcm JOIN holds h ON h.conversation_id = hcm.conversation_id
	WHERE hcm.message_id = messages.id)`

// Bounds of what an operator types.
const (
	maxHoldReason = 2000
	maxActorName  = 128
)

func holdPlace(conversation int64) place { return place{"holds", "reason", rowID(conversation)} }

// CheckActor returns an EINVALID error unless by names someone: 1 to 128
// printable characters, no line breaks. It is what --by and an admin's
// account must be to stand as an audit row's actor.
func CheckActor(by string) error {
	if strings.TrimSpace(by) == "" {
		return securetextd.Errorf(securetextd.EINVALID, "Say who you are: a name is required.")
	}
	if len(by) > maxActorName || !utf8.ValidString(by) || strings.IndexFunc(by, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return securetextd.Errorf(securetextd.EINVALID, "A name is 1 to %d printable characters.", maxActorName)
	}
	return nil
}

// PlaceHold puts conversation id under legal hold, placed by by, for
// reason (sealed; see above). It is an ENOTFOUND error if there is no such
// conversation, ECONFLICT if it is held already or was deleted, and
// EINVALID for an empty
// or overlong reason or a bad name.
func (db *DB) PlaceHold(ctx context.Context, id int64, reason, by string) error {
	reason = strings.TrimSpace(reason)
	if err := CheckActor(by); err != nil {
		return err
	}
	if reason == "" || len(reason) > maxHoldReason || !utf8.ValidString(reason) {
		return securetextd.Errorf(securetextd.EINVALID, "A hold needs a reason: 1 to %d bytes of text.", maxHoldReason)
	}
	err := db.update(ctx, func(tx *sql.Tx) error {
		if err := conversationExists(ctx, tx, id); err != nil {
			return err
		}
		var deleted bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM conversation_deletes
			WHERE conversation_id = ? AND done IS NOT NULL)`, id).Scan(&deleted); err != nil {
			return err
		}
		if deleted {
			return securetextd.Errorf(securetextd.ECONFLICT, "Conversation %d was deleted: there is nothing left to hold.", id)
		}
		now := db.Now()
		res, err := tx.ExecContext(ctx, `
			INSERT INTO holds (conversation_id, reason, placed_by, placed) VALUES (?, ?, ?, ?)
			ON CONFLICT (conversation_id) DO NOTHING`,
			id, db.seal([]byte(reason), holdPlace(id)), by, nanos(now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return securetextd.Errorf(securetextd.ECONFLICT, "Conversation %d is held already (see hold list).", id)
		}
		return db.audit(ctx, tx, securetextd.AuditEvent{
			Time: now, Event: securetextd.AuditHoldPlaced, Actor: by, ConversationID: id,
		})
	})
	return wrap(fmt.Sprintf("place hold on %d", id), err)
}

// RemoveHold lifts the hold on conversation id, removed by by. A delete
// that was deferred by the hold is carried out in the same transaction:
// then the result says what it purged; otherwise it is nil. Messages past
// the retention period are left to the next Purge. It is an ENOTFOUND
// error if the conversation is not held.
func (db *DB) RemoveHold(ctx context.Context, id int64, by string) (*securetextd.DeleteResult, error) {
	if err := CheckActor(by); err != nil {
		return nil, err
	}
	var done *securetextd.DeleteResult
	err := db.update(ctx, func(tx *sql.Tx) error {
		done = nil
		res, err := tx.ExecContext(ctx, `DELETE FROM holds WHERE conversation_id = ?`, id)
		if err != nil {
			return err
		}
		if err := mustAffectOne(res, "Conversation %d is not held.", id); err != nil {
			return err
		}
		now := db.Now()
		if err := db.audit(ctx, tx, securetextd.AuditEvent{
			Time: now, Event: securetextd.AuditHoldRemoved, Actor: by, ConversationID: id,
		}); err != nil {
			return err
		}
		var requester string
		err = tx.QueryRowContext(ctx,
			`SELECT requested_by FROM conversation_deletes WHERE conversation_id = ? AND done IS NULL`, id).Scan(&requester)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		// The delete is the requester's, done now that nothing holds it.
		n, err := db.deleteNow(ctx, tx, id, requester, now)
		if err != nil {
			return err
		}
		done = &securetextd.DeleteResult{Purged: n}
		return nil
	})
	if err != nil {
		return nil, wrap(fmt.Sprintf("remove hold on %d", id), err)
	}
	if done != nil && done.Purged > 0 {
		if _, err := db.Checkpoint(ctx); err != nil {
			return done, err
		}
	}
	return done, nil
}

// ListHolds returns every hold, oldest first, reasons opened.
func (db *DB) ListHolds(ctx context.Context) ([]securetextd.Hold, error) {
	var holds []securetextd.Hold
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			SELECT h.conversation_id, h.reason, h.placed_by, h.placed,
				EXISTS (SELECT 1 FROM conversation_deletes d WHERE d.conversation_id = h.conversation_id AND d.done IS NULL)
			FROM holds h ORDER BY h.placed, h.conversation_id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var h securetextd.Hold
			var sealed []byte
			var placed int64
			if err := rows.Scan(&h.ConversationID, &sealed, &h.By, &placed, &h.DeletePending); err != nil {
				return err
			}
			reason, err := db.open(sealed, holdPlace(h.ConversationID))
			if err != nil {
				return fmt.Errorf("hold on %d: %w", h.ConversationID, err)
			}
			h.Reason, h.Placed = string(reason), fromNanos(placed)
			holds = append(holds, h)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrap("list holds", err)
	}
	return holds, nil
}

// DeleteConversation deletes conversation id at by's request (its sender,
// or an operator on the sender's behalf): access to it ends at once (it is
// withdrawn, if it was not), and the content of its messages is purged,
// except a message that another conversation not yet deleted still shares.
// A held conversation is withdrawn but not purged: the delete is recorded
// and the result is Deferred; it happens when the hold is removed. It is
// an ENOTFOUND error if there is no such conversation, and ECONFLICT if it
// was deleted already.
func (db *DB) DeleteConversation(ctx context.Context, id int64, by string) (securetextd.DeleteResult, error) {
	var res securetextd.DeleteResult
	if err := CheckActor(by); err != nil {
		return res, err
	}
	err := db.update(ctx, func(tx *sql.Tx) error {
		res = securetextd.DeleteResult{}
		if err := conversationExists(ctx, tx, id); err != nil {
			return err
		}
		var done sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT done FROM conversation_deletes WHERE conversation_id = ?`, id).Scan(&done)
		switch {
		case err == nil && done.Valid:
			return securetextd.Errorf(securetextd.ECONFLICT, "Conversation %d was deleted already.", id)
		case err == nil:
			res.Deferred = true // asked before; the hold still stands
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		now := db.Now()
		if err := db.revoke(ctx, tx, id, now); err != nil && securetextd.ErrorCode(err) != securetextd.EREVOKED {
			return err
		}
		var held bool
		if err := tx.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM holds WHERE conversation_id = ?)`, id).Scan(&held); err != nil {
			return err
		}
		if !held {
			res.Purged, err = db.deleteNow(ctx, tx, id, by, now)
			return err
		}
		res.Deferred = true
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO conversation_deletes (conversation_id, requested_by, requested) VALUES (?, ?, ?)`,
			id, by, nanos(now)); err != nil {
			return err
		}
		return db.audit(ctx, tx, securetextd.AuditEvent{
			Time: now, Event: securetextd.AuditDeleteDeferred, Actor: by, ConversationID: id,
			Detail: "held",
		})
	})
	if err != nil {
		return res, wrap(fmt.Sprintf("delete conversation %d", id), err)
	}
	if res.Purged > 0 {
		if _, err := db.Checkpoint(ctx); err != nil {
			return res, err
		}
	}
	return res, nil
}

// deleteNow marks conversation id deleted and purges its messages that no
// other conversation still needs (one that is not deleted, held or not),
// in tx, recording it as by's; it returns how many it purged. The caller
// has checked that the conversation is not held.
func (db *DB) deleteNow(ctx context.Context, tx *sql.Tx, id int64, by string, now time.Time) (int, error) {
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO conversation_deletes (conversation_id, requested_by, requested, done) VALUES (?, ?, ?, ?)
		ON CONFLICT (conversation_id) DO UPDATE SET done = excluded.done`,
		id, by, nanos(now), nanos(now)); err != nil {
		return 0, err
	}
	ids, err := queryIDs(ctx, tx, `
		SELECT m.id FROM conversation_messages cm JOIN messages m ON m.id = cm.message_id
		WHERE cm.conversation_id = ? AND m.purged IS NULL AND NOT EXISTS (
			SELECT 1 FROM conversation_messages o WHERE o.message_id = m.id AND o.conversation_id != ?
			AND NOT EXISTS (SELECT 1 FROM conversation_deletes d WHERE d.conversation_id = o.conversation_id AND d.done IS NOT NULL))
		ORDER BY m.id`, id, id)
	if err != nil {
		return 0, err
	}
	for _, m := range ids {
		if err := db.purgeMessage(ctx, tx, m, by, now); err != nil {
			return 0, fmt.Errorf("message %d: %w", m, err)
		}
	}
	return len(ids), db.audit(ctx, tx, securetextd.AuditEvent{
		Time: now, Event: securetextd.AuditDeleted, Actor: by, ConversationID: id,
		Detail: fmt.Sprintf("purged=%d", len(ids)),
	})
}

// conversationExists is nil when conversation id exists, ENOTFOUND
// otherwise.
func conversationExists(ctx context.Context, tx *sql.Tx, id int64) error {
	var exists bool
	if err := tx.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM conversations WHERE id = ?)`, id).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return securetextd.Errorf(securetextd.ENOTFOUND, "No conversation %d.", id)
	}
	return nil
}
