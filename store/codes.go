package store

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/securetextd/securetextd"
)

// One-time codes prove that whoever opens a link holds the phone (or the
// mailbox): the portal asks for one on a first visit and from every
// browser the account has not seen (devices.go remembers the browsers
// that gave one). A code is CodeDigits random digits, sent through the
// outbox as a text of its own (a securetextd.CodeJob, at the SMS rate) or,
// to a recipient reached by email, as an email of its own (the mail
// drain), valid for CodeValidFor, tried at most CodeMaxTries times, and
// used once: a right answer deletes it, and so does its last wrong one. A
// number or address has at most one live code; a new one replaces it, so
// only the latest text or email counts.
//
// Six digits are a million guesses, which a copy of the database would
// try in a moment against a plain hash. So the store keeps only
//
//	HMAC-SHA-256(K, len(phone) | phone | code)
//
// under K = HKDF-SHA-256(fingerprint key of data key key_id, "securetextd
// one-time code v1"): without the key file the row says nothing, and the
// phone in the MAC keeps a row copied to another number from matching.
//
// What stops guessing online is the tries per code and the portal's
// lockout, where every wrong code counts as a wrong password. What stops
// a stranger holding a link from texting the patient again and again (or
// running up the SMS bill) is the resend limit: one code per number per
// CodeResendAfter, and CodesPerHour per number in an hour, counted in
// limit_strikes so that every node shares the count.

// The rules of one-time codes.
const (
	CodeValidFor    = 10 * time.Minute
	CodeMaxTries    = 5
	CodeResendAfter = time.Minute
	CodesPerHour    = 5
)

// codeLabel is HKDF's info for the code key.
const codeLabel = "securetextd one-time code v1"

// limitCodeSent is the strike kind that counts the codes sent to a number.
const limitCodeSent = "code-sent"

// CodeLimitError refuses a code asked for too soon or too often. Wait is
// how long until the next one may be sent. Its code is ELIMIT.
type CodeLimitError struct{ Wait time.Duration }

func (e *CodeLimitError) Error() string {
	return fmt.Sprintf("securetextd: %s: no new code for %v", securetextd.ELIMIT, e.Wait.Round(time.Second))
}

// Unwrap makes ErrorCode and ErrorMessage see an ELIMIT *securetextd.Error.
func (e *CodeLimitError) Unwrap() error {
	return securetextd.Errorf(securetextd.ELIMIT, "A code was sent a moment ago. Wait before asking for another.")
}

// Codes sends one-time codes the way each recipient is reached: by text
// to a phone number (SMSCodes), by email to an address (EmailCodes). It is
// the portal's code sender for portal.second_factor = "sms-code". The
// code, its limits and its check are the same whichever way it goes.
type Codes struct{ db *DB }

// Codes returns the sender of one-time codes by text or by email.
func (db *DB) Codes() Codes { return Codes{db} }

// SendCode sends a fresh code to phone, by email when it is an address.
func (c Codes) SendCode(ctx context.Context, phone securetextd.Phone) error {
	if phone.IsEmail() {
		return EmailCodes(c).SendCode(ctx, phone)
	}
	return SMSCodes(c).SendCode(ctx, phone)
}

// CheckCode uses phone's live code, as DB.CheckCode does.
func (c Codes) CheckCode(ctx context.Context, phone securetextd.Phone, code string) error {
	return c.db.CheckCode(ctx, phone, code)
}

// SMSCodes sends one-time codes by text.
type SMSCodes struct{ db *DB }

// SMSCodes returns the sender of one-time codes by text.
func (db *DB) SMSCodes() SMSCodes { return SMSCodes{db} }

// SendCode makes a fresh code for phone, replacing any live one, and in
// the same transaction queues the text that carries it. It is a
// *CodeLimitError (ELIMIT) within CodeResendAfter of the last code, or
// past CodesPerHour in an hour.
func (c SMSCodes) SendCode(ctx context.Context, phone securetextd.Phone) error {
	if !isE164(string(phone)) {
		return securetextd.Errorf(securetextd.EINVALID, "%q is not a phone number in E.164 form", phone)
	}
	return c.db.sendCode(ctx, phone, "sms", securetextd.JobKindCode)
}

// CheckCode uses phone's live code, as DB.CheckCode does.
func (c SMSCodes) CheckCode(ctx context.Context, phone securetextd.Phone, code string) error {
	return c.db.CheckCode(ctx, phone, code)
}

// EmailCodes sends one-time codes by email, through the mail drain (a
// securetextd.JobKindEmailCode job), to the recipients the gateway
// reaches by email: the same codes as SMSCodes', under the same rules,
// keyed by the lowercased address.
type EmailCodes struct{ db *DB }

// EmailCodes returns the sender of one-time codes by email.
func (db *DB) EmailCodes() EmailCodes { return EmailCodes{db} }

// SendCode makes a fresh code for the address, as SMSCodes.SendCode does
// for a number, and queues the email that carries it.
func (c EmailCodes) SendCode(ctx context.Context, address securetextd.Phone) error {
	if !address.IsEmail() || !validRecipient(address) {
		return securetextd.Errorf(securetextd.EINVALID, "%q is not an email address as ParseEmail makes it", address)
	}
	return c.db.sendCode(ctx, address, "email", securetextd.JobKindEmailCode)
}

// CheckCode uses the address's live code, as DB.CheckCode does.
func (c EmailCodes) CheckCode(ctx context.Context, address securetextd.Phone, code string) error {
	return c.db.CheckCode(ctx, address, code)
}

// sendCode is SendCode for any channel: a job of kind carries the code
// to phone, a checked number or address.
func (db *DB) sendCode(ctx context.Context, phone securetextd.Phone, channel, kind string) error {
	code := newCode()
	err := db.update(ctx, func(tx *sql.Tx) error {
		now := db.Now()
		var created int64
		err := tx.QueryRowContext(ctx,
			`SELECT created FROM recipient_codes WHERE phone = ?`, phone).Scan(&created)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err == nil {
			if next := fromNanos(created).Add(CodeResendAfter); next.After(now) {
				return &CodeLimitError{Wait: next.Sub(now)}
			}
		}
		keys := []string{"phone:" + string(phone)}
		rule := StrikeRule{Max: CodesPerHour, Window: time.Hour}
		if err := db.checkUnlocked(ctx, tx, limitCodeSent, keys); errors.Is(err, errKeyLocked) {
			return codeLimit(ctx, tx, db, keys, now)
		} else if err != nil {
			return err
		}
		if _, _, err := db.strike(ctx, tx, limitCodeSent, rule, keys, now); err != nil {
			return err
		}
		keyID := db.data.newest
		mac, err := db.codeMAC(keyID, phone, code)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO recipient_codes (phone, mac, key_id, channel, created, expires, tries)
			VALUES (?, ?, ?, ?, ?, ?, 0)
			ON CONFLICT (phone) DO UPDATE SET mac = excluded.mac, key_id = excluded.key_id,
				channel = excluded.channel, created = excluded.created, expires = excluded.expires, tries = 0`,
			phone, mac, int64(keyID), channel, nanos(now), nanos(now.Add(CodeValidFor))); err != nil {
			return err
		}
		language, err := accountLanguage(ctx, tx, phone, securetextd.LanguageFrom(ctx))
		if err != nil {
			return err
		}
		payload, err := json.Marshal(securetextd.CodeJob{To: phone, Code: code, Language: language})
		if err != nil {
			return err
		}
		if _, err := db.addJob(ctx, tx, kind, payload, now); err != nil {
			return err
		}
		return db.audit(ctx, tx, securetextd.AuditEvent{
			Event: securetextd.AuditFactorSent, Actor: string(phone), Detail: channel,
		})
	})
	if err != nil {
		return wrap("send code "+phone.Masked(), err)
	}
	db.wakeUp()
	return nil
}

// codeLimit returns the *CodeLimitError of keys locked for codes.
func codeLimit(ctx context.Context, tx *sql.Tx, db *DB, keys []string, now time.Time) error {
	var until int64
	if err := tx.QueryRowContext(ctx,
		`SELECT until FROM limit_strikes WHERE kind = ? AND key = ?`, limitCodeSent, keys[0]).Scan(&until); err != nil {
		return err
	}
	return &CodeLimitError{Wait: max(fromNanos(until).Sub(now), time.Second)}
}

// CheckCode uses phone's live code. A right code is deleted (used once)
// and the answer is nil. A wrong one counts a try and is an EUNAUTHORIZED
// error; the last try deletes the code. With no live code (none sent,
// expired, used, or its tries used up) any answer is an ENOTFOUND error:
// the recipient asks for a new one. The portal counts every answer that
// is not nil toward its lockout.
func (db *DB) CheckCode(ctx context.Context, phone securetextd.Phone, code string) error {
	var verdict error
	err := db.update(ctx, func(tx *sql.Tx) error {
		now := db.Now()
		var mac []byte
		var keyID, expires, tries int64
		err := tx.QueryRowContext(ctx,
			`SELECT mac, key_id, expires, tries FROM recipient_codes WHERE phone = ?`, phone).Scan(&mac, &keyID, &expires, &tries)
		if errors.Is(err, sql.ErrNoRows) {
			verdict = errNoCode
			return nil
		}
		if err != nil {
			return err
		}
		if expires <= nanos(now) || tries >= CodeMaxTries {
			verdict = errNoCode
			_, err := tx.ExecContext(ctx, `DELETE FROM recipient_codes WHERE phone = ?`, phone)
			return err
		}
		want, err := db.codeMAC(uint32(keyID), phone, code)
		if err != nil {
			return err
		}
		if validCode(code) && hmac.Equal(mac, want) {
			_, err := tx.ExecContext(ctx, `DELETE FROM recipient_codes WHERE phone = ?`, phone)
			return err
		}
		verdict = securetextd.Errorf(securetextd.EUNAUTHORIZED, "That code is not right.")
		if tries+1 >= CodeMaxTries {
			_, err = tx.ExecContext(ctx, `DELETE FROM recipient_codes WHERE phone = ?`, phone)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE recipient_codes SET tries = tries + 1 WHERE phone = ?`, phone)
		}
		return err
	})
	if err != nil {
		return wrap("check code "+phone.Masked(), err)
	}
	return verdict
}

// errNoCode answers a code when none is live.
var errNoCode = securetextd.Errorf(securetextd.ENOTFOUND,
	"That code has expired or was used up. Ask for a new one.")

// codeMAC is what is kept of code for phone, under data key keyID.
func (db *DB) codeMAC(keyID uint32, phone securetextd.Phone, code string) ([]byte, error) {
	fk := db.data.fingerprints[keyID]
	if fk == nil {
		return nil, fmt.Errorf("one-time code: kept under no data key of this database (%d)", keyID)
	}
	key, err := hkdf.Key(sha256.New, fk, nil, codeLabel, sha256.Size)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%d|%s|%s", len(phone), phone, code)
	return m.Sum(nil), nil
}

// newCode returns CodeDigits uniformly random digits.
func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err) // the system RNG failed: nothing is safe to do
	}
	return fmt.Sprintf("%0*d", securetextd.CodeDigits, n.Int64())
}

// validCode reports whether s has the form of a code.
func validCode(s string) bool {
	if len(s) != securetextd.CodeDigits {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
