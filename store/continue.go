package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/securetextd/securetextd"
)

// latestConversation returns the conversation that a new message from
// sender to phone continues under Policy.ContinuePerSender: the latest
// conversation between them, unless the sender withdrew it, asked for it
// to be deleted (done, or deferred by a legal hold), or a message of it was
// purged. It returns nil when the message starts a new conversation;
// otherwise the conversation as it stands, which the caller joins without
// reading it again (continueConversation).
//
// Each test reads one row (purgeMessage marks the conversation, not only
// the message), so the cost does not grow with the conversation's length:
// this runs at every commit of every message.
//
// It runs in the write transaction that commits the message. Write
// transactions are serialized on both engines (SQLite's one writer,
// PostgreSQL's advisory lock, taken before this query reads under READ
// COMMITTED), so two messages committed at once, on one node or on two,
// cannot both find none and start two conversations.
func latestConversation(ctx context.Context, tx *sql.Tx, phone securetextd.Phone, sender string) (*securetextd.Conversation, error) {
	c := &securetextd.Conversation{Phone: phone}
	var created int64
	var open bool
	err := tx.QueryRowContext(along(ctx), `
		SELECT c.id, c.sender, c.created,
			c.revoked IS NULL
			AND NOT EXISTS (SELECT 1 FROM conversation_deletes d WHERE d.conversation_id = c.id)
			AND c.purged IS NULL
		FROM conversations c
		WHERE c.phone = ? AND lower(c.sender) = ?
		ORDER BY c.id DESC LIMIT 1`,
		phone, normalizeAddress(sender)).Scan(&c.ID, &c.Sender, &created, &open)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !open) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.Created = fromNanos(created)
	return c, nil
}
