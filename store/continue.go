package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/securetextd/securetextd"
)

// latestConversation returns the conversation that a new message from
// sender to phone continues under Policy.ContinuePerSender: the latest
// conversation between them, unless the sender withdrew it, asked for it
// to be deleted (done, or deferred by a legal hold), or a message of it was
// purged. It returns nil when the message starts a new conversation;
// otherwise the conversation as it stands, which the caller joins without
// reading it again (continueConversation).
//
// Each test reads one row (purgeMessage marks the conversation, not only
// the message), so the cost does not grow with the conversation's length:
// this runs at every commit of every message.
//
// In the write transaction that commits the message, it is the answer:
// write transactions are serialized on both engines (SQLite's one
// writer, PostgreSQL's advisory lock, taken before this query reads under
// READ COMMITTED), so two messages committed at once, on one node or on
// two, cannot both find none and start two conversations. Outside it (q
// the read pool), it is a hint: see continueHint.
func latestConversation(ctx context.Context, q queryer, phone securetextd.Phone, sender string) (*securetextd.Conversation, error) {
	h, err := readLatest(ctx, q, phone, sender)
	if err != nil || !h.open {
		return nil, err
	}
	return h.conversation(), nil
}

// openConversation is the test, on a conversation c, that it takes more
// messages from its sender (latestConversation).
const openConversation = `c.revoked IS NULL
	AND NOT EXISTS (SELECT 1 FROM conversation_deletes d WHERE d.conversation_id = c.id)
	AND c.purged IS NULL`

// latest is the latest conversation between a phone and a sender as one
// read found it: id 0 when there was none.
type latest struct {
	id      int64
	phone   securetextd.Phone
	sender  string
	created int64
	open    bool
}

// conversation returns a fresh Conversation of h, which a commit may
// change: a commit may run twice (updateGrouped).
func (h latest) conversation() *securetextd.Conversation {
	return &securetextd.Conversation{ID: h.id, Phone: h.phone, Sender: h.sender, Created: fromNanos(h.created)}
}

// state is h as continueGuard compares it: the id and whether it is open
// in one number, 0 for none.
func (h latest) state() int64 {
	if h.id == 0 {
		return 0
	}
	s := h.id * 2
	if h.open {
		s++
	}
	return s
}

func readLatest(ctx context.Context, q queryer, phone securetextd.Phone, sender string) (latest, error) {
	h := latest{phone: phone}
	// The phone's conversations come from a subquery, not from "c.phone
	// = ?" beside the ORDER BY: SQLite would weigh the bound phone in
	// planning that, and compile the statement again on every run
	// (TestStatementsStayPrepared).
	err := q.QueryRowContext(along(ctx), `
		SELECT c.id, c.sender, c.created, `+openConversation+`
		FROM conversations c
		WHERE c.id IN (SELECT id FROM conversations WHERE phone = ?) AND lower(c.sender) = ?
		ORDER BY c.id DESC LIMIT 1`,
		phone, normalizeAddress(sender)).Scan(&h.id, &h.sender, &h.created, &h.open)
	if errors.Is(err, sql.ErrNoRows) {
		return latest{phone: phone}, nil
	}
	return h, err
}

// Joining a conversation, read ahead. Reading the latest conversation in
// the write transaction, for each message that joins one (under
// conversations.continue's default, most of them), costs a query while
// the write lock makes every commit wait: on PostgreSQL a round trip, and
// on either engine it runs the statements queued before it, whose rows
// then cannot merge with the next message's (merge.go). So a commit reads
// it before, on the read pool, without the lock (continueHints), and the
// transaction checks, rather than reads, that it is still so: a guard
// statement, queued with the message's rows, that fails (engine.failUnless)
// when the latest conversation between phone and sender, other than
// the one this message starts, is no longer the one read, or no longer as
// open. The check runs where the read would have, in order with the
// commits before it in the group, so it sees what they did.
//
// A failed guard fails runPipelined's batch, and runGroup commits it
// again, each commit in its savepoint, where the commit reads the latest
// conversation in the transaction (group.optimistic is false): a hint
// that went stale costs time, never a second conversation. It goes stale
// when two messages between the same two start a conversation at once.
//
// The read ahead is itself a query for each message, on the server every
// node shares. So a node remembers the conversation that each phone and
// sender last committed to on it (latests), and the next message between
// them takes that as its hint, checked the same way: a hint remembered is
// as safe as one read, and goes stale the same ways (another node, a
// withdrawal), which the check catches.

// continueHints reads ahead the latest conversation for
// each target of m that ContinuePerSender joins to one: nil otherwise.
// The hints are by target's index.
func (db *DB) continueHints(ctx context.Context, m *securetextd.Message, targets []Target) (map[int]latest, error) {
	if !db.Policy.ContinuePerSender || m.Direction == securetextd.Reply {
		return nil, nil
	}
	hints := make(map[int]latest, len(targets))
	for i, t := range targets {
		if t.ConversationID != 0 {
			continue
		}
		if h, ok := db.latests.get(t.Phone, m.Sender); ok {
			hints[i] = h
			continue
		}
		h, err := readLatest(ctx, db.read, t.Phone, m.Sender)
		if err != nil {
			return nil, err
		}
		hints[i] = h
	}
	return hints, nil
}

// rememberLatest records, after a commit with hints, the conversation
// each target without a ConversationID committed to (receipt's, in the
// order of targets), or forgets it when the commit failed (err).
func (db *DB) rememberLatest(hints map[int]latest, sender string, targets []Target, receipt *Receipt, err error) {
	for i, t := range targets {
		if _, ok := hints[i]; !ok {
			continue
		}
		if err != nil || i >= len(receipt.Conversations) {
			db.latests.forget(t.Phone, sender)
			continue
		}
		c := receipt.Conversations[i]
		db.latests.put(latest{id: c.ID, phone: c.Phone, sender: c.Sender, created: nanos(c.Created), open: true})
	}
}

// latestSeen remembers the latest conversation between each phone and
// sender that this node committed to, for continueHints. It is emptied
// when it holds maxLatestSeen: a hint it has lost is read again.
type latestSeen struct {
	mu sync.Mutex
	m  map[latestKey]latest
}

type latestKey struct {
	phone  securetextd.Phone
	sender string // normalized
}

const maxLatestSeen = 10000

func (s *latestSeen) get(phone securetextd.Phone, sender string) (latest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.m[latestKey{phone, normalizeAddress(sender)}]
	return h, ok
}

func (s *latestSeen) put(h latest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || len(s.m) >= maxLatestSeen {
		s.m = make(map[latestKey]latest)
	}
	s.m[latestKey{h.phone, normalizeAddress(h.sender)}] = h
}

func (s *latestSeen) forget(phone securetextd.Phone, sender string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, latestKey{phone, normalizeAddress(sender)})
}

// continueGuard queues the check that the latest conversation between
// phone and sender, but for own (the one this commit starts, or 0), is
// still h.
func (db *DB) continueGuard(ctx context.Context, tx *sql.Tx, h latest, sender string, own int64) error {
	_, err := tx.ExecContext(later(ctx), fmt.Sprintf(db.eng.failUnless, `COALESCE((
			SELECT c.id * 2 + (CASE WHEN `+openConversation+` THEN 1 ELSE 0 END)
			FROM conversations c
			WHERE `+db.eng.ofPhone+` AND lower(c.sender) = ? AND c.id <> ?
			ORDER BY c.id DESC LIMIT 1), 0) = ?`),
		h.phone, normalizeAddress(sender), own, h.state())
	return err
}
