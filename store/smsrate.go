package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
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

// slotMemory is what a SQLite store's one serving process knows of the
// rate's row: the theoretical arrival time it last wrote. When the disk is
// full, a slot cannot be written; the process, which alone sends texts
// from the file (StartNode), then keeps the rate in memory from there, and
// writes resume from the later of the two.
type slotMemory struct {
	mu  sync.Mutex
	tat int64
}

// note remembers tat, when later than what it knows.
func (m *slotMemory) note(tat int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tat = max(m.tat, tat)
}

// undo forgets the slot of interval before tat, if tat is the last it
// noted: the slot was given back.
func (m *slotMemory) undo(tat, interval int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tat == tat {
		m.tat = tat - interval
	}
}

// after is now, or the time it last noted if later.
func (m *slotMemory) after(now int64) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return max(m.tat, now)
}

// spaceless reports whether err is SQLite's full disk, which the slots
// outlive in memory.
func (db *DB) spaceless(err error) bool {
	return db.eng.name == SQLite && errors.Is(err, errStorageFull)
}

// TakeTextSlot takes the next slot for a text at one text per interval and
// returns when it begins: now, or later when other texts, on this node or
// another, have taken the slots before it. The caller sends no earlier.
func (db *DB) TakeTextSlot(ctx context.Context, now time.Time, interval time.Duration) (time.Time, error) {
	if interval <= 0 {
		return time.Time{}, fmt.Errorf("store: take text slot: interval %v must be positive", interval)
	}
	var tat int64
	from := nanos(now)
	if db.eng.name == SQLite {
		from = db.slots.after(from)
	}
	err := db.updateRows(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `
			UPDATE sms_rate SET tat = (CASE WHEN tat > CAST(? AS BIGINT) THEN tat ELSE CAST(? AS BIGINT) END) + CAST(? AS BIGINT)
			WHERE id = 1 RETURNING tat`, from, from, int64(interval)).Scan(&tat)
	})
	if db.spaceless(err) {
		tat, err = from+int64(interval), nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("store: take text slot: %w", err)
	}
	db.slots.note(tat)
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
	if db.eng.name == SQLite {
		db.slots.undo(nanos(slot)+int64(interval), int64(interval))
		if db.spaceless(err) {
			err = nil
		}
	}
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
	if db.eng.name == SQLite {
		db.slots.note(nanos(until))
		if db.spaceless(err) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("store: hold texts: %w", err)
	}
	return nil
}
