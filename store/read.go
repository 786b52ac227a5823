package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"filippo.io/age"

	"github.com/securetextd/securetextd"
)

// ConversationByToken returns the conversation that a link token opens. An
// unknown or garbled token gets an ENOTFOUND error, all alike; the token of
// a conversation whose access has ended gets an EEXPIRED or EREVOKED error
// (see DB.Policy), so that the recipient can be told which in plain words.
//
// Only the token's SHA-256 is stored, and the lookup is by that hash: the
// time it takes says nothing about how close a guess came.
func (db *DB) ConversationByToken(ctx context.Context, token string) (*securetextd.Conversation, error) {
	c, revoked, err := db.linkConversation(ctx, token)
	if err != nil {
		return nil, fmt.Errorf("store: conversation by token: %w", err)
	}
	if err := db.access(nanos(c.LastActivity), revoked, db.Now()); err != nil {
		return nil, db.deletedOr(ctx, c.ID, err)
	}
	return c, nil
}

// tokenConversation finds the conversation a token of table (links or
// revoke_tokens, never input) points to, by the token's hash, and when it
// was withdrawn. An unknown token is an ENOTFOUND *securetextd.Error.
func (db *DB) tokenConversation(ctx context.Context, table, token string) (*securetextd.Conversation, sql.NullInt64, error) {
	hash := hashToken(token)
	c := &securetextd.Conversation{}
	var created, active int64
	var revoked sql.NullInt64
	err := db.read.QueryRowContext(ctx, `
		SELECT c.id, c.phone, c.sender, c.created, c.last_activity, c.revoked
		FROM conversations c
		WHERE c.id = (SELECT conversation_id FROM `+table+` WHERE token_hash = ?)`, hash[:]).Scan(&c.ID, &c.Phone, &c.Sender, &created, &active, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, revoked, securetextd.Errorf(securetextd.ENOTFOUND, "This link is not valid.")
	}
	if err != nil {
		return nil, revoked, err
	}
	c.Created, c.LastActivity = fromNanos(created), fromNanos(active)
	return c, revoked, nil
}

// Conversation returns conversation id. It is an ENOTFOUND error if there
// is no such conversation.
func (db *DB) Conversation(ctx context.Context, id int64) (*securetextd.Conversation, error) {
	c, _, err := db.conversationRow(ctx, id)
	return c, err
}

// conversationRow reads conversation id's row: the conversation, and when
// it was withdrawn. It is an ENOTFOUND error if there is no such
// conversation.
func (db *DB) conversationRow(ctx context.Context, id int64) (*securetextd.Conversation, sql.NullInt64, error) {
	c := &securetextd.Conversation{ID: id}
	var created, active int64
	var revoked sql.NullInt64
	err := db.read.QueryRowContext(ctx,
		`SELECT phone, sender, created, last_activity, revoked FROM conversations WHERE id = ?`,
		id).Scan(&c.Phone, &c.Sender, &created, &active, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, revoked, securetextd.Errorf(securetextd.ENOTFOUND, "No such conversation.")
	}
	if err != nil {
		return nil, revoked, fmt.Errorf("store: conversation %d: %w", id, err)
	}
	c.Created, c.LastActivity = fromNanos(created), fromNanos(active)
	return c, revoked, nil
}

// Inbox returns every conversation of phone, the one with the most recent
// activity first, each with its number of messages and its latest message
// (the newest received; manifest opened, content left to OpenPart). A
// phone without conversations has an empty inbox, not an error.
//
// Conversations whose access has ended, expired or withdrawn (see
// DB.Policy), are left out.
func (db *DB) Inbox(ctx context.Context, phone securetextd.Phone) ([]securetextd.InboxEntry, error) {
	var entries []securetextd.InboxEntry
	err := db.view(ctx, func(tx *sql.Tx) error {
		// The latest message of conversation c, in the order that
		// ConversationMessages lists them (received, then id).
		const latest = `(SELECT m.id FROM conversation_messages cm JOIN messages m ON m.id = cm.message_id
			WHERE cm.conversation_id = c.id ORDER BY m.received DESC, m.id DESC LIMIT 1)`
		rows, err := tx.QueryContext(ctx, `
			SELECT c.id, c.sender, c.created, c.last_activity,
				(SELECT count(*) FROM conversation_messages cm WHERE cm.conversation_id = c.id),
				`+latest+`,
				coalesce((SELECT s.seen FROM conversation_seen s WHERE s.conversation_id = c.id AND s.phone = c.phone), 0)
			FROM conversations c
			WHERE c.id IN (SELECT id FROM conversations WHERE phone = ?) AND c.revoked IS NULL AND c.last_activity > ?
			ORDER BY c.last_activity DESC, c.id DESC LIMIT `+strconv.Itoa(maxInbox), phone, db.openCutoff(db.Now()))
		if err != nil {
			return err
		}
		defer rows.Close()
		var latestIDs []sql.NullInt64
		for rows.Next() {
			e := securetextd.InboxEntry{Conversation: securetextd.Conversation{Phone: phone}}
			var created, active, seen int64
			var id sql.NullInt64
			if err := rows.Scan(&e.Conversation.ID, &e.Conversation.Sender, &created, &active, &e.Messages, &id, &seen); err != nil {
				return err
			}
			e.Conversation.Created, e.Conversation.LastActivity = fromNanos(created), fromNanos(active)
			if seen != 0 {
				e.LastSeen = fromNanos(seen)
			}
			entries = append(entries, e)
			latestIDs = append(latestIDs, id)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(entries) == 0 {
			return nil
		}
		// All the latest messages in one go, in the same snapshot: only
		// those of the conversations listed, whose manifests are opened.
		ids := make([]string, 0, len(latestIDs))
		for _, id := range latestIDs {
			if id.Valid {
				ids = append(ids, strconv.FormatInt(id.Int64, 10))
			}
		}
		if len(ids) == 0 {
			return nil
		}
		msgs, err := db.loadMessages(ctx, tx, `m.id IN (`+strings.Join(ids, ",")+`)`)
		if err != nil {
			return err
		}
		byID := make(map[int64]*securetextd.Message, len(msgs))
		for _, m := range msgs {
			byID[m.ID] = m
		}
		for i, id := range latestIDs {
			if id.Valid {
				entries[i].Latest = byID[id.Int64]
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap("inbox "+phone.Masked(), err)
	}
	return entries, nil
}

// Message returns message id with its manifest opened: subject, names,
// and each part's description. Content is read with OpenPart.
func (db *DB) Message(ctx context.Context, id int64) (*securetextd.Message, error) {
	var msgs []*securetextd.Message
	err := db.view(ctx, func(tx *sql.Tx) error {
		var err error
		msgs, err = db.loadMessages(ctx, tx, `m.id = ?`, id)
		return err
	})
	if err != nil {
		return nil, wrap("read message", err) // "store: read message: message 12 manifest: …"
	}
	if len(msgs) == 0 {
		return nil, securetextd.Errorf(securetextd.ENOTFOUND, "No such message.")
	}
	return msgs[0], nil
}

// ConversationMessages returns the messages of a conversation, oldest
// first, with their manifests opened.
func (db *DB) ConversationMessages(ctx context.Context, conversationID int64) ([]*securetextd.Message, error) {
	var msgs []*securetextd.Message
	err := db.view(ctx, func(tx *sql.Tx) error {
		var err error
		msgs, err = db.loadMessages(ctx, tx,
			`m.id IN (SELECT message_id FROM conversation_messages WHERE conversation_id = ?)`, conversationID)
		if err != nil || len(msgs) > 0 {
			return err
		}
		// No messages: an unknown conversation is an error, an empty one
		// (never seen in practice) is not. Asked only then, since the
		// portal reads a conversation's messages on every page.
		var exists bool
		if err := tx.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM conversations WHERE id = ?)`, conversationID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return securetextd.Errorf(securetextd.ENOTFOUND, "No such conversation.")
		}
		return nil
	})
	if err != nil {
		return nil, wrap(fmt.Sprintf("conversation %d messages", conversationID), err)
	}
	return msgs, nil
}

// ConversationMessage returns message id, opened, if it is one of
// conversation conv's: what a mail about one message needs (the notice,
// a read receipt), without opening the manifest of every message of a
// conversation that may hold thousands. It is an ENOTFOUND error if the
// message is not one of the conversation's.
func (db *DB) ConversationMessage(ctx context.Context, conv, id int64) (*securetextd.Message, error) {
	var msg *securetextd.Message
	err := db.view(ctx, func(tx *sql.Tx) error {
		var err error
		msg, err = db.conversationMessage(ctx, tx, conv, id)
		return err
	})
	if err != nil {
		return nil, wrap(fmt.Sprintf("conversation %d message %d", conv, id), err)
	}
	return msg, nil
}

// conversationMessage is ConversationMessage in tx. The membership is one
// lookup in conversation_messages' key: "m.id IN (SELECT … WHERE
// conversation_id = ?)" would list the whole conversation first, and a
// correlated EXISTS is planned as a join (TestStatementsStayPrepared).
func (db *DB) conversationMessage(ctx context.Context, tx *sql.Tx, conv, id int64) (*securetextd.Message, error) {
	msgs, err := db.loadMessages(ctx, tx,
		`m.id = (SELECT message_id FROM conversation_messages WHERE conversation_id = ? AND message_id = ?)`, conv, id)
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, securetextd.Errorf(securetextd.ENOTFOUND, "No such message in this conversation.")
	}
	return msgs[0], nil
}

// MessageInConversation is ConversationMessage with the conversation's
// latest inbound message before it in ConversationMessages's order
// (received, then id), or nil when there is none: the message a reply
// answers, for the mail that carries the reply. Finding it reads the
// conversation's list of messages, so the mails that need only the
// message ask ConversationMessage.
func (db *DB) MessageInConversation(ctx context.Context, conv, id int64) (msg, before *securetextd.Message, err error) {
	err = db.view(ctx, func(tx *sql.Tx) error {
		msg, err = db.conversationMessage(ctx, tx, conv, id)
		if err != nil {
			return err
		}
		prev, err := db.loadMessages(ctx, tx, `m.id = (
			SELECT p.id FROM messages p
			WHERE p.id IN (SELECT message_id FROM conversation_messages WHERE conversation_id = ?)
				AND p.direction = `+inbound+`
				AND (p.received, p.id) < (SELECT received, id FROM messages WHERE id = ?)
			ORDER BY p.received DESC, p.id DESC LIMIT 1)`, conv, id)
		if len(prev) > 0 {
			before = prev[0]
		}
		return err
	})
	if err != nil {
		return nil, nil, wrap(fmt.Sprintf("conversation %d message %d", conv, id), err)
	}
	return msg, before, nil
}

// inbound is securetextd.Inbound as SQL text. A statement that compares a
// direction writes it in, rather than binding it: on SQLite a bound value
// the planner weighs outside an index lookup makes the statement compiled
// anew on every run (TestStatementsStayPrepared), and so do a join's
// inner loop and an ORDER BY beside "col = ?", which is why the queries
// here look rows up through subqueries.
var inbound = strconv.Itoa(int(securetextd.Inbound))

// loadMessages returns the messages that match where (a condition on the
// messages table, aliased m), oldest first, with their parts, manifests
// opened.
func (db *DB) loadMessages(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]*securetextd.Message, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT m.id, m.direction, m.sender, m.received, m.auth, m.part_count, m.manifest
		FROM messages m WHERE `+where+`
		ORDER BY m.received, m.id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var msgs []*securetextd.Message
	byID := make(map[int64]*securetextd.Message)
	sealed := make(map[int64][]byte)
	for rows.Next() {
		m := &securetextd.Message{}
		var received int64
		var count int
		var man []byte
		if err := rows.Scan(&m.ID, &m.Direction, &m.Sender, &received, &m.Auth, &count, &man); err != nil {
			return nil, err
		}
		m.Received = fromNanos(received)
		m.Parts = make([]securetextd.Part, 0, count)
		msgs = append(msgs, m)
		byID[m.ID] = m
		sealed[m.ID] = man
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, nil
	}

	rows, err = tx.QueryContext(ctx, `
		SELECT p.message_id, p.kind, p.size
		FROM parts p
		WHERE p.message_id IN (SELECT m.id FROM messages m WHERE `+where+`)
		ORDER BY p.message_id, p.idx`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var p securetextd.Part
		if err := rows.Scan(&id, &p.Kind, &p.Size); err != nil {
			return nil, err
		}
		if m := byID[id]; m != nil {
			m.Parts = append(m.Parts, p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}

	for _, m := range msgs {
		if err := db.openManifest(m, sealed[m.ID]); err != nil {
			return nil, fmt.Errorf("message %d manifest: %w", m.ID, err)
		}
	}
	return msgs, nil
}

// openManifest decrypts a message's manifest into m, whose parts are
// already read from the parts table.
func (db *DB) openManifest(m *securetextd.Message, sealed []byte) error {
	if len(sealed) == 0 {
		// Purged (retention.go): the content is gone, the row stays.
		m.Parts = m.Parts[:0]
		return nil
	}
	plain, err := db.open(sealed, manifestPlace(m.ID))
	if err != nil {
		return err
	}
	var man manifest
	if err := json.Unmarshal(plain, &man); err != nil {
		return err
	}
	if len(man.Parts) != len(m.Parts) {
		return fmt.Errorf("manifest describes %d parts, the database holds %d", len(man.Parts), len(m.Parts))
	}
	m.Subject = man.Subject
	m.SenderName = man.SenderName
	m.MessageID = man.MessageID
	m.References = man.References
	for i, p := range man.Parts {
		m.Parts[i].ContentType = p.ContentType
		m.Parts[i].Filename = p.Filename
		m.Parts[i].ContentID = p.ContentID
		m.Parts[i].Damaged = p.Damaged
	}
	return nil
}

// OpenPart returns the content of part index of message messageID, as an
// io.ReaderAt over the plaintext, and the plaintext size. Reading a range
// fetches and decrypts only the chunks it touches, which is what an HTTP
// Range request needs; wrap it in an io.SectionReader for an io.ReadSeeker.
// Content is authenticated as it is read: a tampered chunk is an error,
// never wrong bytes.
//
// The ReaderAt reads the database with ctx, and fails once ctx is done.
func (db *DB) OpenPart(ctx context.Context, messageID int64, index int) (io.ReaderAt, int64, error) {
	r := &chunkReader{ctx: ctx, db: db.read}
	// A scalar subquery, not a join: on SQLite a join plans its inner
	// loop with the outer loop's bound terms, and a statement so planned
	// is compiled anew on every run (TestStatementsStayPrepared).
	//
	// A blob that fits in its first chunk row, as a message's text does,
	// comes with that row, which every reader reads first: one query for
	// the page that shows it, not two.
	var first []byte
	err := db.read.QueryRowContext(ctx, `
		SELECT b.id, b.chunk_size, b.size, b.header, b.payload_start,
			CASE WHEN b.size <= b.chunk_size THEN (SELECT data FROM chunks WHERE blob_id = b.id AND seq = 0) END
		FROM blobs b
		WHERE b.id = (SELECT blob_id FROM parts WHERE message_id = ? AND idx = ?) AND b.state = 'committed'`,
		messageID, index).Scan(&r.blob, &r.chunkSize, &r.size, &r.header, &r.start, &first)
	if first != nil {
		r.seq, r.data = 0, first
	}
	// The age file: the blob's header, then its content from
	// payload_start (written by the commit, datakey.go, or by rekey). A
	// blob sealed before migration 0006 may hold its header in the
	// chunks, with no header of its own: that part opens as unbound.
	r.size += int64(len(r.header)) - r.start
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, securetextd.Errorf(securetextd.ENOTFOUND, "No such file.")
	}
	if err != nil {
		return nil, 0, fmt.Errorf("store: open part %d of message %d: %w", index, messageID, err)
	}
	// The part's file key is wrapped by a data key for its place
	// (datakey.go): found in another, the part does not open.
	place := partPlace{messageID, index, r.blob}
	id := db.data.part(place)
	if len(r.header) > 0 && oneChunk(r.size-int64(len(r.header))) {
		plain, err := openOneChunk(r, &db.fileKeys, place, id) // onechunk.go
		if err != nil {
			return nil, 0, fmt.Errorf("store: open part %d of message %d: %w", index, messageID, err)
		}
		return plain, plain.Size(), nil
	}
	plain, size, err := age.DecryptReaderAt(r, r.size, id)
	if err != nil {
		return nil, 0, fmt.Errorf("store: open part %d of message %d: %w", index, messageID, err)
	}
	return plain, size, nil
}

// CountMessages returns how many messages are stored, for reports and tests.
func (db *DB) CountMessages(ctx context.Context) (int, error) {
	return db.count(ctx, "messages")
}

// CountConversations returns how many conversations exist.
func (db *DB) CountConversations(ctx context.Context) (int, error) {
	return db.count(ctx, "conversations")
}

// count counts the rows of one of the tables named above (never input).
func (db *DB) count(ctx context.Context, table string) (int, error) {
	var n int
	if err := db.read.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count %s: %w", table, err)
	}
	return n, nil
}
