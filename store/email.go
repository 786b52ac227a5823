package store

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"time"

	"github.com/securetextd/securetextd"
)

// Email recipients. A recipient is named by a securetextd.Phone that is
// either a number in E.164 form or an email address as ParseEmail makes
// it (lowercase, bare). Everything keyed by the recipient — the account
// and its password, sessions, conversations, limits, the audit trail —
// takes either alike, in the same columns. What differs is how the link
// reaches them: a phone's by a text (JobKindText, the text drain), an
// address's by a notice email (JobKindEmail, the mail drain). Both jobs
// have their row in texts, so a notice email is queued, sent or failed as
// a text is, and the sender's report reads both the same way.
//
// A text that fails for good (the provider refused the number; a delivery
// report of failed, rejected or expired) may have a fallback address:
// then the link goes there by a notice email instead, with a fresh link
// token, and the audit trail records text.fallback (textFailed).

// validRecipient reports whether p is a recipient in one of the two forms
// the store keeps.
func validRecipient(p securetextd.Phone) bool {
	if !p.IsEmail() {
		return isE164(string(p))
	}
	e, err := securetextd.ParseEmail(string(p))
	return err == nil && e == p
}

// checkFallback refuses a target's fallback that is not an email address,
// or that is given for an email recipient (whose notice is an email
// already).
func checkFallback(t Target) error {
	if t.Fallback == "" {
		return nil
	}
	if t.Phone.IsEmail() {
		return securetextd.Errorf(securetextd.EINVALID, "a fallback address is for a phone number, not for %s", t.Phone)
	}
	if e, err := securetextd.ParseEmail(t.Fallback); err != nil || string(e) != t.Fallback {
		return securetextd.Errorf(securetextd.EINVALID, "fallback %q is not an email address in lowercase", t.Fallback)
	}
	return nil
}

// fallbackPlace is where a text's fallback address is sealed.
func fallbackPlace(job int64) place { return place{"text_fallbacks", "address", rowID(job)} }

// newLink makes a fresh link token for conversation conv and returns it;
// the database keeps only its hash. The token is its row's id, as a
// uvarint, then linkTokenBytes random bytes, in base64url: 23 characters
// for the first 127 links, 27 up to 268 million. The id finds the row, so
// that links are appended to their table in order, where a token's hash
// alone put each at a random place (migration 0019); the random bytes are
// what makes the token impossible to guess.
func (db *DB) newLink(ctx context.Context, tx *sql.Tx, conv int64, now time.Time) (string, error) {
	id, err := db.nextID(ctx, tx, "numbered_links")
	if err != nil {
		return "", err
	}
	token := linkToken(id)
	hash := hashToken(token)
	_, err = tx.ExecContext(later(ctx),
		`INSERT INTO numbered_links (id, token_hash, conversation_id, created) VALUES (?, ?, ?, ?)`,
		id, hash[:], conv, nanos(now))
	return token, err
}

// linkToken makes a new link token for row id of numbered_links.
func linkToken(id int64) string {
	b := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+linkTokenBytes), uint64(id))
	secret := make([]byte, linkTokenBytes)
	rand.Read(secret) // never fails; crashes the program if the system RNG does
	return base64.RawURLEncoding.EncodeToString(append(b, secret...))
}

// linkID returns the numbered_links row a link token names, and false for
// a token of the older form (16 random bytes, kept in links by its hash)
// or one that is not a link token at all.
func linkID(token string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) <= linkTokenBytes {
		return 0, false
	}
	id, n := binary.Uvarint(b)
	if n <= 0 || n != len(b)-linkTokenBytes || id == 0 || id > math.MaxInt64 {
		return 0, false
	}
	return int64(id), true
}

// addLinkJob adds the outbox job that brings conversation c's link token
// to to about message: a text to a phone, a notice email to an address;
// with its row in texts and, for a text, its fallback address sealed
// beside it; and records text.queued by actor.
func (db *DB) addLinkJob(ctx context.Context, tx *sql.Tx, c *securetextd.Conversation, actor string, to securetextd.Phone, message int64, token, fallback, language string, now time.Time) error {
	kind := securetextd.JobKindText
	if to.IsEmail() {
		kind, fallback = securetextd.JobKindEmail, ""
	}
	// The account's own choice is read when the text is sent
	// (RecipientLanguage): a read here would cost every commit a round
	// trip under the write lock.
	payload, err := json.Marshal(securetextd.TextJob{To: to, Token: token, ConversationID: c.ID, MessageID: message, Language: language})
	if err != nil {
		return err
	}
	job, err := db.addJob(ctx, tx, kind, payload, now)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(later(ctx),
		`INSERT INTO texts (job_id, conversation_id, message_id, updated) VALUES (?, ?, ?, ?)`,
		job, c.ID, message, nanos(now)); err != nil {
		return err
	}
	if fallback != "" {
		if _, err := tx.ExecContext(later(ctx),
			`INSERT INTO text_fallbacks (job_id, address) VALUES (?, ?)`,
			job, db.seal([]byte(fallback), fallbackPlace(job))); err != nil {
			return err
		}
	}
	return db.audit(ctx, tx, securetextd.AuditEvent{
		Time: now, Event: securetextd.AuditTextQueued, Actor: actor,
		ConversationID: c.ID, MessageID: message, Detail: "to=" + to.Masked(),
	})
}

// fallbackAddress returns where the notice of text job goes, to phone,
// when the text has failed for good: the address the sender gave with
// the message (the API's fallback_email), else the recovery address of
// phone's account if its owner confirmed it (accounts.go), else "". It is
// the one place that decides it. A notice email (phone an address) has no
// fallback.
func (db *DB) fallbackAddress(ctx context.Context, tx *sql.Tx, job int64, phone securetextd.Phone) (string, error) {
	if phone.IsEmail() {
		return "", nil
	}
	var sealed []byte
	err := tx.QueryRowContext(ctx, `SELECT address FROM text_fallbacks WHERE job_id = ?`, job).Scan(&sealed)
	switch {
	case err == nil:
		plain, err := db.open(sealed, fallbackPlace(job))
		if err != nil {
			return "", err
		}
		return string(plain), nil
	case !errors.Is(err, sql.ErrNoRows):
		return "", err
	}
	var confirmed int64
	err = tx.QueryRowContext(ctx, `
		SELECT recovery_email, recovery_confirmed FROM recipients WHERE phone = ? AND password <> ''`,
		phone).Scan(&sealed, &confirmed)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (sealed == nil || confirmed == 0)) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	plain, err := db.open(sealed, recoveryPlace(string(phone)))
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// fallBack runs in the transaction that records text job of conversation
// conv as failed for good: when the text has a fallback address, it
// queues the notice email there with a fresh link token, records
// text.fallback, and reports true.
func (db *DB) fallBack(ctx context.Context, tx *sql.Tx, job, conv, message int64, now time.Time) (bool, error) {
	c := &securetextd.Conversation{ID: conv}
	if err := tx.QueryRowContext(ctx,
		`SELECT phone, sender FROM conversations WHERE id = ?`, conv).Scan(&c.Phone, &c.Sender); err != nil {
		return false, err
	}
	address, err := db.fallbackAddress(ctx, tx, job, c.Phone)
	if err != nil || address == "" {
		return false, err
	}
	to := securetextd.Phone(address)
	token, err := db.newLink(ctx, tx, conv, now)
	if err != nil {
		return false, err
	}
	if err := db.audit(ctx, tx, securetextd.AuditEvent{
		Time: now, Event: securetextd.AuditTextFallback, Actor: "system",
		ConversationID: conv, MessageID: message, Detail: "to=" + to.Masked(),
	}); err != nil {
		return false, err
	}
	return true, db.addLinkJob(ctx, tx, c, "system", to, message, token, "", "", now)
}

// linkConversation finds the conversation a link token opens, and when it
// was withdrawn: a token of the numbered form by its row (compared with
// the hash kept there in constant time, so that the time a guess takes
// says nothing about how close it came), one of the older form by its
// hash in links. An unknown token is an ENOTFOUND *securetextd.Error.
func (db *DB) linkConversation(ctx context.Context, token string) (*securetextd.Conversation, sql.NullInt64, error) {
	id, ok := linkID(token)
	if !ok {
		return db.tokenConversation(ctx, "links", token)
	}
	var kept []byte
	var conv int64
	err := db.read.QueryRowContext(ctx,
		`SELECT token_hash, conversation_id FROM numbered_links WHERE id = ?`, id).Scan(&kept, &conv)
	hash := hashToken(token)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && subtle.ConstantTimeCompare(kept, hash[:]) != 1) {
		return nil, sql.NullInt64{}, securetextd.Errorf(securetextd.ENOTFOUND, "This link is not valid.")
	}
	if err != nil {
		return nil, sql.NullInt64{}, err
	}
	return db.conversationRow(ctx, conv)
}
