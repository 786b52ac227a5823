package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/securetextd/securetextd"
)

// The second factor of a sender account: a TOTP secret (RFC 6238), sealed
// under the newest data key for its place (senders, totp_secret, the
// address), never kept in clear; the last time step whose code was
// accepted, so that no code works twice; and recovery codes, kept as
// SHA-256 hashes (each is 80 random bits: a hash suffices) and deleted as
// they are used. The console computes and checks codes; the store keeps
// what they are checked against.

func totpPlace(address string) place { return place{"senders", "totp_secret", address} }

// EnrollTOTP sets address's TOTP secret, with step the time step of the
// code that proved the enrolment (it cannot be used again), and replaces
// its recovery codes with codes. Every console session of the account
// ends: the caller starts a new one. It is an ENOTFOUND error when there
// is no such sender.
func (db *DB) EnrollTOTP(ctx context.Context, address, secret string, step int64, codes []string) error {
	address = normalizeAddress(address)
	if secret == "" || len(codes) == 0 {
		return errors.New("store: enroll totp: no secret or no recovery codes")
	}
	sealed := db.seal([]byte(secret), totpPlace(address))
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE senders SET totp_secret = ?, totp_step = ? WHERE address = ?`, sealed, step, address)
		if err != nil {
			return err
		}
		if err := mustAffectOne(res, "No sender %s.", address); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sender_recovery_codes WHERE address = ?`, address); err != nil {
			return err
		}
		for _, c := range codes {
			h := hashRecoveryCode(c)
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO sender_recovery_codes (address, code_hash) VALUES (?, ?) ON CONFLICT DO NOTHING`,
				address, h[:]); err != nil {
				return err
			}
		}
		if err := endConsoleSessions(ctx, tx, address); err != nil {
			return err
		}
		return db.audit(ctx, tx, securetextd.AuditEvent{Event: securetextd.AuditTOTPEnrolled, Actor: address})
	})
	return wrap("enroll totp", err)
}

// TOTPSecret returns address's TOTP secret, opened, and the last time
// step accepted. It is an ENOTFOUND error when the account has none.
func (db *DB) TOTPSecret(ctx context.Context, address string) (secret string, step int64, err error) {
	address = normalizeAddress(address)
	var sealed []byte
	err = db.read.QueryRowContext(ctx,
		`SELECT totp_secret, totp_step FROM senders WHERE address = ? AND totp_secret IS NOT NULL`, address).
		Scan(&sealed, &step)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, securetextd.Errorf(securetextd.ENOTFOUND, "No second factor for %s.", address)
	}
	if err != nil {
		return "", 0, fmt.Errorf("store: totp secret: %w", err)
	}
	plain, err := db.open(sealed, totpPlace(address))
	if err != nil {
		return "", 0, fmt.Errorf("store: totp secret of %s: %w", address, err)
	}
	return string(plain), step, nil
}

// UseTOTPStep records that a code of time step was accepted for address.
// A step not later than the last one accepted is an EUNAUTHORIZED error:
// the code was used already (a replay within its window).
func (db *DB) UseTOTPStep(ctx context.Context, address string, step int64) error {
	address = normalizeAddress(address)
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE senders SET totp_step = ? WHERE address = ? AND totp_secret IS NOT NULL AND totp_step < ?`,
			step, address, step)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n != 1 {
			return securetextd.Errorf(securetextd.EUNAUTHORIZED, "This code was used already.")
		}
		return nil
	})
	return wrap("use totp step", err)
}

// UseRecoveryCode uses one of address's recovery codes, in place of a
// TOTP code, and returns how many are left. A code that is not one of
// them (or was used) is an EUNAUTHORIZED error.
func (db *DB) UseRecoveryCode(ctx context.Context, address, code string) (left int, err error) {
	address = normalizeAddress(address)
	h := hashRecoveryCode(code)
	err = db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM sender_recovery_codes WHERE address = ? AND code_hash = ?`, address, h[:])
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n != 1 {
			return securetextd.Errorf(securetextd.EUNAUTHORIZED, "This recovery code is not right, or was used.")
		}
		if err := tx.QueryRowContext(ctx,
			`SELECT count(*) FROM sender_recovery_codes WHERE address = ?`, address).Scan(&left); err != nil {
			return err
		}
		return db.audit(ctx, tx, securetextd.AuditEvent{Event: securetextd.AuditRecoveryUsed,
			Actor: address, Detail: strconv.Itoa(left) + " left"})
	})
	if err != nil {
		return 0, wrap("use recovery code", err)
	}
	return left, nil
}

// ResetTOTP clears address's second factor and recovery codes and ends
// its console sessions (securetextd user totp reset), audited with the
// actor of ctx's Origin. It is an ENOTFOUND error when there is no such
// sender.
func (db *DB) ResetTOTP(ctx context.Context, address string) error {
	address = normalizeAddress(address)
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE senders SET totp_secret = NULL, totp_step = 0 WHERE address = ?`, address)
		if err != nil {
			return err
		}
		if err := mustAffectOne(res, "No sender %s.", address); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sender_recovery_codes WHERE address = ?`, address); err != nil {
			return err
		}
		if err := endConsoleSessions(ctx, tx, address); err != nil {
			return err
		}
		return db.audit(ctx, tx, securetextd.AuditEvent{Event: securetextd.AuditTOTPReset, Detail: address})
	})
	return wrap("reset totp", err)
}

// hashRecoveryCode hashes a recovery code as typed, without the spaces
// and dashes that group it, in upper case.
func hashRecoveryCode(code string) [sha256.Size]byte {
	code = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, strings.ToUpper(strings.TrimSpace(code)))
	return sha256.Sum256([]byte(code))
}
