package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/locale"
)

// A recipient's account can be managed by its patient and repaired by an
// operator, so that nobody is locked out for good (issue 12). A recovery
// address gets password resets only once a link mailed to it was opened:
// a typo, or someone else's mailbox, never receives one. A new address
// waits in pending_email until confirmed; the one in force stays in force
// meanwhile. The operator's reset clears the password and the addresses,
// and the next link visit sets the account up again, as a first visit.

// The kinds of strikes the portal counts against a phone number (its
// lockouts: StrikesLocked and Strike), which the operator's unlock, reset
// and delete clear. The keys are "phone:" + the number.
const (
	StrikesLogin = "login" // wrong passwords
	StrikesReset = "reset" // reset requests
)

// phoneStrikeKey is the key a phone number's strikes are counted under.
func phoneStrikeKey(phone securetextd.Phone) string { return "phone:" + string(phone) }

// Places of the accounts' sealed columns.
func pendingPlace(phone string) place { return place{"recipients", "pending_email", phone} }
func signInPlace(phone string, at int64) place {
	return place{"sign_ins", "sealed", phone + " " + rowID(at)}
}

// confirmTokenBytes is the length of a confirmation token: 256 bits.
const confirmTokenBytes = 32

// requestConfirmation makes address phone's pending recovery address,
// inside tx, with a new confirmation token mailed to it through the
// outbox (securetextd.JobKindConfirm, the payload sealed like every
// payload). Earlier tokens of phone are deleted: only the newest address
// can be confirmed. The caller wakes the outbox after the commit.
func (db *DB) requestConfirmation(ctx context.Context, tx *sql.Tx, phone securetextd.Phone, address string) error {
	now := db.Now()
	if _, err := tx.ExecContext(ctx,
		`DELETE FROM confirm_tokens WHERE phone = ? OR expires <= ?`, phone, nanos(now)); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE recipients SET pending_email = ? WHERE phone = ?`,
		db.seal([]byte(address), pendingPlace(string(phone))), phone)
	if err != nil {
		return err
	}
	if err := mustAffectOne(res, "No account for this number."); err != nil {
		return err
	}
	token := newToken(confirmTokenBytes)
	hash := hashToken(token)
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO confirm_tokens (token_hash, phone, created, expires) VALUES (?, ?, ?, ?)`,
		hash[:], phone, nanos(now), nanos(now.Add(securetextd.ConfirmValidFor))); err != nil {
		return err
	}
	language, err := accountLanguage(ctx, tx, phone, securetextd.LanguageFrom(ctx))
	if err != nil {
		return err
	}
	payload, err := json.Marshal(securetextd.MailJob{To: address, Phone: phone, Token: token, Language: language})
	if err != nil {
		return err
	}
	if _, err := db.addJob(ctx, tx, securetextd.JobKindConfirm, payload, now); err != nil {
		return err
	}
	// The address stays out of the trail: it is sealed everywhere else.
	return db.audit(ctx, tx, securetextd.AuditEvent{Event: securetextd.AuditConfirmSent, Actor: string(phone)})
}

// SetRecoveryAddress makes address the recovery address phone's account
// is waiting to confirm, and mails it a confirmation link (valid for
// securetextd.ConfirmValidFor). The address in force, if any, stays in
// force until the new one is confirmed. The portal asks for the password
// first. It is an EINVALID error if address is not a bare email address,
// and ENOTFOUND if the number has no account.
func (db *DB) SetRecoveryAddress(ctx context.Context, phone securetextd.Phone, address string) error {
	address, err := parseRecoveryAddress(address)
	if err != nil {
		return err
	}
	err = db.update(ctx, func(tx *sql.Tx) error { return db.requestConfirmation(ctx, tx, phone, address) })
	if err != nil {
		return wrap("set recovery address "+phone.Masked(), err)
	}
	db.wakeUp()
	return nil
}

// CheckConfirmToken returns the phone number and the address that token
// would confirm, so that the portal can show what a tap on "Confirm"
// does. It changes nothing: mail scanners fetch links. An unknown, used
// or expired token gets the same ENOTFOUND error.
func (db *DB) CheckConfirmToken(ctx context.Context, token string) (securetextd.Phone, string, error) {
	hash := hashToken(token)
	var phone securetextd.Phone
	var sealed []byte
	err := db.read.QueryRowContext(ctx, `
		SELECT t.phone, r.pending_email FROM confirm_tokens t JOIN recipients r ON r.phone = t.phone
		WHERE t.token_hash = ? AND t.expires > ? AND r.pending_email IS NOT NULL`,
		hash[:], nanos(db.Now())).Scan(&phone, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", errConfirmToken()
	}
	if err != nil {
		return "", "", fmt.Errorf("store: check confirmation token: %w", err)
	}
	address, err := db.open(sealed, pendingPlace(string(phone)))
	if err != nil {
		return "", "", fmt.Errorf("store: check confirmation token: pending address: %w", err)
	}
	return phone, string(address), nil
}

// ConfirmRecoveryAddress uses token once: the address it was mailed to
// becomes the account's recovery address, confirmed, in place of the one
// before. It returns the phone number. An unknown, used or expired token
// gets the same ENOTFOUND error as in CheckConfirmToken.
func (db *DB) ConfirmRecoveryAddress(ctx context.Context, token string) (securetextd.Phone, error) {
	hash := hashToken(token)
	var phone securetextd.Phone
	err := db.update(ctx, func(tx *sql.Tx) error {
		now := db.Now()
		var sealed []byte
		err := tx.QueryRowContext(ctx, `
			SELECT t.phone, r.pending_email FROM confirm_tokens t JOIN recipients r ON r.phone = t.phone
			WHERE t.token_hash = ? AND t.expires > ? AND r.pending_email IS NOT NULL`,
			hash[:], nanos(now)).Scan(&phone, &sealed)
		if errors.Is(err, sql.ErrNoRows) {
			return errConfirmToken()
		}
		if err != nil {
			return err
		}
		address, err := db.open(sealed, pendingPlace(string(phone)))
		if err != nil {
			return fmt.Errorf("pending address: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `
			UPDATE recipients SET recovery_email = ?, recovery_confirmed = ?, pending_email = NULL WHERE phone = ?`,
			db.seal(address, recoveryPlace(string(phone))), nanos(now), phone); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM confirm_tokens WHERE phone = ?`, phone); err != nil {
			return err
		}
		return db.audit(ctx, tx, securetextd.AuditEvent{Event: securetextd.AuditRecoveryConfirmed, Actor: string(phone)})
	})
	if err != nil {
		return "", wrap("confirm recovery address", err)
	}
	return phone, nil
}

// errConfirmToken returns the one answer to every confirmation token that
// does not work.
func errConfirmToken() error {
	return securetextd.Errorf(securetextd.ENOTFOUND,
		"This confirmation link is not valid: it was used already, a newer one was sent, or it has expired.")
}

// ConfirmedRecoveryAddress returns phone's recovery address and true when
// its owner confirmed it, and "", false when the account has none
// confirmed (or there is no account). Only a confirmed address may be
// sent anything that opens the account: a reset link, or, for a number
// whose texts fail, a message instead of the text.
func (db *DB) ConfirmedRecoveryAddress(ctx context.Context, phone securetextd.Phone) (string, bool, error) {
	var sealed []byte
	var confirmed int64
	err := db.read.QueryRowContext(ctx, `
		SELECT recovery_email, recovery_confirmed FROM recipients WHERE phone = ? AND password <> ''`,
		phone).Scan(&sealed, &confirmed)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (sealed == nil || confirmed == 0)) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: recovery address %s: %w", phone.Masked(), err)
	}
	address, err := db.open(sealed, recoveryPlace(string(phone)))
	if err != nil {
		return "", false, fmt.Errorf("store: recovery address %s: %w", phone.Masked(), err)
	}
	return string(address), true, nil
}

// SetRecipientLanguage remembers the language phone's patient chose, a
// tag of the catalogue (package locale: one file per language). It is an
// EINVALID error for another tag, ENOTFOUND without an account.
func (db *DB) SetRecipientLanguage(ctx context.Context, phone securetextd.Phone, tag string) error {
	cat, err := locale.Load()
	if err != nil {
		return err
	}
	if !cat.Has(tag) {
		var tags []string
		for _, l := range cat.Languages() {
			tags = append(tags, l.Tag)
		}
		return securetextd.Errorf(securetextd.EINVALID, "%q is not a language of the portal: choose one of %s", tag, strings.Join(tags, ", "))
	}
	err = db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE recipients SET language = ? WHERE phone = ?`, tag, phone)
		if err != nil {
			return err
		}
		if err := mustAffectOne(res, "No account for this number."); err != nil {
			return err
		}
		return db.audit(ctx, tx, securetextd.AuditEvent{Event: securetextd.AuditLanguageSet, Actor: string(phone), Detail: tag})
	})
	return wrap("set language "+phone.Masked(), err)
}

// SignOutEverywhere ends every session of phone's account, in every
// browser, the caller's included, and forgets every remembered browser
// (devices.go), so that each must pass the second factor again; it returns
// how many sessions there were. The patient's button and the operator's
// reset and delete do this. A password change or reset ends the sessions
// (signOutEverywhere) but keeps the remembered browsers: a browser the
// account has not seen is asked for the code after a reset anyway, and the
// patient's own is spared a text.
func (db *DB) SignOutEverywhere(ctx context.Context, phone securetextd.Phone) (int, error) {
	var n int
	err := db.update(ctx, func(tx *sql.Tx) error {
		var err error
		if n, err = db.signOutEverywhere(ctx, tx, phone); err != nil {
			return err
		}
		if err := db.forgetDevices(ctx, tx, phone); err != nil {
			return err
		}
		return db.audit(ctx, tx, securetextd.AuditEvent{
			Event: securetextd.AuditSignedOutEverywhere, Actor: string(phone), Detail: fmt.Sprintf("%d sessions", n),
		})
	})
	if err != nil {
		return 0, wrap("sign out everywhere "+phone.Masked(), err)
	}
	return n, nil
}

// signOutEverywhere ends phone's sessions inside tx, without an audit
// event (callers record their own) and without forgetting devices.
func (db *DB) signOutEverywhere(ctx context.Context, tx *sql.Tx, phone securetextd.Phone) (int, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE phone = ?`, phone)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// MaskAddress hides most of an email address for a log, the audit trail
// or an operator's screen: "p…@home.example".
func MaskAddress(address string) string {
	local, domain, ok := strings.Cut(address, "@")
	if !ok || local == "" {
		return "…"
	}
	r := []rune(local)
	return string(r[0]) + "…@" + domain
}

// forgetDevices forgets every browser remembered for phone, inside tx.
func (db *DB) forgetDevices(ctx context.Context, tx *sql.Tx, phone securetextd.Phone) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM recipient_devices WHERE phone = ?`, phone)
	return err
}
