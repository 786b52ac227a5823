package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/securetextd/securetextd"
)

// MaxSentPage bounds one page of the Sent list.
const MaxSentPage = 200

// SentPage returns one page of the Sent list that q selects: one row per
// message and phone it went to, newest first, each with its state as
// SentMessages derives it (queued, texted, delivered, read, replied;
// failed, expired, revoked, purged) from the outbox's texts, the
// delivery reports, first views, replies and the conversation's access.
// more is true when rows follow the page. The state is computed in SQL,
// so that a filter on it pages like the others. With q.MessageID set,
// each row carries its conversation's history (the audit events); the
// list itself reads none, and no content.
func (db *DB) SentPage(ctx context.Context, q securetextd.SentQuery) (rows []securetextd.SentMessage, more bool, err error) {
	if q.Limit <= 0 || q.Limit > MaxSentPage {
		q.Limit = MaxSentPage
	}
	if q.Offset < 0 {
		q.Offset = 0
	}
	err = db.view(ctx, func(tx *sql.Tx) error {
		rows, err = db.sentRows(ctx, tx, q, false)
		if err != nil {
			return err
		}
		if len(rows) > q.Limit {
			rows, more = rows[:q.Limit], true
		}
		if q.MessageID == 0 {
			return nil
		}
		return addHistory(ctx, tx, rows)
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: sent page: %w", err)
	}
	return rows, more, nil
}

// sentRows reads the rows of the Sent list that q selects, newest first
// or oldest first, without their history: one more than q.Limit, so that
// the caller learns whether more follow, or every row when q.Limit is 0.
// It is the one place that says what state a message sent to a phone is
// in: SentPage (the console and its export) and SentMessages (the CLI's
// report) both read it.
func (db *DB) sentRows(ctx context.Context, tx *sql.Tx, q securetextd.SentQuery, oldestFirst bool) ([]securetextd.SentMessage, error) {
	// A conversation is expired once its last activity is at or
	// before the cut-off (access in lifecycle.go).
	cutoff := db.openCutoff(db.Now())
	inner := `
		SELECT m.id AS mid, c.id AS cid, m.sender AS sender, c.phone AS phone, m.received AS received,
			CASE
			WHEN m.purged IS NOT NULL THEN 'purged'
			WHEN c.revoked IS NOT NULL THEN 'revoked'
			WHEN c.last_activity <= ? THEN 'expired'
			WHEN EXISTS (SELECT 1 FROM conversation_messages r JOIN messages rm ON rm.id = r.message_id
				WHERE r.conversation_id = c.id AND rm.direction = ?
				AND (rm.received > m.received OR (rm.received = m.received AND rm.id > m.id))) THEN 'replied'
			WHEN EXISTS (SELECT 1 FROM message_views v WHERE v.message_id = m.id AND v.conversation_id = c.id) THEN 'read'
			ELSE coalesce((SELECT t.state FROM texts t WHERE t.message_id = m.id AND t.conversation_id = c.id
				ORDER BY t.job_id DESC LIMIT 1), 'queued')
			END AS state
		FROM messages m
		JOIN conversation_messages cm ON cm.message_id = m.id
		JOIN conversations c ON c.id = cm.conversation_id
		WHERE m.direction = ?`
	args := []any{cutoff, securetextd.Reply, securetextd.Inbound}
	if q.Sender != "" {
		inner += ` AND lower(m.sender) = ?`
		args = append(args, normalizeAddress(q.Sender))
	}
	if q.Phone != "" {
		inner += ` AND c.phone = ?`
		args = append(args, string(q.Phone))
	}
	if !q.From.IsZero() {
		inner += ` AND m.received >= ?`
		args = append(args, nanos(q.From))
	}
	if !q.To.IsZero() {
		inner += ` AND m.received < ?`
		args = append(args, nanos(q.To))
	}
	if q.MessageID != 0 {
		inner += ` AND m.id = ?`
		args = append(args, q.MessageID)
	}
	query := `SELECT mid, cid, sender, phone, received, state FROM (` + inner + `) s`
	if q.State != "" {
		query += ` WHERE state = CAST(? AS TEXT)`
		args = append(args, q.State)
	}
	if oldestFirst {
		query += ` ORDER BY received, mid, cid`
	} else {
		query += ` ORDER BY received DESC, mid DESC, cid`
	}
	if q.Limit > 0 {
		query += ` LIMIT ? OFFSET ?`
		args = append(args, q.Limit+1, q.Offset)
	}
	r, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var rows []securetextd.SentMessage
	for r.Next() {
		var s securetextd.SentMessage
		var received int64
		if err := r.Scan(&s.MessageID, &s.ConversationID, &s.Sender, &s.Phone, &received, &s.State); err != nil {
			return nil, err
		}
		s.Received = fromNanos(received)
		rows = append(rows, s)
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return rows, nil
}

// addHistory gives each row its conversation's history (history in
// report.go).
func addHistory(ctx context.Context, tx *sql.Tx, rows []securetextd.SentMessage) error {
	for i := range rows {
		h, err := history(ctx, tx, rows[i].ConversationID, rows[i].MessageID)
		if err != nil {
			return err
		}
		rows[i].History = h
	}
	return nil
}

// SentStates are the states a row of the Sent list can be in, in the
// order a message goes through them, then those where it ended.
var SentStates = []string{
	securetextd.TextQueued, securetextd.TextSent, securetextd.TextDelivered,
	securetextd.StateRead, securetextd.StateReplied,
	securetextd.TextFailed, securetextd.StateExpired, securetextd.StateRevoked, securetextd.StatePurged,
}

// ValidSentState reports whether s is one of SentStates.
func ValidSentState(s string) bool {
	for _, v := range SentStates {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
