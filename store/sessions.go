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
// idle for longer than idle, or older than absolute, has ended: it is
// deleted, and the answer is the ENOTFOUND error of an unknown token. Every
// other session past those limits is deleted on the way, so that sessions
// of browsers that never came back do not pile up.
//
//	s, err := db.Session(ctx, cookie.Value, 30*time.Minute, 12*time.Hour)
func (db *DB) Session(ctx context.Context, token string, idle, absolute time.Duration) (*securetextd.Session, error) {
	if idle <= 0 || absolute <= 0 {
		return nil, fmt.Errorf("store: session: limits %v and %v must be positive", idle, absolute)
	}
	hash := hashToken(token)
	// Most requests come soon after the last: a read, without a write and
	// its fsync, is enough then. The last-seen time is refreshed at most
	// every idle/30 (30 s for the default 15 minutes), so a session may end
	// that much before its idle time, never after. A session's first use
	// always writes, and sweeps the sessions that have ended.
	{
		now := db.Now()
		var phone securetextd.Phone
		var created, lastSeen int64
		err := db.read.QueryRowContext(ctx,
			`SELECT phone, created, last_seen FROM sessions WHERE token_hash = ?`, hash[:]).Scan(&phone, &created, &lastSeen)
		if err == nil && lastSeen > created && lastSeen >= nanos(now.Add(-idle/30)) && lastSeen <= nanos(now) && created >= nanos(now.Add(-absolute)) {
			return &securetextd.Session{Phone: phone, Created: fromNanos(created), LastSeen: fromNanos(lastSeen)}, nil
		}
	}
	var s *securetextd.Session
	err := db.update(ctx, func(tx *sql.Tx) error {
		now := db.Now()
		// A session idle for exactly idle is still live: "longer than".
		staleBefore, oldBefore := nanos(now.Add(-idle)), nanos(now.Add(-absolute))
		var phone securetextd.Phone
		var created, lastSeen int64
		err := tx.QueryRowContext(ctx,
			`SELECT phone, created, last_seen FROM sessions WHERE token_hash = ?`, hash[:]).Scan(&phone, &created, &lastSeen)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err == nil && lastSeen >= staleBefore && created >= oldBefore {
			if _, err := tx.ExecContext(ctx,
				`UPDATE sessions SET last_seen = ? WHERE token_hash = ?`, nanos(now), hash[:]); err != nil {
				return err
			}
			s = &securetextd.Session{Phone: phone, Created: fromNanos(created), LastSeen: fromNanos(nanos(now))}
		}
		// This session, if it has ended, and all others that have.
		_, err = tx.ExecContext(ctx,
			`DELETE FROM sessions WHERE last_seen < ? OR created < ?`, staleBefore, oldBefore)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: session: %w", err)
	}
	if s == nil {
		return nil, securetextd.Errorf(securetextd.ENOTFOUND, "This session has ended.")
	}
	return s, nil
}

// DeleteSession ends the session of token, as at logout. An unknown or
// ended token is no error: the browser is logged out either way.
func (db *DB) DeleteSession(ctx context.Context, token string) error {
	hash := hashToken(token)
	err := db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, hash[:])
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}
