package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/securetextd/securetextd"
)

// A remembered device is a browser that gave a phone's one-time code
// (codes.go): it holds a random token of 256 bits in a cookie, the store
// only its SHA-256, as for sessions. Until the row expires
// (portal.remember_device after the code) that number asks the browser
// for no code; the password is still asked as before. One browser may
// prove several numbers (a family's tablet): it keeps one token, with a
// row per number. ForgetDevices ends them all, for "sign out of every
// device", a reset by the operator, or an account deleted.

// deviceTokenBytes is the size of a device token: as a session's.
const deviceTokenBytes = 32

// RememberDevice remembers the browser holding token as proven for phone
// until validFor from now, and returns the token it is to keep: token
// itself when it is a live device token already (of any number), else a
// fresh one. Expired devices of phone are deleted on the way.
func (db *DB) RememberDevice(ctx context.Context, phone securetextd.Phone, token string, validFor time.Duration) (string, error) {
	if validFor <= 0 {
		return "", fmt.Errorf("store: remember device: validity %v is not positive", validFor)
	}
	if !validRecipient(phone) {
		return "", securetextd.Errorf(securetextd.EINVALID, "%q is not a phone number in E.164 form or an email address", phone)
	}
	err := db.update(ctx, func(tx *sql.Tx) error {
		now := nanos(db.Now())
		live := false
		if token != "" {
			hash := hashToken(token)
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (
				SELECT 1 FROM recipient_devices WHERE token_hash = ? AND expires > ?)`, hash[:], now).Scan(&live); err != nil {
				return err
			}
		}
		if !live {
			token = newToken(deviceTokenBytes)
		}
		hash := hashToken(token)
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM recipient_devices WHERE phone = ? AND expires <= ?`, phone, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO recipient_devices (token_hash, phone, created, expires) VALUES (?, ?, ?, ?)
			ON CONFLICT (token_hash, phone) DO UPDATE SET created = excluded.created, expires = excluded.expires`,
			hash[:], phone, now, nanos(db.Now().Add(validFor)))
		return err
	})
	if err != nil {
		return "", wrap("remember device "+phone.Masked(), err)
	}
	return token, nil
}

// KnownDevice reports whether token is a live device token of phone. It
// only reads.
func (db *DB) KnownDevice(ctx context.Context, phone securetextd.Phone, token string) (bool, error) {
	if token == "" {
		return false, nil
	}
	hash := hashToken(token)
	var known bool
	if err := db.read.QueryRowContext(ctx, `SELECT EXISTS (
		SELECT 1 FROM recipient_devices WHERE token_hash = ? AND phone = ? AND expires > ?)`,
		hash[:], phone, nanos(db.Now())).Scan(&known); err != nil {
		return false, fmt.Errorf("store: known device %s: %w", phone.Masked(), err)
	}
	return known, nil
}

// ForgetDevices forgets every browser remembered for phone, and returns
// how many it forgot: each asks for a code again at its next sign-in.
// SignOutEverywhere (the patient's "sign out of every device") and the
// operator's reset and delete forget them in their own transactions.
func (db *DB) ForgetDevices(ctx context.Context, phone securetextd.Phone) (int, error) {
	var n int64
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM recipient_devices WHERE phone = ?`, phone)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: forget devices %s: %w", phone.Masked(), err)
	}
	return int(n), nil
}

// The date of birth a sender chose for a recipient (the API's
// verify.date_of_birth) is asked at the first visit and at every password
// reset. It is kept only as argon2id of "YYYY-MM-DD", salted like a
// password. A date of birth has little entropy, though: some 36,500 dates
// cover a century, and a copy of the database would give one up after
// that many argon2id hashes, minutes of a GPU's time. The hash keeps it
// from being read at a glance; what protects it online is the portal's
// lockout, where every wrong date counts as a wrong password (five in 15
// minutes by default: years to walk the dates). Since the sender knows it
// already and the patient is asked for it, it is a check that the person
// is the patient, not a secret that holds up on its own.

// ParseDateOfBirth checks that s is a date of birth in the form
// YYYY-MM-DD, not in the future nor before 1900, and returns it in that
// form. It is an EINVALID error otherwise.
func ParseDateOfBirth(s string, now time.Time) (string, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Year() < 1900 || t.After(now) {
		return "", securetextd.Errorf(securetextd.EINVALID, "%q is not a date of birth of the form YYYY-MM-DD", s)
	}
	return t.Format(time.DateOnly), nil
}

// SetDateOfBirth keeps dob (YYYY-MM-DD) as the date of birth to ask of
// phone's recipient, replacing any earlier one.
func (db *DB) SetDateOfBirth(ctx context.Context, phone securetextd.Phone, dob string) error {
	if !validRecipient(phone) {
		return securetextd.Errorf(securetextd.EINVALID, "%q is not a phone number in E.164 form or an email address", phone)
	}
	dob, err := ParseDateOfBirth(dob, db.Now())
	if err != nil {
		return err
	}
	var encoded string
	if err := db.hash(ctx, func() { encoded, err = HashPassword(dob) }); err != nil {
		return wrap("set date of birth", err)
	}
	if err != nil {
		return wrap("set date of birth", err)
	}
	err = db.update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO recipient_checks (phone, date_of_birth, updated) VALUES (?, ?, ?)
			ON CONFLICT (phone) DO UPDATE SET date_of_birth = excluded.date_of_birth, updated = excluded.updated`,
			phone, encoded, nanos(db.Now()))
		return err
	})
	return wrap("set date of birth "+phone.Masked(), err)
}

// HasDateOfBirth reports whether a date of birth is kept for phone, so
// that the portal knows to ask for it. It only reads.
func (db *DB) HasDateOfBirth(ctx context.Context, phone securetextd.Phone) (bool, error) {
	var has bool
	if err := db.read.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM recipient_checks WHERE phone = ?)`, phone).Scan(&has); err != nil {
		return false, fmt.Errorf("store: has date of birth %s: %w", phone.Masked(), err)
	}
	return has, nil
}

// CheckDateOfBirth checks dob against the date of birth kept for phone: nil
// when it matches, an EUNAUTHORIZED error when it does not (or is not a
// date), and an ENOTFOUND error when none is kept.
func (db *DB) CheckDateOfBirth(ctx context.Context, phone securetextd.Phone, dob string) error {
	var encoded string
	err := db.read.QueryRowContext(ctx,
		`SELECT date_of_birth FROM recipient_checks WHERE phone = ?`, phone).Scan(&encoded)
	if errors.Is(err, sql.ErrNoRows) {
		return securetextd.Errorf(securetextd.ENOTFOUND, "No date of birth is kept for this number.")
	}
	if err != nil {
		return fmt.Errorf("store: check date of birth %s: %w", phone.Masked(), err)
	}
	wrong := securetextd.Errorf(securetextd.EUNAUTHORIZED, "That date of birth is not right.")
	dob, perr := ParseDateOfBirth(dob, db.Now())
	if perr != nil {
		return wrong
	}
	var ok bool
	var cerr error
	if err := db.hash(ctx, func() { ok, cerr = CheckPassword(encoded, dob) }); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("store: check date of birth %s: %w", phone.Masked(), cerr)
	}
	if !ok {
		return wrong
	}
	return nil
}
