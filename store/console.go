package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/securetextd/securetextd"
)

// The console's side of sender accounts: whether an account is an admin,
// and its sign-ins. A console session is kept as a recipient's session is
// (sessions.go): the browser holds a random 256-bit token, the store its
// SHA-256, and the same idle and absolute limits end it. It has a level:
// after the password only (securetextd.LevelPassword) it may do nothing
// but complete the second factor, which starts a new session, with a new
// token, at securetextd.LevelSignedIn.

// SenderAccount returns the sender account of address, or ENOTFOUND.
func (db *DB) SenderAccount(ctx context.Context, address string) (*securetextd.SenderAccount, error) {
	address = normalizeAddress(address)
	var a securetextd.SenderAccount
	var created, admin int64
	var totp bool
	err := db.read.QueryRowContext(ctx,
		`SELECT address, created, admin, totp_secret IS NOT NULL FROM senders WHERE address = ?`, address).
		Scan(&a.Address, &created, &admin, &totp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, securetextd.Errorf(securetextd.ENOTFOUND, "No sender %s.", address)
	}
	if err != nil {
		return nil, fmt.Errorf("store: account: %w", err)
	}
	a.Created, a.Admin, a.TOTP = fromNanos(created), admin != 0, totp
	return &a, nil
}

// SetAdmin makes address an admin (on) or not, and audits the change with
// the actor of ctx's Origin. It is an ENOTFOUND error when there is no
// such sender.
func (db *DB) SetAdmin(ctx context.Context, address string, on bool) error {
	address = normalizeAddress(address)
	flag, word := 0, "off "
	if on {
		flag, word = 1, "on "
	}
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE senders SET admin = ? WHERE address = ?`, flag, address)
		if err != nil {
			return err
		}
		if err := mustAffectOne(res, "No sender %s.", address); err != nil {
			return err
		}
		return db.audit(ctx, tx, securetextd.AuditEvent{Event: securetextd.AuditAdminChanged, Detail: word + address})
	})
	return wrap("set admin", err)
}

// CreateConsoleSession starts a console session of level for address and
// returns the token to hand to the browser. It is an ENOTFOUND error if
// the account does not exist (any more).
func (db *DB) CreateConsoleSession(ctx context.Context, address string, level int) (string, error) {
	if level != securetextd.LevelPassword && level != securetextd.LevelSignedIn {
		return "", fmt.Errorf("store: create console session: level %d", level)
	}
	address = normalizeAddress(address)
	token := newToken(sessionTokenBytes)
	hash := hashToken(token)
	err := db.update(ctx, func(tx *sql.Tx) error {
		now := nanos(db.Now())
		res, err := tx.ExecContext(ctx, `
			INSERT INTO console_sessions (token_hash, address, level, created, last_seen)
			SELECT ?, address, ?, ?, ? FROM senders WHERE address = ?`,
			hash[:], level, now, now, address)
		if err != nil {
			return err
		}
		return mustAffectOne(res, "No sender %s.", address)
	})
	if err != nil {
		return "", wrap("create console session", err)
	}
	return token, nil
}

// ConsoleSession returns the live console session of token and refreshes
// its last-seen time (at most every idle/30, as Session does), or the
// ENOTFOUND error of an unknown token when it is unknown, idle for longer
// than idle or older than absolute.
func (db *DB) ConsoleSession(ctx context.Context, token string, idle, absolute time.Duration) (*securetextd.ConsoleSession, error) {
	if idle <= 0 || absolute <= 0 {
		return nil, fmt.Errorf("store: console session: limits %v and %v must be positive", idle, absolute)
	}
	hash := hashToken(token)
	now := db.Now()
	staleBefore, oldBefore := nanos(now.Add(-idle)), nanos(now.Add(-absolute))
	var s securetextd.ConsoleSession
	var created, lastSeen, level int64
	err := db.read.QueryRowContext(ctx,
		`SELECT address, level, created, last_seen FROM console_sessions WHERE token_hash = ?`, hash[:]).
		Scan(&s.Address, &level, &created, &lastSeen)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, errSessionEnded
	case err != nil:
		return nil, fmt.Errorf("store: console session: %w", err)
	case lastSeen < staleBefore || created < oldBefore:
		return nil, errSessionEnded
	}
	s.Level, s.Created, s.LastSeen = int(level), fromNanos(created), fromNanos(lastSeen)
	if lastSeen > created && lastSeen >= nanos(now.Add(-idle/30)) && lastSeen <= nanos(now) {
		return &s, nil
	}
	var live bool
	err = db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE console_sessions SET last_seen = ? WHERE token_hash = ? AND last_seen >= ? AND created >= ?`,
			nanos(now), hash[:], staleBefore, oldBefore)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		live = n == 1
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: console session: %w", err)
	}
	if !live {
		return nil, errSessionEnded
	}
	s.LastSeen = fromNanos(nanos(now))
	return &s, nil
}

// DeleteConsoleSession ends the console session of token. An unknown
// token is no error.
func (db *DB) DeleteConsoleSession(ctx context.Context, token string) error {
	hash := hashToken(token)
	var exists bool
	if err := db.read.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM console_sessions WHERE token_hash = ?)`, hash[:]).Scan(&exists); err != nil {
		return fmt.Errorf("store: delete console session: %w", err)
	}
	if !exists {
		return nil
	}
	err := db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE token_hash = ?`, hash[:])
		return err
	})
	return wrap("delete console session", err)
}

// SweepConsoleSessions deletes the console sessions that have ended and
// returns how many.
func (db *DB) SweepConsoleSessions(ctx context.Context, idle, absolute time.Duration) (int, error) {
	if idle <= 0 || absolute <= 0 {
		return 0, fmt.Errorf("store: sweep console sessions: limits %v and %v must be positive", idle, absolute)
	}
	now := db.Now()
	var n int64
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE last_seen < ? OR created < ?`,
			nanos(now.Add(-idle)), nanos(now.Add(-absolute)))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: sweep console sessions: %w", err)
	}
	return int(n), nil
}

// endConsoleSessions ends every console session of address, inside tx:
// its password or second factor changed.
func endConsoleSessions(ctx context.Context, tx *sql.Tx, address string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE address = ?`, address)
	return err
}
