package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/securetextd/securetextd"
)

// SentMessages reports each message that was sent to a phone since since,
// from sender (every sender when ""), oldest first: one entry per phone it
// went to, with its state and the history of that conversation as the
// audit trail holds it. This is the sender's "read report"; it reads no
// content.
//
// The state is the furthest the message got — queued, texted, delivered,
// read (the recipient was shown it), replied (the recipient wrote back
// after it) — unless its text failed (failed), or access to it has ended:
// expired, revoked, purged (content deleted), the last taking precedence.
func (db *DB) SentMessages(ctx context.Context, sender string, since time.Time) ([]securetextd.SentMessage, error) {
	var out []securetextd.SentMessage
	err := db.view(ctx, func(tx *sql.Tx) (err error) {
		// The rows and states of the Sent list (sent.go), all of them.
		out, err = db.sentRows(ctx, tx, securetextd.SentQuery{Sender: sender, From: since}, true)
		if err != nil {
			return err
		}
		return addHistory(ctx, tx, out)
	})
	if err != nil {
		return nil, fmt.Errorf("store: sent messages: %w", err)
	}
	return out, nil
}

// historyQuery reads the audit rows of history. Each "!= 0" term repeats
// the condition of a partial index (audit_conversation, audit_message), so
// that SQLite's planner may use it rather than read the whole trail
// (TestAuditQueriesUseIndexes).
const historyQuery = `
	SELECT seq, time, event, actor, conversation_id, message_id, client, user_agent, detail, hash
	FROM audit WHERE (conversation_id = ? AND conversation_id != 0)
		OR (message_id = ? AND message_id != 0 AND conversation_id = 0)
	ORDER BY seq`

// history returns the audit rows of a conversation, and those of message
// that name no conversation (its acceptance), oldest first.
func history(ctx context.Context, tx *sql.Tx, conv, message int64) ([]securetextd.AuditEvent, error) {
	rows, err := tx.QueryContext(ctx, historyQuery, conv, message)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []securetextd.AuditEvent
	for rows.Next() {
		var ev securetextd.AuditEvent
		var t int64
		if err := rows.Scan(&ev.Seq, &t, &ev.Event, &ev.Actor, &ev.ConversationID, &ev.MessageID,
			&ev.Client, &ev.UserAgent, &ev.Detail, &ev.Hash); err != nil {
			return nil, err
		}
		ev.Time = fromNanos(t)
		out = append(out, ev)
	}
	return out, rows.Err()
}
