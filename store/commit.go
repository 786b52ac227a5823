package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/securetextd/securetextd"
)

// Receipt tells what Commit or CommitTargets stored.
type Receipt struct {
	MessageID int64
	// Conversations holds the conversation of each phone (or target), in
	// the order they were given, repeats left out.
	Conversations []securetextd.Conversation
}

// manifest is the sealed part of a message row: everything about it that
// could tell a reader something.
type manifest struct {
	Subject    string         `json:"subject"`
	SenderName string         `json:"sender_name,omitempty"`
	MessageID  string         `json:"message_id,omitempty"`
	References []string       `json:"references,omitempty"`
	Parts      []manifestPart `json:"parts"`
}

type manifestPart struct {
	ContentType string `json:"content_type,omitempty"`
	Filename    string `json:"filename,omitempty"`
	ContentID   string `json:"content_id,omitempty"`
	Damaged     bool   `json:"damaged,omitempty"`
}

// Target is where a message goes: a phone number and, for a message that
// answers into an existing conversation (a reply email whose Reply-To
// routes back to it), that conversation.
//
// Phone may be an email address (securetextd.ParseEmail): its link then
// goes by a notice email (JobKindEmail) rather than a text. Fallback, for
// a phone number only, is an email address the notice goes to instead
// when the text fails for good (email.go); the API's fallback_email.
type Target struct {
	Phone          securetextd.Phone
	ConversationID int64 // 0: a new conversation
	Fallback       string
	// Language is the language the sender gave for this recipient; ""
	// takes the message's (Message.Language).
	Language string
}

// Commit stores the message m with the parts written to the draft, and
// makes one conversation for each phone, with a fresh link token and an
// outbox job that will text the link. It is all one transaction: when
// Commit returns nil, the message is durable and its texts will be sent;
// when it fails, nothing of it is visible.
//
// m.Sender is required; m.Received defaults to now and m.Direction to
// Inbound. Commit fills in m.ID, m.Received, m.Direction and m.Parts (with
// their sizes); the parts already in m.Parts are ignored. A phone given
// twice gets one conversation. The outbox is woken once the transaction has
// committed.
//
// Commit is CommitTargets with a new conversation for each phone.
func (d *Draft) Commit(ctx context.Context, m *securetextd.Message, phones []securetextd.Phone) (*Receipt, error) {
	targets := make([]Target, len(phones))
	for i, p := range phones {
		targets[i] = Target{Phone: p}
	}
	return d.CommitTargets(ctx, m, targets)
}

// CommitTargets is Commit with explicit targets. A target with a zero
// ConversationID starts a new conversation, as Commit does. A target with a
// ConversationID joins that conversation: the conversation must exist and
// be between m.Sender and the target's phone, or the commit fails with an
// EINVALID error ("unknown conversation") and stores nothing. Joining
// renews the conversation's last activity, which keeps it open for another
// period, and makes a fresh link token and a text job for it, as for a new
// conversation: the recipient is told that something new is waiting.
//
// A target given twice counts once. Receipt.Conversations holds the
// conversation of each target, in the order given, with its last activity
// as it now is.
//
// With Policy.ContinuePerSender, a target without a ConversationID joins
// the latest conversation between m.Sender and its phone instead, unless
// that one was withdrawn or deleted (latestConversation).
//
// A conversation the sender withdrew takes no more messages (EINVALID); one
// whose access expired is renewed. A message that would pass a limit of
// DB.Policy is refused whole with an ELIMIT error that says when it may go
// (see limits.go). The commit records message.accepted and text.queued in
// the audit trail, in the same transaction.
func (d *Draft) CommitTargets(ctx context.Context, m *securetextd.Message, targets []Target) (*Receipt, error) {
	targets, err := checkTargets(targets)
	if err != nil {
		return nil, err
	}
	receipt := &Receipt{}
	// The conversations to join are read ahead, outside
	// the write lock, and checked in it (continue.go).
	hints, err := d.db.continueHints(ctx, m, targets)
	if err != nil {
		return nil, fmt.Errorf("store: commit: %w", err)
	}
	err = d.commit(ctx, "commit", m, textsOnly(targets), func(ctx context.Context, tx *sql.Tx, message int64, now time.Time) error {
		receipt.MessageID = message
		receipt.Conversations = receipt.Conversations[:0]
		if err := d.db.committing(ctx, tx, d, m, message, targets, now); err != nil {
			return err
		}
		for i, t := range targets {
			var c *securetextd.Conversation
			var err error
			t.Language = cmp.Or(t.Language, m.Language)
			switch {
			case t.ConversationID == 0 && d.db.Policy.ContinuePerSender && m.Direction != securetextd.Reply:
				hint, hinted := hints[i]
				c, err = d.db.continueOrStart(ctx, tx, t, m.Sender, message, now, hint, hinted && d.db.group.optimistic)
			case t.ConversationID == 0:
				c, err = d.db.startConversation(ctx, tx, t, m.Sender, message, now)
			default:
				c, err = d.db.joinConversation(ctx, tx, t, m.Sender, message, now)
			}
			if err != nil {
				return err
			}
			receipt.Conversations = append(receipt.Conversations, *c)
		}
		return nil
	})
	if hints != nil {
		d.db.rememberLatest(hints, m.Sender, targets, receipt, err)
	}
	if err != nil {
		return nil, err
	}
	return receipt, nil
}

// commit stores m with the draft's parts in one transaction, and calls
// link in that same transaction to attach the new message (id message) to
// its conversations and to enqueue the jobs about it. Either all of it is
// committed or nothing is. On success it fills in m, marks the draft
// committed and wakes the outbox. op names the caller in errors.
//
// textsOnly says that link adds no jobs but texts, so that the commit
// wakes the SMS worker and not the mail worker (WakeMail).
func (d *Draft) commit(ctx context.Context, op string, m *securetextd.Message, textsOnly bool, link func(ctx context.Context, tx *sql.Tx, message int64, now time.Time) error) error {
	if err := d.usable(); err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	if d.open != nil {
		return fmt.Errorf("store: %s: part %d is still open", op, d.open.p.index)
	}
	// The parts' pending blobs must all be written, and their ids known.
	if err := d.waitWriter(); err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	if m == nil {
		return fmt.Errorf("store: %s: no message", op)
	}
	if m.Sender == "" {
		return securetextd.Errorf(securetextd.EINVALID, "a message needs a sender address")
	}
	direction := m.Direction
	if direction == 0 {
		direction = securetextd.Inbound
	}
	if direction != securetextd.Inbound && direction != securetextd.Reply {
		return securetextd.Errorf(securetextd.EINVALID, "unknown message direction %d", direction)
	}

	now := fromNanos(nanos(d.db.Now()))
	received := m.Received
	if received.IsZero() {
		received = now
	}
	received = fromNanos(nanos(received))

	parts := make([]securetextd.Part, len(d.parts))
	man := manifest{
		Subject:    m.Subject,
		SenderName: m.SenderName,
		MessageID:  m.MessageID,
		References: m.References,
		Parts:      make([]manifestPart, len(d.parts)),
	}
	var size int64
	for i, p := range d.parts {
		parts[i] = p.part
		size += p.part.Size
		man.Parts[i] = manifestPart{
			ContentType: p.part.ContentType,
			Filename:    p.part.Filename,
			ContentID:   p.part.ContentID,
			Damaged:     p.part.Damaged,
		}
	}
	plain, err := json.Marshal(man)
	if err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	var id int64
	err = d.db.updateGrouped(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// The message's id, reserved in this transaction: its manifest
		// and its parts' file keys are sealed for it (place.go).
		var err error
		if id, err = d.db.nextID(ctx, tx, "messages"); err != nil {
			return err
		}
		// The parts' blobs: commit those written out as pending, create
		// the others (their ids reserved too), each with its header for
		// its place; then write the chunks still queued.
		blobs := make([]int64, len(d.parts))
		for i, p := range d.parts {
			if p.blobID != 0 {
				header, err := newHeader(p.fileKey, d.db.data.recipient.at(partPlace{id, i, p.blobID}))
				if err != nil {
					return fmt.Errorf("part %d: %w", i, err)
				}
				res, err := tx.ExecContext(ctx,
					`UPDATE blobs SET state = 'committed', size = ?, header = ? WHERE id = ? AND state = 'pending'`,
					p.sealed, header, p.blobID)
				if err != nil {
					return err
				}
				if n, err := res.RowsAffected(); err != nil {
					return err
				} else if n != 1 {
					return fmt.Errorf("part %d: its pending blob is gone (swept as an orphan?)", i)
				}
				blobs[i] = p.blobID
				continue
			}
			if blobs[i], err = d.db.nextID(ctx, tx, "blobs"); err != nil {
				return err
			}
			header, err := newHeader(p.fileKey, d.db.data.recipient.at(partPlace{id, i, blobs[i]}))
			if err != nil {
				return fmt.Errorf("part %d: %w", i, err)
			}
			if _, err := tx.ExecContext(later(ctx),
				`INSERT INTO blobs (id, state, chunk_size, size, header, created) VALUES (?, 'committed', ?, ?, ?, ?)`,
				blobs[i], chunkSize, p.sealed, header, nanos(now)); err != nil {
				return err
			}
		}
		for _, c := range d.queue {
			if _, err := tx.ExecContext(later(ctx),
				`INSERT INTO chunks (blob_id, seq, data) VALUES (?, ?, ?)`,
				blobs[c.part.index], c.seq, c.data); err != nil {
				return err
			}
		}

		if _, err := tx.ExecContext(later(ctx), `
			INSERT INTO messages (id, direction, sender, received, auth, size, part_count, manifest)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			id, direction, m.Sender, nanos(received), m.Auth, size, len(parts), d.db.seal(plain, manifestPlace(id))); err != nil {
			return err
		}
		for i, p := range parts {
			if _, err := tx.ExecContext(later(ctx),
				`INSERT INTO parts (message_id, idx, kind, size, blob_id) VALUES (?, ?, ?, ?, ?)`,
				id, i, p.Kind, p.Size, blobs[i]); err != nil {
				return err
			}
		}
		if err := d.auditUnscanned(ctx, tx, id); err != nil {
			return err
		}
		return link(ctx, tx, id, now)
	})
	if err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}

	d.committed = true
	d.queue, d.queued, d.pending = nil, 0, nil
	d.forgetKeys()
	m.ID = id
	m.Direction = direction
	m.Received = received
	m.Parts = parts
	if textsOnly {
		d.db.wakeUpTexts()
	} else {
		d.db.wakeUp()
	}
	return nil
}

// textsOnly reports whether the jobs of a message to targets are all
// texts: no target is an email recipient, whose link goes by a notice
// email (the mail drain, which must then be woken).
func textsOnly(targets []Target) bool {
	for _, t := range targets {
		if t.Phone.IsEmail() {
			return false
		}
	}
	return true
}

// continueOrStart adds message to the latest conversation between
// t.Phone and sender, or to a new one when that is closed or there is
// none (Policy.ContinuePerSender). The latest is read in this
// transaction; or, when hinted, it is hint, read ahead, and a check that
// it still is is queued with the rows (continue.go). Either way the
// conversation is joined without reading it again.
func (db *DB) continueOrStart(ctx context.Context, tx *sql.Tx, t Target, sender string, message int64, now time.Time, hint latest, hinted bool) (*securetextd.Conversation, error) {
	var c *securetextd.Conversation
	switch {
	case hinted && hint.open:
		c = hint.conversation()
	case hinted:
	default:
		var err error
		if c, err = latestConversation(ctx, tx, t.Phone, sender); err != nil {
			return nil, err
		}
	}
	var err error
	if c != nil {
		err = db.continueConversation(ctx, tx, c, t, message, now)
	} else {
		c, err = db.startConversation(ctx, tx, t, sender, message, now)
	}
	if err != nil || !hinted {
		return c, err
	}
	var own int64 // the conversation this message starts
	if !hint.open {
		own = c.ID
	}
	return c, db.continueGuard(ctx, tx, hint, sender, own)
}

// startConversation makes a conversation between t.Phone and sender,
// holding message, with a fresh link and the job that texts (or emails)
// it.
func (db *DB) startConversation(ctx context.Context, tx *sql.Tx, t Target, sender string, message int64, now time.Time) (*securetextd.Conversation, error) {
	phone := t.Phone
	c := &securetextd.Conversation{Phone: phone, Sender: sender, Created: now, LastActivity: now}
	var err error
	if c.ID, err = db.nextID(ctx, tx, "conversations"); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(later(ctx),
		`INSERT INTO conversations (id, phone, sender, created, last_activity) VALUES (?, ?, ?, ?, ?)`,
		c.ID, phone, sender, nanos(now), nanos(now)); err != nil {
		return nil, err
	}
	if err := db.addToConversation(ctx, tx, c, message, t.Fallback, t.Language, now); err != nil {
		return nil, err
	}
	return c, nil
}

// joinConversation adds message, from sender, to the existing conversation
// of t, renews its last activity, and makes a fresh link and the job that
// texts it. A conversation that does not exist, or is not between sender
// and t.Phone, is refused alike: the sender learns nothing of others'.
// One that is closed to new messages is refused as joinable says.
func (db *DB) joinConversation(ctx context.Context, tx *sql.Tx, t Target, sender string, message int64, now time.Time) (*securetextd.Conversation, error) {
	c := &securetextd.Conversation{ID: t.ConversationID}
	var created int64
	var revoked, purged sql.NullInt64
	err := tx.QueryRowContext(along(ctx),
		`SELECT phone, sender, created, revoked, purged FROM conversations WHERE id = ?`, t.ConversationID).
		Scan(&c.Phone, &c.Sender, &created, &revoked, &purged)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (c.Phone != t.Phone || normalizeAddress(c.Sender) != normalizeAddress(sender))) {
		return nil, securetextd.Errorf(securetextd.EINVALID, "unknown conversation")
	}
	if err != nil {
		return nil, err
	}
	if err := joinable(c.ID, revoked.Valid, purged.Valid); err != nil {
		return nil, err
	}
	c.Created = fromNanos(created)
	return c, db.continueConversation(ctx, tx, c, t, message, now)
}

// continueConversation adds message to conversation c, which this
// transaction has read and found open to it (joinConversation, or
// latestConversation for ContinuePerSender): it renews its last activity
// and makes a fresh link and the job that texts it. Every statement is
// queued (later): on PostgreSQL the message joins its conversation
// without a round trip of its own under the write lock, and on both
// engines its rows merge with those of the group's other messages.
//
// The renewal is written only when it moves the last activity by more
// than renewStep, as relatime writes a file's access time: a burst of
// messages to one patient would otherwise rewrite the conversation's row
// and its place in conversations_open once each, a tenth of what a small
// message writes (TestJoinsRenewCoarsely). c.LastActivity is then up to
// renewStep later than what is stored.
func (db *DB) continueConversation(ctx context.Context, tx *sql.Tx, c *securetextd.Conversation, t Target, message int64, now time.Time) error {
	c.LastActivity = now
	if _, err := tx.ExecContext(later(ctx),
		`UPDATE conversations SET last_activity = ?, expired = NULL
		WHERE id = ? AND (last_activity <= ? OR expired IS NOT NULL)`,
		nanos(now), c.ID, nanos(now.Add(-db.renewStep()))); err != nil {
		return err
	}
	return db.addToConversation(ctx, tx, c, message, t.Fallback, t.Language, now)
}

// touchConversation renews the last activity of conversation id, which
// keeps it open for another period. It is an ENOTFOUND error if there is no
// such conversation.
func touchConversation(ctx context.Context, tx *sql.Tx, id int64, now time.Time) error {
	res, err := tx.ExecContext(ctx,
		`UPDATE conversations SET last_activity = ?, expired = NULL WHERE id = ?`, nanos(now), id)
	if err != nil {
		return err
	}
	return mustAffectOne(res, "No such conversation.")
}

// addToConversation links message to conversation c, and makes a fresh
// link token for c with the job that texts it to c.Phone (or emails it,
// for an email recipient), keeping fallback, if any, for the text.
func (db *DB) addToConversation(ctx context.Context, tx *sql.Tx, c *securetextd.Conversation, message int64, fallback, language string, now time.Time) error {
	if _, err := tx.ExecContext(later(ctx),
		`INSERT INTO conversation_messages (conversation_id, message_id) VALUES (?, ?)`,
		c.ID, message); err != nil {
		return err
	}
	token, err := db.newLink(ctx, tx, c.ID, now)
	if err != nil {
		return err
	}
	return db.addLinkJob(ctx, tx, c, c.Sender, c.Phone, message, token, fallback, language, now)
}

// checkTargets returns targets without repeats, or an EINVALID error if
// there are none, a phone is not in E.164 form (nor an email address in
// ParseEmail's form), a fallback is not an email address or not for a
// phone, or a conversation id is negative.
func checkTargets(targets []Target) ([]Target, error) {
	if len(targets) == 0 {
		return nil, securetextd.Errorf(securetextd.EINVALID, "a message needs at least one phone number")
	}
	out := make([]Target, 0, len(targets))
	seen := make(map[Target]bool, len(targets))
	for _, t := range targets {
		if !validRecipient(t.Phone) {
			return nil, securetextd.Errorf(securetextd.EINVALID, "%q is not a phone number in E.164 form, nor an email address in lowercase", t.Phone)
		}
		if err := checkFallback(t); err != nil {
			return nil, err
		}
		if t.ConversationID < 0 {
			return nil, securetextd.Errorf(securetextd.EINVALID, "unknown conversation")
		}
		// A recipient named twice counts once, with the first fallback.
		if key := (Target{Phone: t.Phone, ConversationID: t.ConversationID}); !seen[key] {
			seen[key] = true
			out = append(out, t)
		}
	}
	return out, nil
}

// isE164 reports whether s looks like "+" and 7 to 15 digits, the first not
// zero. Whether the number exists is the parser's business.
func isE164(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Token sizes. A link token is typed from a text message on a phone, or
// more often tapped, and opens only the page that asks for a password: 128
// random bits, after its row's id (newLink). Session and reset tokens
// stand in for the password itself: 256.
const (
	linkTokenBytes    = 16
	sessionTokenBytes = 32
	resetTokenBytes   = 32
)

// newToken returns a fresh token of n random bytes, base64url without
// padding (22 characters for 16 bytes, 43 for 32).
func newToken(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails; crashes the program if the system RNG does
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is the form a token is kept in. Looking up the hash of a guess
// through an index tells a timing attacker nothing about the stored tokens.
func hashToken(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }
