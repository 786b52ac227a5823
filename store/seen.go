package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/securetextd/securetextd"
)

// maxInbox bounds how many conversations one inbox page lists: each
// entry opens its latest message's sealed manifest (one AEAD operation and
// a row read), so a phone with thousands of conversations still gets a
// page in bounded time. The newest come first; older ones remain reachable
// through their links.
const maxInbox = 100

// LastSeen returns when phone last opened conversation id (the zero time
// if never): the conversation page reads it before the view it shows is
// recorded, and marks the messages received since as new.
func (db *DB) LastSeen(ctx context.Context, id int64, phone securetextd.Phone) (time.Time, error) {
	var seen int64
	err := db.read.QueryRowContext(ctx,
		`SELECT seen FROM conversation_seen WHERE conversation_id = ? AND phone = ?`, id, phone).Scan(&seen)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, wrap(fmt.Sprintf("last seen %d", id), err)
	}
	return fromNanos(seen), nil
}

// markSeen records, in MarkViewed's transaction, that phone opened
// conversation id at now.
func markSeen(ctx context.Context, tx *sql.Tx, id int64, phone string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `
		INSERT INTO conversation_seen (conversation_id, phone, seen) VALUES (?, ?, CAST(? AS BIGINT))
		ON CONFLICT (conversation_id, phone) DO UPDATE SET seen = excluded.seen`,
		id, phone, nanos(now))
	return err
}
