package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/securetextd/securetextd"
)

// Strikes count what a key did wrong, for the portal's limits: wrong
// passwords and reset requests per phone number and per client address,
// audit events without content per client and conversation. They are
// rows of limit_strikes (migration 0008), so that every node of a cluster
// counts the same strikes and a restart forgets none: a lockout earned on
// one node holds on all of them, before and after any restart.
//
// Reading is cheap and takes no writer: whether a key is locked is a read
// by primary key (StrikesLocked), and clearing a key after a success first
// reads whether there is anything to clear (ForgetStrikes). Only a strike
// writes, and strikes are what the limits are there to make rare; it
// shares a grouped commit with whatever else is committing. The one kind
// struck on ordinary requests, the audit-flood count, is struck in the
// commit of the audit row it counts (AuditUnlessFlooded): no transaction
// of its own.
//
// Each kind of key holds at most maxStrikeKeys rows. A strike against a
// key that has no row yet first deletes the rows that count nothing any
// more (every row says when: its expires column); when the kind is still
// full, it deletes the row that matters least: an unlocked one before a
// locked one, and of those the one struck longest ago. So a flood of fresh
// keys (addresses from a large IPv6 block, phone numbers typed into the
// reset form) costs the oldest partial counts, never a lockout while
// there is anything else to drop, and never more rows than the cap. The
// daemon's sweep (SweepLimits) deletes expired rows between strikes.

// maxStrikeKeys bounds the rows of each kind of strike key.
const maxStrikeKeys = 10_000

// maxLimitKey bounds a key, in bytes: phone numbers, addresses and account
// names as typed (smtp's AUTH bounds those at 1024 bytes).
const maxLimitKey = 1200

// StrikeRule says when strikes lock a key: Max strikes within Window lock
// it for Window, from the Max-th.
type StrikeRule struct {
	Max    int
	Window time.Duration
}

// Strikes is what is known of one key: the strikes still within the
// window, oldest first, and until when the key is locked. Its methods are
// the rule itself; the store keeps one per row, and a fake store in
// another package's tests may keep them in memory to follow the same
// rule.
type Strikes struct {
	Times []time.Time
	Until time.Time // locked until then; zero: not locked
}

// LockedUntil returns until when s is locked at now, or the zero time.
func (s *Strikes) LockedUntil(now time.Time) time.Time {
	if s.Until.After(now) {
		return s.Until
	}
	return time.Time{}
}

// Strike records a strike at now under r and returns until when s is now
// locked (zero when it is not) and how many strikes are left before it
// locks. The strike that locks s clears its strikes: the lock is the
// count.
func (s *Strikes) Strike(now time.Time, r StrikeRule) (until time.Time, left int) {
	i := 0
	for i < len(s.Times) && now.Sub(s.Times[i]) >= r.Window {
		i++
	}
	s.Times = append(s.Times[i:], now)
	if len(s.Times) >= r.Max {
		s.Until, s.Times = now.Add(r.Window), nil
	}
	return s.LockedUntil(now), r.Max - len(s.Times)
}

// expires returns when s counts nothing any more under r: its last strike
// has left the window and its lock has ended.
func (s *Strikes) expires(r StrikeRule) time.Time {
	e := s.Until
	if n := len(s.Times); n > 0 && s.Times[n-1].Add(r.Window).After(e) {
		e = s.Times[n-1].Add(r.Window)
	}
	return e
}

// StrikesLocked returns how long any of keys of kind stays locked, or 0
// when none is. It only reads: a page may ask on every view. (Durations,
// not times, so that the caller needs no clock of its own.)
func (db *DB) StrikesLocked(ctx context.Context, kind string, keys ...string) (time.Duration, error) {
	now := db.Now()
	var until time.Time
	for _, key := range keys {
		var u int64
		err := db.read.QueryRowContext(ctx,
			`SELECT until FROM limit_strikes WHERE kind = ? AND key = ?`, kind, key).Scan(&u)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("store: strikes locked: %w", unreachable(err))
		}
		if t := fromNanos(u); t.After(until) {
			until = t
		}
	}
	return max(0, until.Sub(now)), nil
}

// Strike records one strike against each of keys of kind under r, and
// returns how long they are now locked (0 when none is) and how many
// strikes are left before the first of them locks.
//
//	wait, left, err := db.Strike(ctx, "login", rule, "phone:"+phone, "addr:"+client)
func (db *DB) Strike(ctx context.Context, kind string, r StrikeRule, keys ...string) (wait time.Duration, left int, err error) {
	if err := checkStrike(kind, r, keys); err != nil {
		return 0, 0, err
	}
	var until time.Time
	now := db.Now()
	err = db.updateGrouped(ctx, func(ctx context.Context, tx *sql.Tx) error {
		until, left, err = db.strike(ctx, tx, kind, r, keys, now)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: strike: %w", err)
	}
	return max(0, until.Sub(now)), left, nil
}

// StrikeUnlessLocked records one strike against each of keys of kind
// under r and reports true; or, while any of them is locked, records
// nothing and reports false. The check and the strike are one
// transaction: two nodes cannot both let through the last request a
// window allows.
func (db *DB) StrikeUnlessLocked(ctx context.Context, kind string, r StrikeRule, keys ...string) (bool, error) {
	if err := checkStrike(kind, r, keys); err != nil {
		return false, err
	}
	err := db.updateGrouped(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := db.checkUnlocked(ctx, tx, kind, keys); err != nil {
			return err
		}
		_, _, err := db.strike(ctx, tx, kind, r, keys, db.Now())
		return err
	})
	switch {
	case errors.Is(err, errKeyLocked):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("store: strike: %w", err)
	}
	return true, nil
}

// errKeyLocked rolls back a transaction that found a key locked: it records
// nothing.
var errKeyLocked = errors.New("locked")

// AuditUnlessFlooded appends ev to the audit trail unless key has been
// struck r.Max times within r.Window (kind "audit"), and reports whether
// it did. The strike and the row are one grouped commit, so that the limit
// costs no transaction of its own; a flooded key records nothing.
func (db *DB) AuditUnlessFlooded(ctx context.Context, ev securetextd.AuditEvent, key string, r StrikeRule) (bool, error) {
	if err := checkStrike(strikeAudit, r, []string{key}); err != nil {
		return false, err
	}
	err := db.updateGrouped(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := db.checkUnlocked(ctx, tx, strikeAudit, []string{key}); err != nil {
			return err
		}
		if _, _, err := db.strike(ctx, tx, strikeAudit, r, []string{key}, db.Now()); err != nil {
			return err
		}
		return db.audit(ctx, tx, ev)
	})
	switch {
	case errors.Is(err, errKeyLocked):
		return false, nil
	case err != nil:
		return false, wrap("audit "+ev.Event, err)
	}
	return true, nil
}

// strikeAudit is the kind of AuditUnlessFlooded's keys.
const strikeAudit = "audit"

// ForgetStrikes clears keys of kind, after a success: their strikes and
// any lock. A key with nothing to clear is answered from a read, without
// the writer, so that a login costs no write when it follows no failure.
func (db *DB) ForgetStrikes(ctx context.Context, kind string, keys ...string) error {
	var found []string
	for _, key := range keys {
		var exists bool
		err := db.read.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM limit_strikes WHERE kind = ? AND key = ?)`, kind, key).Scan(&exists)
		if err != nil {
			return fmt.Errorf("store: forget strikes: %w", unreachable(err))
		}
		if exists {
			found = append(found, key)
		}
	}
	if len(found) == 0 {
		return nil
	}
	err := db.updateGrouped(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, key := range found {
			if _, err := tx.ExecContext(ctx, `DELETE FROM limit_strikes WHERE kind = ? AND key = ?`, kind, key); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: forget strikes: %w", err)
	}
	return nil
}

// checkStrike refuses a rule that could never lock and keys past the
// bound.
func checkStrike(kind string, r StrikeRule, keys []string) error {
	if r.Max <= 0 || r.Window <= 0 {
		return fmt.Errorf("store: strike %s: rule %d in %v must be positive", kind, r.Max, r.Window)
	}
	for _, k := range keys {
		if len(k) > maxLimitKey || len(kind) > maxLimitKey {
			return fmt.Errorf("store: strike %s: key of %d bytes, over %d", kind, len(k), maxLimitKey)
		}
	}
	return nil
}

// checkUnlocked returns errKeyLocked when any of keys of kind is locked, in
// tx.
func (db *DB) checkUnlocked(ctx context.Context, tx *sql.Tx, kind string, keys []string) error {
	now := nanos(db.Now())
	for _, key := range keys {
		var locked bool
		err := tx.QueryRowContext(ctx, `SELECT EXISTS (
			SELECT 1 FROM limit_strikes WHERE kind = ? AND key = ? AND until > ?)`, kind, key, now).Scan(&locked)
		if err != nil {
			return err
		}
		if locked {
			return errKeyLocked
		}
	}
	return nil
}

// strike records a strike at now against each of keys in tx, and
// returns until when they are locked (zero: none is): see Strike.
func (db *DB) strike(ctx context.Context, tx *sql.Tx, kind string, r StrikeRule, keys []string, now time.Time) (until time.Time, left int, err error) {
	left = r.Max
	for _, key := range keys {
		var s Strikes
		var times []byte
		var u int64
		err := tx.QueryRowContext(ctx,
			`SELECT times, until FROM limit_strikes WHERE kind = ? AND key = ?`, kind, key).Scan(&times, &u)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := db.strikeRoom(ctx, tx, kind, now); err != nil {
				return time.Time{}, 0, err
			}
		case err != nil:
			return time.Time{}, 0, err
		default:
			if s.Times, err = decodeTimes(times); err != nil {
				return time.Time{}, 0, fmt.Errorf("strikes of %s %q: %w", kind, key, err)
			}
			if u != 0 {
				s.Until = fromNanos(u)
			}
		}
		ku, kl := s.Strike(now, r)
		if ku.After(until) {
			until = ku
		}
		left = min(left, kl)
		var un int64
		if !s.Until.IsZero() {
			un = nanos(s.Until)
		}
		_, err = tx.ExecContext(ctx, `
			INSERT INTO limit_strikes (kind, key, times, until, last, expires) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (kind, key) DO UPDATE SET
				times = excluded.times, until = excluded.until, last = excluded.last, expires = excluded.expires`,
			kind, key, encodeTimes(s.Times), un, nanos(now), nanos(s.expires(r)))
		if err != nil {
			return time.Time{}, 0, err
		}
	}
	return until, left, nil
}

// strikeRoom makes room for a new key of kind: it deletes what has
// expired, and when kind still has maxStrikeKeys rows, the ones that
// matter least (see the top of this file).
func (db *DB) strikeRoom(ctx context.Context, tx *sql.Tx, kind string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM limit_strikes WHERE expires <= ?`, nanos(now)); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM limit_strikes WHERE kind = ?`, kind).Scan(&n); err != nil {
		return err
	}
	if n < db.strikeKeys() {
		return nil
	}
	_, err := tx.ExecContext(ctx, `
		DELETE FROM limit_strikes WHERE kind = ? AND key IN (
			SELECT key FROM limit_strikes WHERE kind = ?
			ORDER BY CASE WHEN until > ? THEN 1 ELSE 0 END, last, key LIMIT ?)`,
		kind, kind, nanos(now), n-db.strikeKeys()+1)
	return err
}

// strikeKeys is maxStrikeKeys, or a smaller bound a test sets.
func (db *DB) strikeKeys() int {
	if db.limitKeys > 0 {
		return db.limitKeys
	}
	return maxStrikeKeys
}

// encodeTimes writes times as 8-byte big-endian unix nanoseconds.
func encodeTimes(times []time.Time) []byte {
	b := make([]byte, 0, 8*len(times))
	for _, t := range times {
		b = binary.BigEndian.AppendUint64(b, uint64(nanos(t)))
	}
	return b
}

// decodeTimes reads what encodeTimes wrote.
func decodeTimes(b []byte) ([]time.Time, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("times of %d bytes", len(b))
	}
	times := make([]time.Time, 0, len(b)/8)
	for i := 0; i < len(b); i += 8 {
		times = append(times, fromNanos(int64(binary.BigEndian.Uint64(b[i:]))))
	}
	return times, nil
}
