package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
)

// API keys let an integrator's software send as one sender account through
// the REST API. A key is "stx_" and 32 random bytes in base64url; the store
// keeps its SHA-256 and its first characters (the prefix, to tell keys
// apart in a listing), never the key: a stolen database sends nothing.

const (
	apiKeyBytes = 32
	// apiKeyShown is how many characters of a key its prefix keeps:
	// "stx_" and 8 more, 48 bits, enough to tell keys apart and far too
	// few to guess the rest.
	apiKeyShown = len(securetextd.APIKeyPrefix) + 8
	// lastUsedEvery bounds how often a key's last use is written: a busy
	// integration must not turn every request into a write.
	lastUsedEvery = time.Minute
	// IdempotencyWindow is how long a request's Idempotency-Key is
	// remembered. A retry after that is a new request.
	IdempotencyWindow = 24 * time.Hour
)

// CreateAPIKey makes a key for sender's account and returns it; it is shown
// this once and cannot be read back. name is a note for operators. It is
// an ENOTFOUND error if there is no such sender.
func (db *DB) CreateAPIKey(ctx context.Context, sender, name string) (string, *securetextd.APIKey, error) {
	return db.createAPIKey(ctx, sender, name, false)
}

// CreateAdminKey makes an admin key, answerable to sender's account: it
// places and removes legal holds through the API, and cannot send. As
// CreateAPIKey otherwise.
func (db *DB) CreateAdminKey(ctx context.Context, sender, name string) (string, *securetextd.APIKey, error) {
	return db.createAPIKey(ctx, sender, name, true)
}

func (db *DB) createAPIKey(ctx context.Context, sender, name string, admin bool) (string, *securetextd.APIKey, error) {
	sender = normalizeAddress(sender)
	token := securetextd.APIKeyPrefix + newToken(apiKeyBytes)
	hash := sha256.Sum256([]byte(token))
	k := &securetextd.APIKey{Prefix: token[:apiKeyShown], Sender: sender, Name: strings.TrimSpace(name), Admin: admin}
	err := db.update(ctx, func(tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM senders WHERE address = ?)`, sender).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return securetextd.Errorf(securetextd.ENOTFOUND, "No sender %s: create it with `securetextd user add` first.", sender)
		}
		now := db.Now()
		k.Created = fromNanos(nanos(now))
		var err error
		if k.ID, err = db.nextID(ctx, tx, "api_keys"); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO api_keys (id, key_hash, prefix, sender, name, created, admin) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			k.ID, hash[:], k.Prefix, sender, k.Name, nanos(now), flag(admin))
		return err
	})
	if err != nil {
		return "", nil, wrap("create api key", err)
	}
	return token, k, nil
}

// ListAPIKeys returns the API keys of sender, or of every sender when
// sender is "", revoked ones included, oldest first.
func (db *DB) ListAPIKeys(ctx context.Context, sender string) ([]securetextd.APIKey, error) {
	var keys []securetextd.APIKey
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			SELECT id, prefix, sender, name, created, last_used, revoked, admin FROM api_keys
			WHERE ? = '' OR sender = ? ORDER BY id`, normalizeAddress(sender), normalizeAddress(sender))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			k, err := scanAPIKey(rows)
			if err != nil {
				return err
			}
			keys = append(keys, *k)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: list api keys: %w", err)
	}
	return keys, nil
}

// flag is a boolean as the schema keeps it: 1 or 0.
func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

func scanAPIKey(row interface{ Scan(...any) error }) (*securetextd.APIKey, error) {
	k := &securetextd.APIKey{}
	var created int64
	var lastUsed, revoked sql.NullInt64
	if err := row.Scan(&k.ID, &k.Prefix, &k.Sender, &k.Name, &created, &lastUsed, &revoked, &k.Admin); err != nil {
		return nil, err
	}
	k.Created = fromNanos(created)
	if lastUsed.Valid {
		k.LastUsed = fromNanos(lastUsed.Int64)
	}
	if revoked.Valid {
		k.Revoked = fromNanos(revoked.Int64)
	}
	return k, nil
}

// RevokeAPIKey revokes key id at once: the next request with it is
// refused. The row stays, for the record. It is an ENOTFOUND error if there
// is no such key, and no error if it was revoked already.
func (db *DB) RevokeAPIKey(ctx context.Context, id int64) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE api_keys SET revoked = coalesce(revoked, ?) WHERE id = ?`, nanos(db.Now()), id)
		if err != nil {
			return err
		}
		return mustAffectOne(res, "No API key %d.", id)
	})
	return wrap(fmt.Sprintf("revoke api key %d", id), err)
}

// RevokeSenderAPIKeys revokes every live key of sender and returns how
// many it revoked.
func (db *DB) RevokeSenderAPIKeys(ctx context.Context, sender string) (int, error) {
	var n int64
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE api_keys SET revoked = ? WHERE sender = ? AND revoked IS NULL`,
			nanos(db.Now()), normalizeAddress(sender))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: revoke api keys of %s: %w", sender, err)
	}
	return int(n), nil
}

// AuthenticateAPIKey returns the live key that token is. An unknown,
// malformed or revoked key, and the key of a deleted sender, all get the
// same EUNAUTHORIZED error. The lookup is by the token's hash, so its time
// says nothing about how close a guess came.
func (db *DB) AuthenticateAPIKey(ctx context.Context, token string) (*securetextd.APIKey, error) {
	refused := securetextd.Errorf(securetextd.EUNAUTHORIZED, "This API key is not valid: it is unknown or was revoked.")
	if !strings.HasPrefix(token, securetextd.APIKeyPrefix) || len(token) > 100 {
		return nil, refused
	}
	hash := sha256.Sum256([]byte(token))
	k, err := scanAPIKey(db.read.QueryRowContext(ctx, `
		SELECT id, prefix, sender, name, created, last_used, revoked, admin FROM api_keys
		WHERE key_hash = ?`, hash[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, refused
	}
	if err != nil {
		return nil, fmt.Errorf("store: authenticate api key: %w", err)
	}
	if !k.Revoked.IsZero() {
		return nil, refused
	}
	if now := db.Now(); now.Sub(k.LastUsed) >= lastUsedEvery {
		err := db.update(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE api_keys SET last_used = ? WHERE id = ?`, nanos(now), k.ID)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("store: authenticate api key: %w", err)
		}
		k.LastUsed = fromNanos(nanos(now))
	}
	return k, nil
}

// Idempotency makes a commit safe to retry: the first commit with Key
// (per sender) stores Response's answer with the message, in the same
// transaction; a later one within IdempotencyWindow commits nothing and
// gets that answer back (see CommitAPI).
type Idempotency struct {
	// Key is the client's Idempotency-Key header; it is kept as a hash.
	Key string
	// Fingerprint is a hash of what the request asks for, so that the same
	// key sent with another request can be told apart. The store keeps
	// only an HMAC of it (fingerprint.go).
	Fingerprint [32]byte
	// Response renders the answer to keep, from the receipt of the commit
	// it is part of.
	Response func(*Receipt) (status int, body []byte, err error)
}

// IdempotentResponse returns the answer kept for sender's Idempotency-Key
// key, or an ENOTFOUND error when there is none within IdempotencyWindow.
func (db *DB) IdempotentResponse(ctx context.Context, sender, key string) (*IdempotentRecord, error) {
	rec, err := db.lookupIdempotency(ctx, db.read, normalizeAddress(sender), key, db.Now())
	if err != nil {
		return nil, wrap("idempotent response", err)
	}
	if rec == nil {
		return nil, securetextd.Errorf(securetextd.ENOTFOUND, "No such request.")
	}
	return rec, nil
}

// CommitAPI is Commit for a message from the REST API, with an optional
// Idempotency-Key. Without one (idem nil) it is Commit. With one, the
// message, its conversations and texts, and the answer idem.Response
// renders are committed in one transaction, unless an answer is already
// kept for the key (a retry, or a request that raced this one): then
// nothing is committed, the draft stays uncommitted (Discard it), and the
// kept record is returned instead of a receipt. Whether its fingerprint
// matches is the caller's to judge.
func (d *Draft) CommitAPI(ctx context.Context, m *securetextd.Message, phones []securetextd.Phone, idem *Idempotency) (*Receipt, *IdempotentRecord, error) {
	targets := make([]Target, len(phones))
	for i, p := range phones {
		targets[i] = Target{Phone: p}
	}
	return d.CommitAPITargets(ctx, m, targets, idem)
}

// CommitAPITargets is CommitAPI with targets: each starts a new
// conversation, and a phone's may name a Fallback address.
func (d *Draft) CommitAPITargets(ctx context.Context, m *securetextd.Message, targets []Target, idem *Idempotency) (*Receipt, *IdempotentRecord, error) {
	targets, err := checkTargets(targets)
	if err != nil {
		return nil, nil, err
	}
	var kept *IdempotentRecord
	errKept := errors.New("idempotency key already used")
	receipt := &Receipt{}
	err = d.commit(ctx, "commit api message", m, textsOnly(targets), func(ctx context.Context, tx *sql.Tx, message int64, now time.Time) error {
		kept = nil // link may run again (updateGrouped)
		sender := normalizeAddress(m.Sender)
		if idem != nil {
			rec, err := d.db.lookupIdempotency(ctx, tx, sender, idem.Key, now)
			if err != nil {
				return err
			}
			if rec != nil {
				kept = rec
				return errKept
			}
		}
		// The same limits, read-receipt request and audit as mail
		// (lifecycle.go).
		if err := d.db.committing(ctx, tx, d, m, message, targets, now); err != nil {
			return err
		}
		receipt.MessageID = message
		receipt.Conversations = receipt.Conversations[:0]
		for _, t := range targets {
			t.Language = cmp.Or(t.Language, m.Language)
			c, err := d.db.startConversation(ctx, tx, t, m.Sender, message, now)
			if err != nil {
				return err
			}
			receipt.Conversations = append(receipt.Conversations, *c)
		}
		if idem == nil {
			return nil
		}
		status, body, err := idem.Response(receipt)
		if err != nil {
			return err
		}
		return d.db.keepIdempotency(ctx, tx, sender, idem, status, body, now)
	})
	if kept != nil {
		return nil, kept, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return receipt, nil, nil
}

// MessageReport returns what sender may know of message id: each
// recipient's conversation, the state of its text, and what happened in
// the conversation since (replies). A message that does not exist, or was
// not sent by sender, gets the same ENOTFOUND error.
func (db *DB) MessageReport(ctx context.Context, sender string, id int64) (*securetextd.MessageReport, error) {
	rep := &securetextd.MessageReport{MessageID: id}
	err := db.view(ctx, func(tx *sql.Tx) error {
		var received int64
		var direction securetextd.Direction
		err := tx.QueryRowContext(ctx,
			`SELECT sender, received, direction FROM messages WHERE id = ?`, id).Scan(&rep.Sender, &received, &direction)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && (direction != securetextd.Inbound || normalizeAddress(rep.Sender) != normalizeAddress(sender))) {
			return securetextd.Errorf(securetextd.ENOTFOUND, "No such message.")
		}
		if err != nil {
			return err
		}
		rep.Received = fromNanos(received)

		rows, err := tx.QueryContext(ctx, `
			SELECT c.id, c.phone FROM conversation_messages cm JOIN conversations c ON c.id = cm.conversation_id
			WHERE cm.message_id = ? ORDER BY c.id`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r securetextd.RecipientReport
			if err := rows.Scan(&r.ConversationID, &r.Phone); err != nil {
				return err
			}
			rep.Recipients = append(rep.Recipients, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range rep.Recipients {
			r := &rep.Recipients[i]
			// The latest text about this message in this conversation
			// (0003_lifecycle.sql), and its outbox job's attempts.
			var state, jobState sql.NullString
			var updated int64
			var attempts sql.NullInt64
			err := tx.QueryRowContext(ctx, `
				SELECT t.state, t.updated, j.state, j.attempts FROM texts t LEFT JOIN jobs j ON j.id = t.job_id
				WHERE t.message_id = ? AND t.conversation_id = ? ORDER BY t.job_id DESC LIMIT 1`,
				id, r.ConversationID).Scan(&state, &updated, &jobState, &attempts)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				r.State = securetextd.DeliveryUnknown
			case err != nil:
				return err
			default:
				r.Attempts = int(attempts.Int64)
				r.State = deliveryState(state.String, jobState.String, r.Attempts)
				r.Updated = fromNanos(updated)
			}
			events, err := db.accessEvents(ctx, tx, r.ConversationID, received)
			if err != nil {
				return err
			}
			r.Events = events
		}
		return nil
	})
	if err != nil {
		return nil, wrap(fmt.Sprintf("message report %d", id), err)
	}
	return rep, nil
}

// deliveryState names a text's state for the sender, from its row in
// texts and the state and attempts of its outbox job.
func deliveryState(text, job string, attempts int) string {
	switch {
	case text == "delivered":
		return securetextd.DeliveryDelivered
	case text == "texted" || job == JobDone:
		return securetextd.DeliverySent
	case text == "failed" || job == JobFailed:
		return securetextd.DeliveryFailed
	case attempts > 0:
		return securetextd.DeliveryRetrying
	}
	return securetextd.DeliveryQueued
}

// accessEventsQuery reads accessEvents' rows; its "!= 0" term repeats the
// condition of the partial index audit_conversation, so that SQLite's
// planner may use it (TestAuditQueriesUseIndexes).
const accessEventsQuery = `
	SELECT event, time FROM audit
	WHERE conversation_id = ? AND conversation_id != 0 AND time >= ?
	ORDER BY seq`

// accessEvents lists what the audit trail recorded in a conversation
// since the message was received (link opened, login, views, downloads,
// replies, expiry, revocation), by time: when and what, never from where.
func (db *DB) accessEvents(ctx context.Context, tx *sql.Tx, conversation, since int64) ([]securetextd.AccessEvent, error) {
	rows, err := tx.QueryContext(ctx, accessEventsQuery, conversation, since)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var events []securetextd.AccessEvent
	for rows.Next() {
		var e securetextd.AccessEvent
		var at int64
		if err := rows.Scan(&e.Type, &at); err != nil {
			return nil, err
		}
		e.At = fromNanos(at)
		events = append(events, e)
	}
	return events, rows.Err()
}
