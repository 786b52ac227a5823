package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"time"

	"github.com/securetextd/securetextd"
)

// SaveReply stores a reply that the recipient wrote on the portal in
// conversation conversationID, and enqueues the email that takes it back
// to the sender. parts yields each part of the reply (its text, then any
// files) with a reader of its content; the content is sealed as it is
// read, through a Draft, so that a large photo never sits in memory.
//
// Then one transaction commits the message (Direction Reply, Sender the
// conversation's phone number, Auth "portal", and a fresh Message-ID
// "<random>@MessageIDHost", kept without its angle brackets as every
// Message-ID is), links it to the conversation, renews the conversation's
// last activity, and adds a securetextd.JobKindReply job with a MailJob
// holding MessageID and ConversationID. It returns the message as stored.
//
// If a reader fails (an *http.MaxBytesError when the reply is over its
// limit, a dropped connection), nothing is stored, and the error is
// returned wrapped: errors.As finds it. A reply needs at least one part
// (EINVALID otherwise); an unknown conversation is an ENOTFOUND error,
// found before any part is read. A conversation that expired or was
// withdrawn takes no reply (EEXPIRED, EREVOKED), checked in the commit.
//
//	m, err := db.SaveReply(ctx, c.ID, func(yield func(securetextd.Part, io.Reader) bool) {
//		if !yield(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, strings.NewReader(text)) {
//			return
//		}
//		… one yield per uploaded file …
//	})
func (db *DB) SaveReply(ctx context.Context, conversationID int64, parts iter.Seq2[securetextd.Part, io.Reader]) (*securetextd.Message, error) {
	// Fail before reading what may be a long upload. The commit checks
	// again: the conversation may be deleted in between.
	c, err := db.Conversation(ctx, conversationID)
	if err != nil {
		return nil, err
	}

	d := db.NewDraft()
	defer d.Discard() // deletes what was written out, unless committed
	n := 0
	for p, r := range parts {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("store: save reply: %w", err)
		}
		w, err := d.CreatePart(p)
		if err != nil {
			return nil, wrap("save reply", err)
		}
		if _, err := io.Copy(w, r); err != nil {
			return nil, fmt.Errorf("store: save reply: part %d: %w", n, err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("store: save reply: %w", err)
		}
		n++
	}
	if n == 0 {
		return nil, securetextd.Errorf(securetextd.EINVALID, "A reply needs a message or a file.")
	}

	m := &securetextd.Message{
		Direction: securetextd.Reply,
		Sender:    string(c.Phone),
		MessageID: db.newMessageID(),
		Auth:      "portal",
	}
	err = d.commit(ctx, "save reply", m, false, func(ctx context.Context, tx *sql.Tx, message int64, now time.Time) error {
		if err := db.replying(ctx, tx, conversationID, c.Phone, message, now); err != nil {
			return err
		}
		if err := touchConversation(ctx, tx, conversationID, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO conversation_messages (conversation_id, message_id) VALUES (?, ?)`,
			conversationID, message); err != nil {
			return err
		}
		payload, err := json.Marshal(securetextd.MailJob{MessageID: message, ConversationID: conversationID})
		if err != nil {
			return err
		}
		_, err = db.addJob(ctx, tx, securetextd.JobKindReply, payload, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// newMessageID returns a fresh Message-ID without angle brackets: 128
// random bits in hex, "@", and DB.MessageIDHost.
func (db *DB) newMessageID() string {
	host := db.MessageIDHost
	if host == "" {
		host = defaultMessageIDHost
	}
	b := make([]byte, 16)
	rand.Read(b) // never fails
	return hex.EncodeToString(b) + "@" + host
}
