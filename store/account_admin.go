package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/securetextd/securetextd"
)

// What the account page shows of an account, and what the operator's
// `securetextd recipient` commands see and change.

// accountColumns reads an account with its last activity, its sessions
// and its lockout, in one row.
const accountColumns = `
	r.phone, r.created, r.password = '', r.recovery_email IS NOT NULL, r.recovery_confirmed, r.pending_email IS NOT NULL, r.language,
	coalesce((SELECT max(s.last_seen) FROM sessions s WHERE s.phone = r.phone), 0),
	coalesce((SELECT max(i.at) FROM sign_ins i WHERE i.phone = r.phone), 0),
	(SELECT count(*) FROM sessions s WHERE s.phone = r.phone),
	coalesce((SELECT l.until FROM limit_strikes l WHERE l.kind = 'login' AND l.key = 'phone:' || r.phone), 0)`

// scanAccount reads a row of accountColumns.
func (db *DB) scanAccount(row interface{ Scan(...any) error }) (*securetextd.Account, error) {
	var a securetextd.Account
	var created, confirmed, lastSession, lastSignIn, until int64
	var hasRecovery, hasPending bool
	if err := row.Scan(&a.Phone, &created, &a.NeedsSetup, &hasRecovery, &confirmed, &hasPending, &a.Language,
		&lastSession, &lastSignIn, &a.Sessions, &until); err != nil {
		return nil, err
	}
	a.Created = fromNanos(created)
	a.Confirmed = hasRecovery && confirmed != 0
	if last := max(lastSession, lastSignIn); last > 0 {
		a.LastSeen = fromNanos(last)
	}
	if until > nanos(db.Now()) {
		a.LockedUntil = fromNanos(until)
	}
	return &a, nil
}

// Account returns phone's account with its addresses opened, for its
// account page and `recipient show`. It is an ENOTFOUND error if the
// number has no account.
func (db *DB) Account(ctx context.Context, phone securetextd.Phone) (*securetextd.Account, error) {
	var a *securetextd.Account
	var recovery, pending []byte
	err := db.view(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = db.scanAccount(tx.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM recipients r WHERE r.phone = ?`, phone))
		if err != nil {
			return err
		}
		return tx.QueryRowContext(ctx,
			`SELECT recovery_email, pending_email FROM recipients WHERE phone = ?`, phone).Scan(&recovery, &pending)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, securetextd.Errorf(securetextd.ENOTFOUND, "No account for this number.")
	}
	if err != nil {
		return nil, fmt.Errorf("store: account %s: %w", phone.Masked(), err)
	}
	for _, v := range []struct {
		sealed []byte
		p      place
		to     *string
	}{{recovery, recoveryPlace(string(phone)), &a.Recovery}, {pending, pendingPlace(string(phone)), &a.Pending}} {
		if v.sealed == nil {
			continue
		}
		plain, err := db.open(v.sealed, v.p)
		if err != nil {
			return nil, fmt.Errorf("store: account %s: %s: %w", phone.Masked(), v.p.column, err)
		}
		*v.to = string(plain)
	}
	return a, nil
}

// Accounts lists every account, by phone number, without the addresses
// (nothing is opened): for `recipient list`.
func (db *DB) Accounts(ctx context.Context) ([]*securetextd.Account, error) {
	var list []*securetextd.Account
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+accountColumns+` FROM recipients r ORDER BY r.phone`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			a, err := db.scanAccount(rows)
			if err != nil {
				return err
			}
			list = append(list, a)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: accounts: %w", err)
	}
	return list, nil
}

// keptSignIns is how many sign-ins of an account are kept: the account
// page's list.
const keptSignIns = 10

// signInRecord is the sealed part of a sign-in.
type signInRecord struct {
	Device  string `json:"device"`
	Network string `json:"network"`
	Private bool   `json:"private,omitempty"`
}

// RecordSignIn adds a sign-in of phone's account (a first password, a
// login, a reset) to the ones its account page lists; the oldest beyond
// the last ten are deleted. Device and network are sealed: together with
// the phone number they say where a patient was.
func (db *DB) RecordSignIn(ctx context.Context, phone securetextd.Phone, in securetextd.SignIn) error {
	rec, err := json.Marshal(signInRecord{Device: in.Device, Network: in.Network, Private: in.Private})
	if err != nil {
		return err
	}
	err = db.updateGrouped(ctx, func(ctx context.Context, tx *sql.Tx) error {
		at := nanos(db.Now())
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO sign_ins (phone, at, sealed) VALUES (?, ?, ?) ON CONFLICT (phone, at) DO NOTHING`,
			phone, at, db.seal(rec, signInPlace(string(phone), at))); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
			DELETE FROM sign_ins WHERE phone = ? AND at NOT IN (
				SELECT at FROM sign_ins WHERE phone = ? ORDER BY at DESC LIMIT ?)`,
			phone, phone, keptSignIns)
		return err
	})
	return wrap("record sign-in "+phone.Masked(), err)
}

// SignIns returns the recent sign-ins of phone's account, newest first.
func (db *DB) SignIns(ctx context.Context, phone securetextd.Phone) ([]securetextd.SignIn, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT at, sealed FROM sign_ins WHERE phone = ? ORDER BY at DESC LIMIT ?`, phone, keptSignIns)
	if err != nil {
		return nil, fmt.Errorf("store: sign-ins %s: %w", phone.Masked(), err)
	}
	defer rows.Close()
	var list []securetextd.SignIn
	for rows.Next() {
		var at int64
		var sealed []byte
		if err := rows.Scan(&at, &sealed); err != nil {
			return nil, fmt.Errorf("store: sign-ins %s: %w", phone.Masked(), err)
		}
		plain, err := db.open(sealed, signInPlace(string(phone), at))
		if err != nil {
			return nil, fmt.Errorf("store: sign-ins %s: %w", phone.Masked(), err)
		}
		var rec signInRecord
		if err := json.Unmarshal(plain, &rec); err != nil {
			return nil, fmt.Errorf("store: sign-ins %s: %w", phone.Masked(), err)
		}
		list = append(list, securetextd.SignIn{Time: fromNanos(at), Device: rec.Device, Network: rec.Network, Private: rec.Private})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: sign-ins %s: %w", phone.Masked(), err)
	}
	return list, nil
}

// The operator's repairs. Each is recorded in the audit trail with the
// actor of ctx's securetextd.Origin ("operator:NAME" from the command
// line), in the transaction that makes it.

// UnlockRecipient lifts the lockout of phone's number (wrong passwords,
// reset requests) at once. The client addresses' counts stand: they
// concern whoever guesses, not the patient. It is an ENOTFOUND error if
// the number has no account.
func (db *DB) UnlockRecipient(ctx context.Context, phone securetextd.Phone) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		if err := db.mustHaveAccount(ctx, tx, phone); err != nil {
			return err
		}
		if err := db.clearPhoneStrikes(ctx, tx, phone); err != nil {
			return err
		}
		return db.audit(ctx, tx, securetextd.AuditEvent{Event: securetextd.AuditRecipientUnlocked, Detail: string(phone)})
	})
	return wrap("unlock "+phone.Masked(), err)
}

// ResetRecipient clears the password and the recovery addresses of
// phone's account, ends all its sessions and unlocks it: the next visit
// of any link to the number sets the account up again, as a first visit.
// Its creation time and language stay. It is an ENOTFOUND error if the
// number has no account.
func (db *DB) ResetRecipient(ctx context.Context, phone securetextd.Phone) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		if err := db.mustHaveAccount(ctx, tx, phone); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
			UPDATE recipients SET password = '', recovery_email = NULL, recovery_confirmed = 0, pending_email = NULL
			WHERE phone = ?`, phone); err != nil {
			return err
		}
		if err := db.deleteAccountRows(ctx, tx, phone); err != nil {
			return err
		}
		return db.audit(ctx, tx, securetextd.AuditEvent{Event: securetextd.AuditRecipientReset, Detail: string(phone)})
	})
	return wrap("reset "+phone.Masked(), err)
}

// DeleteRecipient deletes phone's account, its sessions, tokens and
// sign-ins. Its conversations stay, until retention ends them; a later
// link to the number asks for a new password. It is an ENOTFOUND error if
// the number has no account.
func (db *DB) DeleteRecipient(ctx context.Context, phone securetextd.Phone) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		if err := db.mustHaveAccount(ctx, tx, phone); err != nil {
			return err
		}
		if err := db.deleteAccountRows(ctx, tx, phone); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sign_ins WHERE phone = ?`, phone); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM recipients WHERE phone = ?`, phone); err != nil {
			return err
		}
		return db.audit(ctx, tx, securetextd.AuditEvent{Event: securetextd.AuditRecipientDeleted, Detail: string(phone)})
	})
	return wrap("delete "+phone.Masked(), err)
}

// mustHaveAccount is an ENOTFOUND error when phone has no account.
func (db *DB) mustHaveAccount(ctx context.Context, tx *sql.Tx, phone securetextd.Phone) error {
	var exists bool
	if err := tx.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM recipients WHERE phone = ?)`, phone).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return securetextd.Errorf(securetextd.ENOTFOUND, "No account for %s.", phone)
	}
	return nil
}

// deleteAccountRows signs phone out everywhere, forgets its browsers,
// deletes its reset and confirmation tokens and any code not yet given,
// and lifts its lockout.
func (db *DB) deleteAccountRows(ctx context.Context, tx *sql.Tx, phone securetextd.Phone) error {
	if _, err := db.signOutEverywhere(ctx, tx, phone); err != nil {
		return err
	}
	if err := db.forgetDevices(ctx, tx, phone); err != nil {
		return err
	}
	for _, q := range []string{
		`DELETE FROM reset_tokens WHERE phone = ?`,
		`DELETE FROM confirm_tokens WHERE phone = ?`,
		`DELETE FROM recipient_codes WHERE phone = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, phone); err != nil {
			return err
		}
	}
	return db.clearPhoneStrikes(ctx, tx, phone)
}

// clearPhoneStrikes deletes the strikes counted against phone's number.
func (db *DB) clearPhoneStrikes(ctx context.Context, tx *sql.Tx, phone securetextd.Phone) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM limit_strikes WHERE kind IN (?, ?) AND key = ?`,
		StrikesLogin, StrikesReset, phoneStrikeKey(phone))
	return err
}
