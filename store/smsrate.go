package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// The SMS rate of the whole cluster. sms.rate bounds the texts sent per
// second by the gateway, not by each node: every node takes the moment of
// each text it sends, its slot, from one row of the database. The row
// holds a theoretical arrival time (GCRA, as in ATM's cell rate
// algorithm): tat is when the next slot after the one last given out
// begins, so a new slot is max(tat, now), and taking it moves tat one
// interval past it. A burst of one: after a quiet spell the first text
// goes at once, and the next one interval later.
//
// Taking a slot is one UPDATE … RETURNING, atomic on both engines and
// outside PostgreSQL's write lock (updateRows): slots are spaced by the
// interval however many nodes ask at once. The worker then sleeps until
// its slot holding no transaction and no lock, and claims its text only
// once the slot has come (notify/slots.go), so that no lease has to cover
// the wait.

// TakeTextSlot takes the next slot for a text at one text per interval and
// returns when it begins: now, or later when other texts, on this node or
// another, have taken the slots before it. The caller sends no earlier.
func (db *DB) TakeTextSlot(ctx context.Context, now time.Time, interval time.Duration) (time.Time, error) {
	if interval <= 0 {
		return time.Time{}, fmt.Errorf("store: take text slot: interval %v must be positive", interval)
	}
	var tat int64
	err := db.updateRows(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `
			UPDATE sms_rate SET tat = (CASE WHEN tat > CAST(? AS BIGINT) THEN tat ELSE CAST(? AS BIGINT) END) + CAST(? AS BIGINT)
			WHERE id = 1 RETURNING tat`, nanos(now), nanos(now), int64(interval)).Scan(&tat)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("store: take text slot: %w", err)
	}
	return fromNanos(tat - int64(interval)), nil
}

// ReturnTextSlot gives back slot, taken with TakeTextSlot at interval and
// not used (no text was due after all), if no later slot has been taken
// since; otherwise the slot is lost, and the texts after it go one
// interval later than they might have: the rate is a ceiling.
func (db *DB) ReturnTextSlot(ctx context.Context, slot time.Time, interval time.Duration) error {
	err := db.updateRows(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE sms_rate SET tat = CAST(? AS BIGINT) WHERE id = 1 AND tat = CAST(? AS BIGINT)`,
			nanos(slot), nanos(slot)+int64(interval))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: return text slot: %w", err)
	}
	return nil
}

// HoldTexts gives out no slot that begins before until: the SMS provider
// asked the account to slow down (notify.ThrottledError), and the account
// is the whole cluster's.
func (db *DB) HoldTexts(ctx context.Context, until time.Time) error {
	err := db.updateRows(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE sms_rate SET tat = CAST(? AS BIGINT) WHERE id = 1 AND tat < CAST(? AS BIGINT)`,
			nanos(until), nanos(until))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: hold texts: %w", err)
	}
	return nil
}
