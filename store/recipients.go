package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
)

// A recipient is the account of a phone number on the portal. The first
// link that reaches a number asks for a password, and that one password
// then opens every conversation with the number. The password is kept as
// an argon2id hash, like a sender's; the optional recovery address, where
// password-reset links are mailed, is sealed like message content, since it
// ties a name to a patient's phone number.

// Recipient returns the account of phone. It is an ENOTFOUND error if the
// number has none yet, or none with a password (an operator reset it),
// which is how the portal knows to ask for a new password rather than for
// the password.
func (db *DB) Recipient(ctx context.Context, phone securetextd.Phone) (*securetextd.Recipient, error) {
	var created int64
	var password string
	err := db.read.QueryRowContext(ctx,
		`SELECT created, password FROM recipients WHERE phone = ?`, phone).Scan(&created, &password)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && password == "") {
		// An account an operator reset is set up again, as a new one.
		return nil, securetextd.Errorf(securetextd.ENOTFOUND, "No account for this number.")
	}
	if err != nil {
		return nil, fmt.Errorf("store: recipient %s: %w", phone.Masked(), err)
	}
	return &securetextd.Recipient{Phone: phone, Created: fromNanos(created)}, nil
}

// CreateRecipient makes the account of phone with a password of at least
// MinPasswordLen characters, and recoveryEmail, a bare address where reset
// links will go once it is confirmed, or "" for none (then a forgotten
// password cannot be reset: an operator must reset the account). The
// address is sealed and waits for its confirmation: the same transaction
// queues the email with the link (see SetRecoveryAddress). It is an
// ECONFLICT error if the number has an account already, and an EINVALID
// error if an argument is unfit, with a message the recipient can act on.
//
// An account that an operator reset (no password) is set up again: its
// creation time and language stay.
func (db *DB) CreateRecipient(ctx context.Context, phone securetextd.Phone, password, recoveryEmail string) error {
	if !validRecipient(phone) {
		return securetextd.Errorf(securetextd.EINVALID, "%q is not a phone number in E.164 form, nor an email address in lowercase", phone)
	}
	var address string
	if recoveryEmail != "" {
		var err error
		if address, err = parseRecoveryAddress(recoveryEmail); err != nil {
			return err
		}
	}
	encoded, err := db.newPasswordHash(ctx, password)
	if err != nil {
		return wrap("create recipient", err)
	}
	err = db.update(ctx, func(tx *sql.Tx) error {
		var current string
		err := tx.QueryRowContext(ctx,
			`SELECT password FROM recipients WHERE phone = ?`, phone).Scan(&current)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx,
				`INSERT INTO recipients (phone, password, created) VALUES (?, ?, ?)`,
				phone, encoded, nanos(db.Now()))
		case err != nil:
		case current != "":
			return securetextd.Errorf(securetextd.ECONFLICT, "This number has a password already.")
		default:
			_, err = tx.ExecContext(ctx,
				`UPDATE recipients SET password = ? WHERE phone = ? AND password = ''`, encoded, phone)
		}
		if err != nil {
			return err
		}
		if err := db.audit(ctx, tx, securetextd.AuditEvent{Event: securetextd.AuditPasswordSet, Actor: string(phone)}); err != nil {
			return err
		}
		if address == "" {
			return nil
		}
		return db.requestConfirmation(ctx, tx, phone, address)
	})
	if err != nil {
		return wrap("create recipient "+phone.Masked(), err)
	}
	if address != "" {
		db.wakeUp()
	}
	return nil
}

// AuthenticateRecipient checks the password of phone's account. A number
// without an account and a wrong password get the same EUNAUTHORIZED
// error after the same time (see AuthenticateSender), so that a stranger
// cannot learn which numbers use the portal.
func (db *DB) AuthenticateRecipient(ctx context.Context, phone securetextd.Phone, password string) error {
	var encoded string
	err := db.read.QueryRowContext(ctx,
		`SELECT password FROM recipients WHERE phone = ?`, phone).Scan(&encoded)
	known := err == nil && encoded != "" // "": reset by an operator
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: authenticate recipient %s: %w", phone.Masked(), err)
	}
	ok, err := db.verifyPassword(ctx, encoded, known, password)
	if err != nil {
		return fmt.Errorf("store: authenticate recipient %s: %w", phone.Masked(), err)
	}
	if !ok {
		return securetextd.Errorf(securetextd.EUNAUTHORIZED, "Wrong password.")
	}
	return nil
}

// SetRecipientPassword replaces the password of phone's account and ends
// all its sessions, this browser's included: whoever knew the old password
// is logged out everywhere. The portal makes a new session for the browser
// that changed it. It is an ENOTFOUND error if the number has no account.
func (db *DB) SetRecipientPassword(ctx context.Context, phone securetextd.Phone, password string) error {
	encoded, err := db.newPasswordHash(ctx, password)
	if err != nil {
		return wrap("set recipient password", err)
	}
	err = db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE recipients SET password = ? WHERE phone = ? AND password <> ''`, encoded, phone)
		if err != nil {
			return err
		}
		if err := mustAffectOne(res, "No account for this number."); err != nil {
			return err
		}
		if _, err := db.signOutEverywhere(ctx, tx, phone); err != nil {
			return err
		}
		return db.audit(ctx, tx, securetextd.AuditEvent{Event: securetextd.AuditPasswordChanged, Actor: string(phone)})
	})
	return wrap("set recipient password "+phone.Masked(), err)
}

// RequestPasswordReset makes a reset token for phone, valid for validFor,
// and in the same transaction an outbox job (securetextd.JobKindReset)
// that mails it to the account's recovery address: a MailJob with To,
// Phone and Token, sealed like every payload. Earlier tokens of the phone
// stay valid until used or expired; expired tokens of every phone are
// deleted on the way.
//
// When phone has no account, or the account no confirmed recovery
// address, it does nothing and returns nil: the portal shows the same page either way, and
// a stranger learns nothing about the number. (The time taken still
// differs by one commit; a portal that must hide even that should not wait
// for the answer.)
func (db *DB) RequestPasswordReset(ctx context.Context, phone securetextd.Phone, validFor time.Duration) error {
	if validFor <= 0 {
		return fmt.Errorf("store: request password reset: validity %v is not positive", validFor)
	}
	queued := false
	err := db.update(ctx, func(tx *sql.Tx) error {
		now := db.Now()
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM reset_tokens WHERE expires <= ?`, nanos(now)); err != nil {
			return err
		}
		var sealed []byte
		var confirmed int64
		err := tx.QueryRowContext(ctx,
			`SELECT recovery_email, recovery_confirmed FROM recipients WHERE phone = ? AND password <> ''`,
			phone).Scan(&sealed, &confirmed)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && (sealed == nil || confirmed == 0)) {
			// An address nobody confirmed may hold a typo, or someone
			// else's mailbox: it is sent nothing.
			return db.audit(ctx, tx, securetextd.AuditEvent{
				Event: securetextd.AuditResetRequested, Actor: string(phone), Detail: "no account or no confirmed recovery address",
			})
		}
		if err != nil {
			return err
		}
		address, err := db.open(sealed, recoveryPlace(string(phone)))
		if err != nil {
			return fmt.Errorf("recovery address: %w", err)
		}

		token := newToken(resetTokenBytes)
		hash := hashToken(token)
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO reset_tokens (token_hash, phone, created, expires) VALUES (?, ?, ?, ?)`,
			hash[:], phone, nanos(now), nanos(now.Add(validFor))); err != nil {
			return err
		}
		language, err := accountLanguage(ctx, tx, phone, securetextd.LanguageFrom(ctx))
		if err != nil {
			return err
		}
		payload, err := json.Marshal(securetextd.MailJob{To: string(address), Phone: phone, Token: token, Language: language})
		if err != nil {
			return err
		}
		if _, err := db.addJob(ctx, tx, securetextd.JobKindReset, payload, now); err != nil {
			return err
		}
		queued = true
		return db.audit(ctx, tx, securetextd.AuditEvent{
			Event: securetextd.AuditResetRequested, Actor: string(phone), Detail: "link mailed",
		})
	})
	if err != nil {
		return fmt.Errorf("store: request password reset %s: %w", phone.Masked(), err)
	}
	if queued {
		db.wakeUp()
	}
	return nil
}

// CheckResetToken returns the phone whose password token may reset, so
// that the portal can show the form for a new password. It changes
// nothing: showing the form (a GET) must not use the token up. An unknown,
// used or expired token gets the same ENOTFOUND error.
func (db *DB) CheckResetToken(ctx context.Context, token string) (securetextd.Phone, error) {
	hash := hashToken(token)
	var phone securetextd.Phone
	err := db.read.QueryRowContext(ctx,
		`SELECT phone FROM reset_tokens WHERE token_hash = ? AND expires > ?`,
		hash[:], nanos(db.Now())).Scan(&phone)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errResetToken()
	}
	if err != nil {
		return "", fmt.Errorf("store: check reset token: %w", err)
	}
	return phone, nil
}

// ResetPassword sets a new password for the phone that token may reset,
// and returns the phone. The token is used up, and with it every other
// reset token of the phone; every session of the phone ends. An unknown,
// used or expired token gets the same ENOTFOUND error as in
// CheckResetToken. A password too short is an EINVALID error that leaves
// the token valid, so that the recipient can try again.
func (db *DB) ResetPassword(ctx context.Context, token, newPassword string) (securetextd.Phone, error) {
	encoded, err := db.newPasswordHash(ctx, newPassword)
	if err != nil {
		return "", wrap("reset password", err)
	}
	hash := hashToken(token)
	var phone securetextd.Phone
	err = db.update(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx,
			`SELECT phone FROM reset_tokens WHERE token_hash = ? AND expires > ?`,
			hash[:], nanos(db.Now())).Scan(&phone)
		if errors.Is(err, sql.ErrNoRows) {
			return errResetToken()
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx,
			`UPDATE recipients SET password = ? WHERE phone = ?`, encoded, phone)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return errResetToken()
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM reset_tokens WHERE phone = ?`, phone); err != nil {
			return err
		}
		if _, err := db.signOutEverywhere(ctx, tx, phone); err != nil {
			return err
		}
		return db.audit(ctx, tx, securetextd.AuditEvent{Event: securetextd.AuditResetUsed, Actor: string(phone)})
	})
	if err != nil {
		return "", wrap("reset password", err)
	}
	return phone, nil
}

// errResetToken returns the one answer to every reset token that does not
// work.
func errResetToken() error {
	return securetextd.Errorf(securetextd.ENOTFOUND,
		"This reset link is not valid: it was used already, or it has expired. Ask for a new one.")
}

// parseRecoveryAddress checks that s is a bare email address, and returns
// it without surrounding space.
func parseRecoveryAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", securetextd.Errorf(securetextd.EINVALID,
			"%q is not an email address: give the bare address, as in name@example.com", s)
	}
	return a.Address, nil
}
