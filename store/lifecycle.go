package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
)

// Policy is how the store runs the information lifecycle: how long a
// conversation stays open, how long content is kept, what senders are told
// and how much they may send. Set DB.Policy once, before use.
//
// The zero Policy expires nothing, keeps everything, mails no notices and
// limits nothing: what a library user or a test that is about something
// else expects. cmd/securetextd sets it from the configuration.
type Policy struct {
	// AccessExpiry ends access to a conversation once this long has passed
	// since its last message, in either direction (portal.access_expiry).
	// A new message renews it, to within renewStep. Zero: never.
	AccessExpiry time.Duration
	// Retention is how long a message's content is kept after it was
	// received (store.retention); Purge deletes it after that. Zero:
	// forever.
	Retention time.Duration
	// DeliveryNotices mails the sender a notice, with a link that revokes
	// access, each time a text is sent (mail.delivery_notices).
	DeliveryNotices bool
	// FailureNotices mails the sender when a text fails for good: the
	// provider refused it, or the carrier reported it undelivered.
	FailureNotices bool
	// ReadReceipts is securetextd.ReceiptsMDN, ReceiptsAlways or
	// ReceiptsNever (mail.read_receipts); "" is ReceiptsNever.
	ReadReceipts string
	// DailyPerSender bounds the texts one sender address may cause in any
	// 24 hours (limits.daily_per_sender); PerPhonePerHour bounds the texts
	// one phone number gets in any hour, from all senders together
	// (limits.per_phone_per_hour). Zero: no limit. See checkLimits.
	DailyPerSender  int
	PerPhonePerHour int
	// PerAddressPerHour is PerPhonePerHour for email recipients: the
	// notice emails one address gets in any hour, from all senders
	// together (limits.per_address_per_hour).
	PerAddressPerHour int
	// ContinuePerSender makes a new message from a sender to a phone join
	// their latest conversation, unless it was withdrawn or deleted, so
	// that the recipient sees the whole history in one place
	// (conversations.continue = "per-sender"). False: every new message
	// starts a conversation of its own ("never").
	ContinuePerSender bool
	// DailyOrg bounds the texts every sender together may cause in any 24
	// hours (limits.daily_org): a cap on the organization's SMS bill and
	// on what a breach could send. Zero: no limit.
	DailyOrg int
}

// errExpired and errRevoked are the answers about a conversation whose
// access has ended. Their messages are what the portal shows.
func errExpired() error {
	return securetextd.Errorf(securetextd.EEXPIRED, "This conversation has expired. Ask the sender to write again.")
}

func errRevoked() error {
	return securetextd.Errorf(securetextd.EREVOKED, "This conversation was withdrawn by the sender.")
}

// access says whether a conversation, whose last activity and revocation
// time (NULL when not revoked) are given, is open at now: nil, or the
// EREVOKED or EEXPIRED error. Access lasts AccessExpiry from the last
// activity: at exactly that moment it has ended.
func (db *DB) access(lastActivity int64, revoked sql.NullInt64, now time.Time) error {
	if revoked.Valid {
		return errRevoked()
	}
	if exp := db.Policy.AccessExpiry; exp > 0 && !now.Before(fromNanos(lastActivity).Add(exp)) {
		return errExpired()
	}
	return nil
}

// renewStep is the precision of a conversation's last activity as new
// messages renew it (continueConversation): a minute, or a thousandth of
// AccessExpiry when that is shorter. So access lasts from AccessExpiry
// less renewStep to AccessExpiry after the last message: 72 hours less at
// most a minute, under the default. A patient's reply renews it exactly.
func (db *DB) renewStep() time.Duration {
	step := time.Minute
	if exp := db.Policy.AccessExpiry; exp > 0 {
		step = min(step, exp/1000)
	}
	return step
}

// openCutoff is the last activity a conversation needs, at now, to be
// open: later than the value returned.
func (db *DB) openCutoff(now time.Time) int64 {
	if db.Policy.AccessExpiry <= 0 {
		return -1 << 63
	}
	return nanos(now.Add(-db.Policy.AccessExpiry))
}

// ConversationAccess returns nil when conversation id is open to its
// recipient, an EEXPIRED or EREVOKED error when access has ended, and an
// ENOTFOUND error when there is no such conversation. The portal asks it
// on every request for a conversation, so that expiry and revocation take
// effect at once, in browsers that are signed in too.
func (db *DB) ConversationAccess(ctx context.Context, id int64) error {
	var last int64
	var revoked sql.NullInt64
	err := db.read.QueryRowContext(ctx,
		`SELECT last_activity, revoked FROM conversations WHERE id = ?`, id).Scan(&last, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return securetextd.Errorf(securetextd.ENOTFOUND, "No such conversation.")
	}
	if err != nil {
		return fmt.Errorf("store: conversation access %d: %w", id, err)
	}
	return db.deletedOr(ctx, id, db.access(last, revoked, db.Now()))
}

// ConversationWithAccess is Conversation and ConversationAccess read in
// one query, for the portal's pages, which ask both on every request: it
// returns conversation id, and as access what ConversationAccess would
// return for it (nil when open). err is an ENOTFOUND error when there is
// no such conversation, or the store's failure.
func (db *DB) ConversationWithAccess(ctx context.Context, id int64) (c *securetextd.Conversation, access, err error) {
	c, revoked, err := db.conversationRow(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	access = db.access(nanos(c.LastActivity), revoked, db.Now())
	if securetextd.ErrorCode(access) == securetextd.EREVOKED {
		access = db.deletedOr(ctx, id, access)
		if securetextd.ErrorCode(access) != securetextd.EREVOKED {
			return nil, nil, access // the store failed
		}
	}
	return c, access, nil
}

// deletedOr returns err, the answer of access for conversation id, or,
// when err is the withdrawn answer and the sender deleted the
// conversation (DeleteConversation, done), the EREVOKED error that says
// so (securetextd.DeletedMessage).
func (db *DB) deletedOr(ctx context.Context, id int64, err error) error {
	if securetextd.ErrorCode(err) != securetextd.EREVOKED {
		return err
	}
	var deleted bool
	if qerr := db.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM conversation_deletes
		WHERE conversation_id = ? AND done IS NOT NULL)`, id).Scan(&deleted); qerr != nil {
		return fmt.Errorf("store: conversation access %d: %w", id, qerr)
	}
	if deleted {
		return securetextd.Errorf(securetextd.EREVOKED, "%s", securetextd.DeletedMessage)
	}
	return err
}

// checkOpen is ConversationAccess inside a write transaction.
func (db *DB) checkOpen(ctx context.Context, tx *sql.Tx, id int64, now time.Time) error {
	var last int64
	var revoked sql.NullInt64
	err := tx.QueryRowContext(ctx,
		`SELECT last_activity, revoked FROM conversations WHERE id = ?`, id).Scan(&last, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return securetextd.Errorf(securetextd.ENOTFOUND, "No such conversation.")
	}
	if err != nil {
		return err
	}
	return db.access(last, revoked, now)
}

// RequestReadReceipt records that the message asked for a read receipt
// (Disposition-Notification-To). The receipt goes to the message's checked
// sender, never to the address the header names: anyone may write any
// address there, and a gateway that mailed it would reflect mail at
// strangers. It may be called until Commit; address is only checked to be
// present.
func (d *Draft) RequestReadReceipt(address string) {
	if strings.TrimSpace(address) != "" {
		d.receipt = true
	}
}

// committing runs in the transaction that commits an inbound message
// (CommitTargets), after the message row is written and before its
// conversations are: it enforces the limits, keeps the read-receipt
// request and records the acceptance.
func (db *DB) committing(ctx context.Context, tx *sql.Tx, d *Draft, m *securetextd.Message, message int64, targets []Target, now time.Time) error {
	if err := db.checkLimits(ctx, tx, m.Sender, targets, now); err != nil {
		return err
	}
	if d.receipt {
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET receipt = 1 WHERE id = ?`, message); err != nil {
			return err
		}
	}
	auth := m.Auth
	if auth == "" {
		auth = "unknown"
	}
	return db.audit(ctx, tx, securetextd.AuditEvent{
		Time: now, Event: securetextd.AuditMessageAccepted, Actor: m.Sender,
		MessageID: message, Detail: "auth=" + auth + " phones=" + strconv.Itoa(len(targets)),
	})
}

// replying runs in the transaction that saves a reply from the portal,
// before the conversation is renewed: a conversation that expired or was
// withdrawn while the form was open takes no reply.
func (db *DB) replying(ctx context.Context, tx *sql.Tx, conversationID int64, phone securetextd.Phone, message int64, now time.Time) error {
	if err := db.checkOpen(ctx, tx, conversationID, now); err != nil {
		return err
	}
	return db.audit(ctx, tx, securetextd.AuditEvent{
		Time: now, Event: securetextd.AuditReplySent, Actor: string(phone),
		ConversationID: conversationID, MessageID: message,
	})
}

// joinable refuses a message into conversation id when the sender
// withdrew it (or deleted it): it stays withdrawn; or when retention has
// begun to delete its content (purged): what the patient would see of it
// is no longer whole. Either way the sender is told to write to the phone
// number alone, which starts a new conversation. One that merely expired
// is renewed by the message. The console answers through the same rule
// (answerClosed), with words for a page.
func joinable(id int64, revoked, purged bool) error {
	switch {
	case revoked:
		return securetextd.Errorf(securetextd.EINVALID,
			"conversation %d was withdrawn; write to the phone number alone to start a new one", id)
	case purged:
		return securetextd.Errorf(securetextd.EINVALID,
			"conversation %d is past its retention period and its earlier messages were deleted; write to the phone number alone to start a new one", id)
	}
	return nil
}

// jobFinished runs in the transaction that records a job's last attempt.
// For a text, it moves its state, records it, and queues the sender's
// notice: the delivery notice with its revocation link when the text went
// out, the failure notice when it never will. It reports whether it
// queued a job.
func (db *DB) jobFinished(ctx context.Context, tx *sql.Tx, job int64, state, reason string) (bool, error) {
	if state != JobDone && state != JobFailed {
		return false, nil
	}
	var conv, message int64
	err := tx.QueryRowContext(ctx,
		`SELECT conversation_id, message_id FROM texts WHERE job_id = ?`, job).Scan(&conv, &message)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // not a text
	}
	if err != nil {
		return false, err
	}
	now := db.Now()
	if state == JobDone {
		// A delivery report may have come first: never step back.
		if _, err := tx.ExecContext(ctx,
			`UPDATE texts SET state = 'texted', updated = ? WHERE job_id = ? AND state = 'queued'`,
			nanos(now), job); err != nil {
			return false, err
		}
		if err := db.audit(ctx, tx, securetextd.AuditEvent{
			Time: now, Event: securetextd.AuditTextSent, Actor: "system", ConversationID: conv, MessageID: message,
		}); err != nil {
			return false, err
		}
		if !db.Policy.DeliveryNotices {
			return false, nil
		}
		return true, db.queueNotice(ctx, tx, conv, message, now)
	}
	return db.textFailed(ctx, tx, job, conv, message, reason, now)
}

// textFailed marks text job failed, unless it was delivered or failed
// already, records why, and queues the failure notice. It reports whether
// it queued one.
func (db *DB) textFailed(ctx context.Context, tx *sql.Tx, job, conv, message int64, reason string, now time.Time) (bool, error) {
	reason = clip(reason, maxAuditDetail)
	res, err := tx.ExecContext(ctx,
		`UPDATE texts SET state = 'failed', detail = ?, updated = ? WHERE job_id = ? AND state IN ('queued', 'texted')`,
		reason, nanos(now), job)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	if err := db.audit(ctx, tx, securetextd.AuditEvent{
		Time: now, Event: securetextd.AuditTextFailed, Actor: "system",
		ConversationID: conv, MessageID: message, Detail: reason,
	}); err != nil {
		return false, err
	}
	// The link goes by email to a fallback address, if the text has one
	// (email.go); the sender hears of a failure only if that fails too.
	if queued, err := db.fallBack(ctx, tx, job, conv, message, now); err != nil || queued {
		return queued, err
	}
	if !db.Policy.FailureNotices {
		return false, nil
	}
	return true, db.addMailJob(ctx, tx, securetextd.JobKindUndelivered,
		securetextd.MailJob{MessageID: message, ConversationID: conv}, now)
}

// queueNotice makes a revocation token for conversation conv and queues
// the delivery notice that carries it to the sender.
func (db *DB) queueNotice(ctx context.Context, tx *sql.Tx, conv, message int64, now time.Time) error {
	token := newToken(linkTokenBytes)
	hash := hashToken(token)
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO revoke_tokens (token_hash, conversation_id, message_id, created) VALUES (?, ?, ?, ?)`,
		hash[:], conv, message, nanos(now)); err != nil {
		return err
	}
	return db.addMailJob(ctx, tx, securetextd.JobKindNotice,
		securetextd.MailJob{MessageID: message, ConversationID: conv, Token: token}, now)
}

func (db *DB) addMailJob(ctx context.Context, tx *sql.Tx, kind string, mj securetextd.MailJob, now time.Time) error {
	payload, err := json.Marshal(mj)
	if err != nil {
		return err
	}
	_, err = db.addJob(ctx, tx, kind, payload, now)
	return err
}

// RecordDelivery records what a provider's delivery report says of a
// text, found by the job id it echoes (r.Ref) or by its id for the text
// (r.ProviderID). Delivered is final; a failure is recorded once, unless
// the text was delivered, and mails the sender a failure notice.
// Intermediate reports (accepted, buffered) change nothing. A report of
// an unknown text is an ENOTFOUND error.
func (db *DB) RecordDelivery(ctx context.Context, r securetextd.DeliveryReport) error {
	queued := false
	err := db.update(ctx, func(tx *sql.Tx) error {
		job, conv, message, err := findText(ctx, tx, r)
		if err != nil {
			return err
		}
		now := db.Now()
		detail := "status=" + r.Status
		if r.ErrCode != "" {
			detail += " err-code=" + r.ErrCode
		}
		switch {
		case r.Delivered:
			res, err := tx.ExecContext(ctx,
				`UPDATE texts SET state = 'delivered', detail = ?, updated = ? WHERE job_id = ? AND state != 'delivered'`,
				clip(detail, maxAuditDetail), nanos(now), job)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return err
			}
			return db.audit(ctx, tx, securetextd.AuditEvent{
				Time: now, Event: securetextd.AuditTextDelivered, Actor: "system",
				ConversationID: conv, MessageID: message, Detail: detail,
			})
		case r.Failed:
			queued, err = db.textFailed(ctx, tx, job, conv, message, "carrier: "+detail, now)
			return err
		}
		return nil
	})
	if err != nil {
		return wrap("record delivery", err)
	}
	if queued {
		db.wakeUp()
	}
	return nil
}

// findText returns the text job a delivery report is about.
func findText(ctx context.Context, tx *sql.Tx, r securetextd.DeliveryReport) (job, conv, message int64, err error) {
	err = sql.ErrNoRows
	if ref, perr := strconv.ParseInt(r.Ref, 10, 64); perr == nil && ref > 0 {
		err = tx.QueryRowContext(ctx,
			`SELECT job_id, conversation_id, message_id FROM texts WHERE job_id = ?
			AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = texts.job_id AND j.kind = ?)`, // a notice email has no carrier
			ref, securetextd.JobKindEmail).Scan(&job, &conv, &message)
	}
	if errors.Is(err, sql.ErrNoRows) && r.ProviderID != "" {
		err = tx.QueryRowContext(ctx, `
			SELECT t.job_id, t.conversation_id, t.message_id
			FROM text_ids i JOIN texts t ON t.job_id = i.job_id
			WHERE i.provider_id = ?`, r.ProviderID).Scan(&job, &conv, &message)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, 0, securetextd.Errorf(securetextd.ENOTFOUND, "No such text.")
	}
	return job, conv, message, err
}

// markViewedSQL records the first view of one inbound message of a
// conversation. The direction is written into the text, not bound, and
// the message is found by a subquery, not a join: on SQLite a statement
// whose plan weighs a bound value in a loop that does not look it up is
// compiled anew on every run (TestStatementsStayPrepared).
var markViewedSQL = `
	INSERT INTO message_views (message_id, conversation_id, first_viewed)
	SELECT cm.message_id, cm.conversation_id, CAST(? AS BIGINT)
	FROM conversation_messages cm
	WHERE cm.conversation_id = ? AND cm.message_id = ?
		AND (SELECT direction FROM messages WHERE id = cm.message_id) = ` + inbound + `
	ON CONFLICT DO NOTHING`

// MarkViewed records that the recipient of conversation conversationID was
// shown messageIDs (the inbound ones count; others are ignored): one
// message.viewed event, and, for each message shown for the first time, the
// read receipt that Policy.ReadReceipts asks for, queued in the same
// transaction. A message is first shown once: the receipt goes once and
// only once, however often the page is opened.
func (db *DB) MarkViewed(ctx context.Context, conversationID int64, messageIDs []int64) error {
	queued := false
	err := db.updateGrouped(ctx, func(ctx context.Context, tx *sql.Tx) error {
		queued = false // fn may run again (updateGrouped)
		now := db.Now()
		var phone string
		if err := tx.QueryRowContext(ctx, `SELECT phone FROM conversations WHERE id = ?`, conversationID).Scan(&phone); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return securetextd.Errorf(securetextd.ENOTFOUND, "No such conversation.")
			}
			return err
		}
		ids := make([]string, 0, len(messageIDs))
		var latest int64
		for _, id := range messageIDs {
			res, err := tx.ExecContext(ctx, markViewedSQL, nanos(now), conversationID, id)
			if err != nil {
				return err
			}
			ids = append(ids, strconv.FormatInt(id, 10))
			latest = max(latest, id)
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				q, err := db.queueReceipt(ctx, tx, conversationID, id, phone, now)
				if err != nil {
					return err
				}
				queued = queued || q
			}
		}
		if err := markSeen(ctx, tx, conversationID, phone, now); err != nil {
			return err
		}
		return db.audit(ctx, tx, securetextd.AuditEvent{
			Time: now, Event: securetextd.AuditMessageViewed, Actor: phone,
			ConversationID: conversationID, MessageID: latest, Detail: "messages=" + strings.Join(ids, ","),
		})
	})
	if err != nil {
		return wrap(fmt.Sprintf("mark viewed %d", conversationID), err)
	}
	if queued {
		db.wakeUp()
	}
	return nil
}

// queueReceipt queues the read receipt of message's first view in
// conversation conv, if the policy and the message ask for one.
func (db *DB) queueReceipt(ctx context.Context, tx *sql.Tx, conv, message int64, phone string, now time.Time) (bool, error) {
	var asked bool
	if err := tx.QueryRowContext(ctx, `SELECT receipt FROM messages WHERE id = ?`, message).Scan(&asked); err != nil {
		return false, err
	}
	kind := ""
	switch db.Policy.ReadReceipts {
	case securetextd.ReceiptsMDN:
		if asked {
			kind = securetextd.JobKindMDN
		}
	case securetextd.ReceiptsAlways:
		kind = securetextd.JobKindRead
		if asked {
			kind = securetextd.JobKindMDN
		}
	}
	if kind == "" {
		return false, nil
	}
	if err := db.addMailJob(ctx, tx, kind, securetextd.MailJob{MessageID: message, ConversationID: conv}, now); err != nil {
		return false, err
	}
	return true, db.audit(ctx, tx, securetextd.AuditEvent{
		Time: now, Event: securetextd.AuditReceiptQueued, Actor: phone,
		ConversationID: conv, MessageID: message, Detail: kind,
	})
}

// RevocationByToken returns the conversation that a revocation token
// withdraws, and changes nothing: it is what the confirmation page (a GET)
// shows. An unknown token is an ENOTFOUND error; a conversation withdrawn
// already, an EREVOKED error.
func (db *DB) RevocationByToken(ctx context.Context, token string) (*securetextd.Conversation, error) {
	c, revoked, err := db.tokenConversation(ctx, "revoke_tokens", token)
	if err != nil {
		return nil, fmt.Errorf("store: revocation by token: %w", err)
	}
	if revoked.Valid {
		return c, errRevoked()
	}
	return c, nil
}

// RevokeByToken withdraws the conversation of a revocation token, at once:
// the next request for it, from any browser, is answered "withdrawn". It
// returns the conversation, with the errors of RevocationByToken.
func (db *DB) RevokeByToken(ctx context.Context, token string) (*securetextd.Conversation, error) {
	c, err := db.RevocationByToken(ctx, token)
	if err != nil {
		return c, err
	}
	return c, db.RevokeConversation(ctx, c.ID)
}

// RevokeConversation withdraws conversation id: its recipient can no
// longer open it, texts about it that are still queued are not sent, and
// no later message joins it. Its content stays sealed until the retention
// period ends, as every message's does. It is an ENOTFOUND error if there
// is no such conversation, and an EREVOKED error if it was withdrawn
// already.
func (db *DB) RevokeConversation(ctx context.Context, id int64) error {
	err := db.update(ctx, func(tx *sql.Tx) error { return db.revoke(ctx, tx, id, db.Now()) })
	return wrap(fmt.Sprintf("revoke conversation %d", id), err)
}

// RevokeMessage withdraws every conversation that message id went to, and
// returns their ids. Conversations withdrawn already are left as they
// are. It is an ENOTFOUND error if no conversation holds the message.
func (db *DB) RevokeMessage(ctx context.Context, id int64) ([]int64, error) {
	var revoked []int64
	err := db.update(ctx, func(tx *sql.Tx) error {
		convs, err := queryIDs(ctx, tx, `
			SELECT cm.conversation_id FROM conversation_messages cm JOIN messages m ON m.id = cm.message_id
			WHERE cm.message_id = ? AND m.direction = ? ORDER BY cm.conversation_id`, id, securetextd.Inbound)
		if err != nil {
			return err
		}
		if len(convs) == 0 {
			return securetextd.Errorf(securetextd.ENOTFOUND, "No message %d was sent to a phone.", id)
		}
		now := db.Now()
		for _, c := range convs {
			err := db.revoke(ctx, tx, c, now)
			if securetextd.ErrorCode(err) == securetextd.EREVOKED {
				continue
			}
			if err != nil {
				return err
			}
			revoked = append(revoked, c)
		}
		return nil
	})
	if err != nil {
		return nil, wrap(fmt.Sprintf("revoke message %d", id), err)
	}
	return revoked, nil
}

func (db *DB) revoke(ctx context.Context, tx *sql.Tx, id int64, now time.Time) error {
	res, err := tx.ExecContext(ctx,
		`UPDATE conversations SET revoked = ? WHERE id = ? AND revoked IS NULL`, nanos(now), id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		var exists bool
		if err := tx.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM conversations WHERE id = ?)`, id).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return securetextd.Errorf(securetextd.ENOTFOUND, "No such conversation.")
		}
		return errRevoked()
	}
	// Texts not sent yet would only lead to the "withdrawn" page.
	if _, err := tx.ExecContext(ctx, `
		UPDATE jobs SET state = 'failed', last_error = 'conversation withdrawn', updated = ?
		WHERE state = 'pending' AND id IN (
			SELECT t.job_id FROM conversation_messages cm
			JOIN texts t ON t.message_id = cm.message_id AND t.conversation_id = cm.conversation_id
			WHERE cm.conversation_id = ?)`,
		nanos(now), id); err != nil {
		return err
	}
	return db.audit(ctx, tx, securetextd.AuditEvent{
		Time: now, Event: securetextd.AuditRevoked, ConversationID: id,
	})
}

// LastAudit returns the newest row of the trail that is one of events, or
// nil when there is none; RecordStart compares the key and
// configuration it starts with against the last ones recorded.
func (db *DB) LastAudit(ctx context.Context, events ...string) (*securetextd.AuditEvent, error) {
	if len(events) == 0 {
		return nil, errors.New("store: last audit: no events named")
	}
	args := make([]any, len(events))
	for i, e := range events {
		args[i] = e
	}
	// Newest first, stopping at the first match (each start records one,
	// so it is near the end), where max(seq) would read the whole trail.
	var seq int64
	err := db.read.QueryRowContext(ctx,
		`SELECT seq FROM audit WHERE event IN (?`+strings.Repeat(", ?", len(events)-1)+`) ORDER BY seq DESC LIMIT 1`, args...).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: last audit: %w", err)
	}
	return db.AuditRow(ctx, seq)
}

// SealingKey returns the public key (the age recipient) that seals new
// content, for the audit trail's record of key changes.
func (db *DB) SealingKey() string { return db.keys.Recipient() }
