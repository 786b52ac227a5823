package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/securetextd/securetextd"
)

// ReplyConversation returns the conversation that reply id was written
// in: where the console finds whose it is. It is an ENOTFOUND error if id
// is no recipient's reply.
func (db *DB) ReplyConversation(ctx context.Context, id int64) (*securetextd.Conversation, error) {
	var conv int64
	err := db.read.QueryRowContext(ctx, `
		SELECT cm.conversation_id FROM conversation_messages cm JOIN messages m ON m.id = cm.message_id
		WHERE cm.message_id = ? AND m.direction = ? ORDER BY cm.conversation_id LIMIT 1`,
		id, securetextd.Reply).Scan(&conv)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, securetextd.Errorf(securetextd.ENOTFOUND, "No such reply.")
	}
	if err != nil {
		return nil, fmt.Errorf("store: conversation of reply %d: %w", id, err)
	}
	return db.Conversation(ctx, conv)
}
