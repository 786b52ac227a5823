package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The AUTH throttle's counts (smtp/throttle.go) are rows of auth_failures
// (migration 0008), so that every node slows the same guesser by the same
// count and a restart does not wipe it: failed logins per client address,
// per account and per (client, account) pair, and each pair's last
// success, which gives a clinician's own mail program a password check of
// its own while a guesser keeps the account's checks busy.
//
// What stays in each node's memory is what bounds that node's own
// machine: how many password checks run at once (each argon2id hash takes
// CPU and 7 MiB there), and the cache of recent logins that spares this
// node a hash (authcache.go).
//
// A failure writes (failures are rare, and the throttle makes them
// slower); a success reads its pair's row and writes only when the pair
// had failures to clear or its last success is older than Known/24, so
// that a mail program that logs in for every message costs no write. Each
// kind of key holds at most maxAuthKeys rows; a failure from a key without
// a row first deletes expired rows and, when the kind is still full, the
// row that matters least: one not seen to succeed within Known before one
// that was, then the fewest failures within the window, then the oldest.
// A flood of accounts or addresses thus costs the smallest counts, not the
// count of the account under attack.

// maxAuthKeys bounds the rows of each kind of auth_failures key.
const maxAuthKeys = 10_000

// AuthRule says how long the AUTH throttle remembers.
type AuthRule struct {
	// Window: a failure counts until this long after the last one.
	Window time.Duration
	// Known: a success gives its (client, account) pair a check of its own
	// for this long.
	Known time.Duration
}

// The kinds of auth_failures keys.
const (
	authAddr    = "addr"
	authAccount = "account"
	authPair    = "pair"
)

// authPairKey names a client's use of an account. A client key (an
// address or a prefix) holds no space, so the first space ends it.
func authPairKey(client, account string) string { return client + " " + account }

// AuthFailed records a failed login by client (an address or prefix, as
// text) for account: one failure more against each of the client, the
// account and the pair, after forgetting those older than r.Window since
// their last. It returns the failures now counted against the client and
// against the account.
func (db *DB) AuthFailed(ctx context.Context, r AuthRule, client, account string) (byClient, byAccount int, err error) {
	if err := checkAuth(r, client, account); err != nil {
		return 0, 0, err
	}
	now := db.Now()
	err = db.updateGrouped(ctx, func(ctx context.Context, tx *sql.Tx) error {
		counts := [3]int{}
		for i, k := range [3][2]string{{authAddr, client}, {authAccount, account}, {authPair, authPairKey(client, account)}} {
			rec, found, err := authRecord(ctx, tx, k[0], k[1])
			if err != nil {
				return err
			}
			if !found {
				if err := db.authRoom(ctx, tx, r, k[0], now); err != nil {
					return err
				}
			}
			rec.failures = rec.counted(r, now) + 1
			rec.last = nanos(now)
			if err := rec.save(ctx, tx, r, k[0], k[1]); err != nil {
				return err
			}
			counts[i] = rec.failures
		}
		byClient, byAccount = counts[0], counts[1]
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: auth failed: %w", err)
	}
	return byClient, byAccount, nil
}

// AuthSucceeded records a successful login by client to account: the
// failures the pair made are taken off the client's and the account's
// counts and the pair's own, and the pair is known for r.Known. Failures
// that other clients made against the account, or that the client made
// against other accounts, stay: a guesser who holds an account of their
// own cannot clear the counts by logging in to it.
func (db *DB) AuthSucceeded(ctx context.Context, r AuthRule, client, account string) error {
	if err := checkAuth(r, client, account); err != nil {
		return err
	}
	now := db.Now()
	pair := authPairKey(client, account)
	// Most logins follow no failure, by a client seen lately: a read.
	var rec authRow
	err := db.read.QueryRowContext(ctx,
		`SELECT failures, last, success FROM auth_failures WHERE kind = ? AND key = ?`,
		authPair, pair).Scan(&rec.failures, &rec.last, &rec.success)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("store: auth succeeded: %w", unreachable(err))
	case rec.counted(r, now) == 0 && rec.success > nanos(now.Add(-r.Known/24)):
		return nil
	}
	err = db.updateGrouped(ctx, func(ctx context.Context, tx *sql.Tx) error {
		rec, found, err := authRecord(ctx, tx, authPair, pair)
		if err != nil {
			return err
		}
		if f := rec.counted(r, now); f > 0 {
			for _, k := range [2][2]string{{authAddr, client}, {authAccount, account}} {
				if _, err := tx.ExecContext(ctx, `
					UPDATE auth_failures SET failures = CASE WHEN failures > ? THEN failures - ? ELSE 0 END
					WHERE kind = ? AND key = ?`, f, f, k[0], k[1]); err != nil {
					return err
				}
			}
		}
		if !found {
			if err := db.authRoom(ctx, tx, r, authPair, now); err != nil {
				return err
			}
		}
		rec.failures, rec.success = 0, nanos(now)
		return rec.save(ctx, tx, r, authPair, pair)
	})
	if err != nil {
		return fmt.Errorf("store: auth succeeded: %w", err)
	}
	return nil
}

// AuthKnown reports whether client logged in to account within r.Known.
// It only reads.
func (db *DB) AuthKnown(ctx context.Context, r AuthRule, client, account string) (bool, error) {
	var success int64
	err := db.read.QueryRowContext(ctx,
		`SELECT success FROM auth_failures WHERE kind = ? AND key = ?`,
		authPair, authPairKey(client, account)).Scan(&success)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("store: auth known: %w", unreachable(err))
	}
	return success != 0 && success >= nanos(db.Now().Add(-r.Known)), nil
}

// authRow is one row of auth_failures; times in unix nanoseconds, 0 for
// none.
type authRow struct {
	failures      int
	last, success int64
}

// counted returns the failures that still count at now.
func (a authRow) counted(r AuthRule, now time.Time) int {
	if a.last < nanos(now.Add(-r.Window)) {
		return 0
	}
	return a.failures
}

// authRecord reads the row of kind and key in tx; a missing row is the
// zero authRow.
func authRecord(ctx context.Context, tx *sql.Tx, kind, key string) (authRow, bool, error) {
	var a authRow
	err := tx.QueryRowContext(ctx,
		`SELECT failures, last, success FROM auth_failures WHERE kind = ? AND key = ?`,
		kind, key).Scan(&a.failures, &a.last, &a.success)
	if errors.Is(err, sql.ErrNoRows) {
		return authRow{}, false, nil
	}
	return a, err == nil, err
}

// save writes a as the row of kind and key, with when it expires: once its
// failures no longer count and its success no longer makes it known.
func (a authRow) save(ctx context.Context, tx *sql.Tx, r AuthRule, kind, key string) error {
	var expires int64
	if a.failures > 0 {
		expires = a.last + int64(r.Window)
	}
	if a.success != 0 {
		expires = max(expires, a.success+int64(r.Known))
	}
	_, err := tx.ExecContext(ctx, `
		INSERT INTO auth_failures (kind, key, failures, last, success, expires) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind, key) DO UPDATE SET
			failures = excluded.failures, last = excluded.last, success = excluded.success, expires = excluded.expires`,
		kind, key, a.failures, a.last, a.success, expires)
	return err
}

// authRoom makes room for a new key of kind: see the top of this file.
func (db *DB) authRoom(ctx context.Context, tx *sql.Tx, r AuthRule, kind string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM auth_failures WHERE expires <= ?`, nanos(now)); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM auth_failures WHERE kind = ?`, kind).Scan(&n); err != nil {
		return err
	}
	limit := maxAuthKeys
	if db.limitKeys > 0 {
		limit = db.limitKeys
	}
	if n < limit {
		return nil
	}
	_, err := tx.ExecContext(ctx, `
		DELETE FROM auth_failures WHERE kind = ? AND key IN (
			SELECT key FROM auth_failures WHERE kind = ?
			ORDER BY CASE WHEN success >= ? THEN 1 ELSE 0 END,
				CASE WHEN last >= ? THEN failures ELSE 0 END, last, key
			LIMIT ?)`,
		kind, kind, nanos(now.Add(-r.Known)), nanos(now.Add(-r.Window)), n-limit+1)
	return err
}

// checkAuth refuses a rule that remembers nothing and keys past the bound.
func checkAuth(r AuthRule, client, account string) error {
	if r.Window <= 0 || r.Known <= 0 {
		return fmt.Errorf("store: auth throttle: window %v and known %v must be positive", r.Window, r.Known)
	}
	if client == "" || len(client) > maxLimitKey || len(account) > maxLimitKey {
		return fmt.Errorf("store: auth throttle: client of %d bytes, account of %d: want 1 to %d", len(client), len(account), maxLimitKey)
	}
	return nil
}
