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
	err := db.view(ctx, func(tx *sql.Tx) error {
		now := db.Now()
		q := `
			SELECT m.id, c.id, m.sender, c.phone, m.received, m.purged IS NOT NULL, c.revoked, c.last_activity,
				coalesce((SELECT t.state FROM texts t WHERE t.message_id = m.id AND t.conversation_id = c.id
					ORDER BY t.job_id DESC LIMIT 1), ''),
				EXISTS (SELECT 1 FROM message_views v WHERE v.message_id = m.id AND v.conversation_id = c.id),
				EXISTS (SELECT 1 FROM conversation_messages r JOIN messages rm ON rm.id = r.message_id
					WHERE r.conversation_id = c.id AND rm.direction = ?
					AND (rm.received > m.received OR (rm.received = m.received AND rm.id > m.id)))
			FROM messages m
			JOIN conversation_messages cm ON cm.message_id = m.id
			JOIN conversations c ON c.id = cm.conversation_id
			WHERE m.direction = ? AND m.received >= ?`
		args := []any{securetextd.Reply, securetextd.Inbound, nanos(since)}
		if sender != "" {
			q += ` AND lower(m.sender) = lower(?)`
			args = append(args, sender)
		}
		rows, err := tx.QueryContext(ctx, q+` ORDER BY m.received, m.id, c.id`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s securetextd.SentMessage
			var received, last int64
			var purged, read, replied bool
			var revoked sql.NullInt64
			var text string
			if err := rows.Scan(&s.MessageID, &s.ConversationID, &s.Sender, &s.Phone, &received,
				&purged, &revoked, &last, &text, &read, &replied); err != nil {
				return err
			}
			s.Received = fromNanos(received)
			s.State = securetextd.TextQueued
			switch {
			case purged:
				s.State = securetextd.StatePurged
			case revoked.Valid:
				s.State = securetextd.StateRevoked
			case db.access(last, revoked, now) != nil:
				s.State = securetextd.StateExpired
			case replied:
				s.State = securetextd.StateReplied
			case read:
				s.State = securetextd.StateRead
			case text != "":
				s.State = text
			}
			out = append(out, s)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		for i := range out {
			h, err := history(ctx, tx, out[i].ConversationID, out[i].MessageID)
			if err != nil {
				return err
			}
			out[i].History = h
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: sent messages: %w", err)
	}
	return out, nil
}

// history returns the audit rows of a conversation, and those of message
// that name no conversation (its acceptance), oldest first.
func history(ctx context.Context, tx *sql.Tx, conv, message int64) ([]securetextd.AuditEvent, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT seq, time, event, actor, conversation_id, message_id, client, user_agent, detail, hash
		FROM audit WHERE conversation_id = ? OR (message_id = ? AND conversation_id = 0)
		ORDER BY seq`, conv, message)
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
