package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/securetextd/securetextd"
)

// A session spares a recipient the password while they stay active in one
// browser. The browser holds a random token of 256 bits in a cookie; the
// store keeps only its SHA-256, so a stolen database logs no one in. A
// session ends when it has been idle too long or is too old, when the
// recipient logs out, or when the account's password changes.

// CreateSession starts a session for phone's account and returns the token
// to hand to the browser. It is an ENOTFOUND error if the number has no
// account.
func (db *DB) CreateSession(ctx context.Context, phone securetextd.Phone) (token string, err error) {
	token = newToken(sessionTokenBytes)
	hash := hashToken(token)
	err = db.update(ctx, func(tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM recipients WHERE phone = ?)`, phone).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return securetextd.Errorf(securetextd.ENOTFOUND, "No account for this number.")
		}
		now := nanos(db.Now())
		_, err := tx.ExecContext(ctx,
			`INSERT INTO sessions (token_hash, phone, created, last_seen) VALUES (?, ?, ?, ?)`,
			hash[:], phone, now, now)
		return err
	})
	if err != nil {
		return "", wrap("create session "+phone.Masked(), err)
	}
	return token, nil
}

// Session returns the live session for token and refreshes its last-seen
// time, so that a recipient who keeps reading stays logged in. A session
// idle for longer than idle, or older than absolute, has ended: the answer
// is the ENOTFOUND error of an unknown token, and SweepSessions deletes it
// later.
//
// A token that matches nothing is answered from a read connection: random
// cookies never take the writer that message commits share. Only a live
// session writes, to refresh its last-seen time, and at most every idle/30
// (30 s for 15 minutes), so that most requests of an active reader do not
// write either; a session may end that much before its idle time, never
// after. A session's first use always writes.
//
//	s, err := db.Session(ctx, cookie.Value, 30*time.Minute, 12*time.Hour)
func (db *DB) Session(ctx context.Context, token string, idle, absolute time.Duration) (*securetextd.Session, error) {
	if idle <= 0 || absolute <= 0 {
		return nil, fmt.Errorf("store: session: limits %v and %v must be positive", idle, absolute)
	}
	hash := hashToken(token)
	now := db.Now()
	// A session idle for exactly idle is still live: "longer than".
	staleBefore, oldBefore := nanos(now.Add(-idle)), nanos(now.Add(-absolute))
	var phone securetextd.Phone
	var created, lastSeen int64
	err := db.read.QueryRowContext(ctx,
		`SELECT phone, created, last_seen FROM sessions WHERE token_hash = ?`, hash[:]).Scan(&phone, &created, &lastSeen)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, errSessionEnded
	case err != nil:
		return nil, fmt.Errorf("store: session: %w", err)
	case lastSeen < staleBefore || created < oldBefore:
		return nil, errSessionEnded
	case lastSeen > created && lastSeen >= nanos(now.Add(-idle/30)) && lastSeen <= nanos(now):
		return &securetextd.Session{Phone: phone, Created: fromNanos(created), LastSeen: fromNanos(lastSeen)}, nil
	}
	var live bool
	err = db.update(ctx, func(tx *sql.Tx) error {
		// Still live: not ended, logged out or swept since the read.
		res, err := tx.ExecContext(ctx,
			`UPDATE sessions SET last_seen = ? WHERE token_hash = ? AND last_seen >= ? AND created >= ?`,
			nanos(now), hash[:], staleBefore, oldBefore)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		live = n == 1
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: session: %w", err)
	}
	if !live {
		return nil, errSessionEnded
	}
	return &securetextd.Session{Phone: phone, Created: fromNanos(created), LastSeen: fromNanos(nanos(now))}, nil
}

// errSessionEnded answers a token that is unknown or whose session ended:
// the same for both.
var errSessionEnded = securetextd.Errorf(securetextd.ENOTFOUND, "This session has ended.")

// sweepBatch bounds the sessions one transaction of SweepSessions
// deletes, so that a sweep never holds the writer long.
const sweepBatch = 1000

// SweepSessions deletes the sessions that have ended, idle for longer than
// idle or older than absolute (those Session no longer answers), and
// returns how many. The daemon runs it on a timer.
func (db *DB) SweepSessions(ctx context.Context, idle, absolute time.Duration) (int, error) {
	if idle <= 0 || absolute <= 0 {
		return 0, fmt.Errorf("store: sweep sessions: limits %v and %v must be positive", idle, absolute)
	}
	now := db.Now()
	staleBefore, oldBefore := nanos(now.Add(-idle)), nanos(now.Add(-absolute))
	total := 0
	for {
		var n int64
		err := db.update(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `
				DELETE FROM sessions WHERE token_hash IN (
					SELECT token_hash FROM sessions WHERE last_seen < ? OR created < ? LIMIT ?)`,
				staleBefore, oldBefore, sweepBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("store: sweep sessions: %w", err)
		}
		total += int(n)
		if n < sweepBatch {
			return total, nil
		}
	}
}

// DeleteSession ends the session of token, as at logout. An unknown or
// ended token is no error: the browser is logged out either way.
func (db *DB) DeleteSession(ctx context.Context, token string) error {
	hash := hashToken(token)
	// A token that matches nothing is answered without the writer.
	var exists bool
	if err := db.read.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM sessions WHERE token_hash = ?)`, hash[:]).Scan(&exists); err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	if !exists {
		return nil
	}
	err := db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, hash[:])
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}
