package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/securetextd/securetextd"
)

// A sender answers a recipient's reply by mail to the conversation's
// reply address (<phone>+<id>@domain), which CommitTargets joins with a
// Target naming the conversation; or from the console (console/answer.go),
// which commits through CommitAnswer: the same transaction, with the same
// limits, read-receipt request and message.accepted event (committing),
// the same renewal, fresh link and text or notice job (joinConversation),
// and, the draft being the same, the same sealing and scanning.
//
// Both refuse the same conversations: withdrawn, deleted, or past their
// retention (joinable, for mail, with an SMTP reply's words;
// answerClosed, for the console, with a page's).

// AnswerClosed returns nil when the sender of conversation id may still
// answer into it from the console, and otherwise why not, as an error
// whose message speaks to the sender: ENOTFOUND when there is no such
// conversation; EREVOKED when it was withdrawn or deleted (its deletion
// done, or deferred by a legal hold); EEXPIRED when retention deleted
// content of it. A conversation whose access merely expired is open to an
// answer: the answer renews it, as a mailed one does.
func (db *DB) AnswerClosed(ctx context.Context, id int64) error {
	return wrap(fmt.Sprintf("answer closed %d", id), answerClosed(ctx, db.read, id))
}

// answerClosed is AnswerClosed read through q: the read connection, or
// the write transaction that commits an answer.
func answerClosed(ctx context.Context, q queryer, id int64) error {
	var revoked, deleted, purged bool
	err := q.QueryRowContext(ctx, `
		SELECT c.revoked IS NOT NULL,
			EXISTS (SELECT 1 FROM conversation_deletes d WHERE d.conversation_id = c.id),
			c.purged IS NOT NULL
		FROM conversations c WHERE c.id = ?`, id).Scan(&revoked, &deleted, &purged)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return securetextd.Errorf(securetextd.ENOTFOUND, "No such conversation.")
	case err != nil:
		return err
	case deleted:
		return securetextd.Errorf(securetextd.EREVOKED, "This conversation was deleted: it takes no more messages.")
	case revoked:
		return securetextd.Errorf(securetextd.EREVOKED, "This conversation was withdrawn: it takes no more messages.")
	case purged:
		return securetextd.Errorf(securetextd.EEXPIRED, "This conversation is past its retention period, and its earlier messages were deleted: it takes no more messages.")
	}
	return nil
}

// CommitAnswer stores m, written to the draft, as its sender's answer in
// conversation id: what CommitTargets stores for a mailed answer to the
// conversation's reply address. m.Sender must be the conversation's
// sender (any other is refused as "unknown conversation", EINVALID, as a
// mailed answer is); m.Direction is Inbound (to the recipient). The
// conversation must not be closed to answers (AnswerClosed, checked again
// in the transaction).
//
// In one transaction it checks the limits (ELIMIT), keeps a read-receipt
// request, records message.accepted, adds the message to the
// conversation, renews its access, and makes a fresh link with the job
// that texts (or, for an email recipient, mails) it. The receipt holds
// the conversation as it now is.
func (d *Draft) CommitAnswer(ctx context.Context, m *securetextd.Message, id int64) (*Receipt, error) {
	if m == nil {
		return nil, errors.New("store: commit answer: no message")
	}
	if m.Direction != 0 && m.Direction != securetextd.Inbound {
		return nil, securetextd.Errorf(securetextd.EINVALID, "an answer goes to the recipient")
	}
	c, err := d.db.Conversation(ctx, id)
	if err != nil {
		return nil, err
	}
	targets, err := checkTargets([]Target{{Phone: c.Phone, ConversationID: id}})
	if err != nil {
		return nil, err
	}
	receipt := &Receipt{}
	err = d.commit(ctx, "commit answer", m, true, func(ctx context.Context, tx *sql.Tx, message int64, now time.Time) error {
		receipt.MessageID = message
		receipt.Conversations = receipt.Conversations[:0]
		if err := answerClosed(ctx, tx, id); err != nil {
			return err
		}
		if err := d.db.committing(ctx, tx, d, m, message, targets, now); err != nil {
			return err
		}
		c, err := d.db.joinConversation(ctx, tx, targets[0], m.Sender, message, now)
		if err != nil {
			return err
		}
		receipt.Conversations = append(receipt.Conversations, *c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return receipt, nil
}
