package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/securetextd/securetextd"
)

// ConversationRecord is a conversation as an export writes it: its
// messages in both directions, manifests opened (content is read with
// OpenPart), and for each message the audit rows about it, all read in
// one snapshot.
type ConversationRecord struct {
	Conversation securetextd.Conversation
	Messages     []*securetextd.Message
	// History holds, by message id, the audit rows that name the message
	// (accepted, texted, delivered, downloaded, replied, purged…) and the
	// views that showed it, oldest first. Rows about the conversation as
	// a whole (links opened, logins, holds, exports) name no message and
	// are in the trail itself (audit export).
	History map[int64][]securetextd.AuditEvent
}

// ConversationRecord reads conversation id for an export. It is an
// ENOTFOUND error if there is no such conversation.
func (db *DB) ConversationRecord(ctx context.Context, id int64) (*ConversationRecord, error) {
	rec := &ConversationRecord{History: map[int64][]securetextd.AuditEvent{}}
	err := db.view(ctx, func(tx *sql.Tx) error {
		c := &rec.Conversation
		c.ID = id
		var created, active int64
		err := tx.QueryRowContext(ctx,
			`SELECT phone, sender, created, last_activity FROM conversations WHERE id = ?`,
			id).Scan(&c.Phone, &c.Sender, &created, &active)
		if errors.Is(err, sql.ErrNoRows) {
			return securetextd.Errorf(securetextd.ENOTFOUND, "No conversation %d.", id)
		}
		if err != nil {
			return err
		}
		c.Created, c.LastActivity = fromNanos(created), fromNanos(active)
		if rec.Messages, err = db.loadMessages(ctx, tx,
			`m.id IN (SELECT message_id FROM conversation_messages WHERE conversation_id = ?)`, id); err != nil {
			return err
		}
		ours := make(map[int64]bool, len(rec.Messages))
		for _, m := range rec.Messages {
			ours[m.ID] = true
		}
		// A message's rows name it with this conversation, or with none
		// (its acceptance, before it had conversations).
		rows, err := tx.QueryContext(ctx, recordAuditQuery, id, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var ev securetextd.AuditEvent
			var t int64
			if err := rows.Scan(&ev.Seq, &t, &ev.Event, &ev.Actor, &ev.ConversationID, &ev.MessageID,
				&ev.Client, &ev.UserAgent, &ev.Detail, &ev.Hash); err != nil {
				return err
			}
			ev.Time = fromNanos(t)
			for _, m := range eventMessages(ev) {
				if ours[m] {
					rec.History[m] = append(rec.History[m], ev)
				}
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrap(fmt.Sprintf("conversation record %d", id), err)
	}
	return rec, nil
}

// eventMessages lists the messages an audit row is about: its message, or
// for a view every message it showed ("messages=3,5", lifecycle.go).
func eventMessages(ev securetextd.AuditEvent) []int64 {
	if ev.Event == securetextd.AuditMessageViewed {
		if list, ok := strings.CutPrefix(ev.Detail, "messages="); ok {
			var ids []int64
			for s := range strings.SplitSeq(list, ",") {
				if n, err := strconv.ParseInt(s, 10, 64); err == nil {
					ids = append(ids, n)
				}
			}
			return ids
		}
	}
	if ev.MessageID == 0 {
		return nil
	}
	return []int64{ev.MessageID}
}

// recordAuditQuery reads a conversation's audit rows for its record: those
// naming it, and those of its messages naming none. Each "!= 0" term
// repeats the condition of a partial index, so that SQLite's planner may
// use it rather than read the whole trail (TestAuditQueriesUseIndexes).
const recordAuditQuery = `
	SELECT seq, time, event, actor, conversation_id, message_id, client, user_agent, detail, hash
	FROM audit WHERE (conversation_id = ? AND conversation_id != 0)
		OR (conversation_id = 0 AND message_id != 0
			AND message_id IN (SELECT message_id FROM conversation_messages WHERE conversation_id = ?))
	ORDER BY seq`
