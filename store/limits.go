package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/securetextd/securetextd"
)

// Limits on texts, beside the SMS send rate that notify keeps:
//
//   - Policy.DailyPerSender: one sender address may cause at most this many
//     texts (a message to three phones is three) in any 24 hours, so that a
//     stolen password or a runaway script is contained;
//   - Policy.PerPhonePerHour: one phone number gets at most this many texts
//     in any hour, from all senders together, so that nobody can flood a
//     patient;
//   - Policy.PerAddressPerHour: the same for an email recipient's notice
//     emails.
//   - Policy.DailyOrg: every sender together may cause at most this many
//     texts in any 24 hours.
//
// The windows slide: a text counts for exactly 24 hours (one hour) after
// its message was received. They are enforced in the transaction that
// commits a message, where concurrent sessions cannot both slip under a
// limit: a message that would pass one is refused whole, nothing of it is
// stored, and the error (ELIMIT, which SMTP answers with 452 4.5.3, a
// temporary failure) says when the next text may go. Mail programs and
// relays retry 4xx replies on their own, so the message goes out once the
// window allows it. CheckLimits asks the same question without the
// message, for a listener that wants to answer at RCPT.
//
// They count the messages themselves, in the database, so they hold for
// every node of a cluster and across restarts with no state of their own:
// write transactions are serialized on both engines (engine.go), so two
// nodes cannot both count a window before either commits.

// dayWindow and hourWindow are the windows of the two limits.
const (
	dayWindow  = 24 * time.Hour
	hourWindow = time.Hour
)

// CheckLimits reports, in a read-only snapshot, whether sender may now
// send a message to targets: nil, or the ELIMIT error that committing it
// would fail with.
func (db *DB) CheckLimits(ctx context.Context, sender string, targets []Target) error {
	if db.Policy.DailyPerSender <= 0 && db.Policy.PerPhonePerHour <= 0 && db.Policy.PerAddressPerHour <= 0 && db.Policy.DailyOrg <= 0 {
		return nil
	}
	err := db.view(ctx, func(tx *sql.Tx) error {
		return db.checkLimits(ctx, tx, sender, targets, db.Now())
	})
	return wrap("check limits", err)
}

// checkLimits returns an ELIMIT error if a message from sender to targets
// would go over a limit at now.
func (db *DB) checkLimits(ctx context.Context, tx *sql.Tx, sender string, targets []Target, now time.Time) error {
	if n := db.Policy.DailyPerSender; n > 0 {
		if len(targets) > n {
			return securetextd.Errorf(securetextd.EINVALID,
				"a message may go to at most %d phone numbers a day; this one goes to %d", n, len(targets))
		}
		// The texts of the window, oldest first: if len(targets) more
		// would make too many, the window must first lose the oldest
		// excess of them.
		oldest, count, err := windowTexts(ctx, tx, `
			SELECT m.received FROM messages m JOIN conversation_messages cm ON cm.message_id = m.id
			WHERE lower(m.sender) = lower(?) AND m.direction = ? AND m.received > ?
			ORDER BY m.received LIMIT 1 OFFSET ?`, `
			SELECT count(*) FROM messages m JOIN conversation_messages cm ON cm.message_id = m.id
			WHERE lower(m.sender) = lower(?) AND m.direction = ? AND m.received > ?`,
			[]any{sender, securetextd.Inbound, nanos(now.Add(-dayWindow))}, n, len(targets))
		if err != nil {
			return err
		}
		if count+len(targets) > n {
			return securetextd.Errorf(securetextd.ELIMIT,
				"Daily limit reached: %s may send %d texts in 24 hours and has sent %d; the limit resets for this message at %s",
				sender, n, count, resetTime(oldest.Add(dayWindow)))
		}
	}
	if n := db.Policy.DailyOrg; n > 0 {
		oldest, count, err := windowTexts(ctx, tx, `
			SELECT m.received FROM messages m JOIN conversation_messages cm ON cm.message_id = m.id
			WHERE m.direction = ? AND m.received > ?
			ORDER BY m.received LIMIT 1 OFFSET ?`, `
			SELECT count(*) FROM messages m JOIN conversation_messages cm ON cm.message_id = m.id
			WHERE m.direction = ? AND m.received > ?`,
			[]any{securetextd.Inbound, nanos(now.Add(-dayWindow))}, n, len(targets))
		if err != nil {
			return err
		}
		if count+len(targets) > n {
			if len(targets) > n {
				return securetextd.Errorf(securetextd.EINVALID,
					"the organization may send at most %d texts a day; this message goes to %d phone numbers", n, len(targets))
			}
			return securetextd.Errorf(securetextd.ELIMIT,
				"Organization's daily limit reached: %d texts in 24 hours, %d sent; the limit resets for this message at %s",
				n, count, resetTime(oldest.Add(dayWindow)))
		}
	}
	for _, t := range targets {
		n, what := db.Policy.PerPhonePerHour, "Too many texts to %s: a phone number gets at most %d secure texts an hour"
		if t.Phone.IsEmail() {
			n, what = db.Policy.PerAddressPerHour, "Too many notices to %s: an email address gets at most %d secure message notices an hour"
		}
		if n <= 0 {
			continue
		}
		oldest, count, err := windowTexts(ctx, tx, `
			SELECT m.received FROM conversations c
			JOIN conversation_messages cm ON cm.conversation_id = c.id
			JOIN messages m ON m.id = cm.message_id
			WHERE c.phone = ? AND m.direction = ? AND m.received > ?
			ORDER BY m.received LIMIT 1 OFFSET ?`, `
			SELECT count(*) FROM conversations c
			JOIN conversation_messages cm ON cm.conversation_id = c.id
			JOIN messages m ON m.id = cm.message_id
			WHERE c.phone = ? AND m.direction = ? AND m.received > ?`,
			[]any{t.Phone, securetextd.Inbound, nanos(now.Add(-hourWindow))}, n, 1)
		if err != nil {
			return err
		}
		if count+1 > n {
			return securetextd.Errorf(securetextd.ELIMIT, "%s; the limit resets for this message at %s",
				fmt.Sprintf(what, t.Phone, n), resetTime(oldest.Add(hourWindow)))
		}
	}
	return nil
}

// windowTexts counts the texts of a window (countQuery) and, when adding
// more would pass limit, returns the time of the text that must leave the
// window first (oldestQuery, given the offset). args are the queries'
// common arguments.
func windowTexts(ctx context.Context, tx *sql.Tx, oldestQuery, countQuery string, args []any, limit, more int) (time.Time, int, error) {
	var count int
	if err := tx.QueryRowContext(ctx, countQuery, args...).Scan(&count); err != nil {
		return time.Time{}, 0, fmt.Errorf("limits: %w", err)
	}
	if count+more <= limit {
		return time.Time{}, count, nil
	}
	// The window must lose count+more-limit texts: the oldest of them
	// sets when.
	var received int64
	err := tx.QueryRowContext(ctx, oldestQuery, append(args, count+more-limit-1)...).Scan(&received)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, count, nil
	}
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("limits: %w", err)
	}
	return fromNanos(received), count, nil
}

// resetTime writes when a limit lets a message through, to the next
// minute, for the SMTP reply a person reads: "14:33 UTC on 2 March 2026".
func resetTime(t time.Time) string {
	t = t.UTC().Add(time.Minute - 1).Truncate(time.Minute)
	return t.Format("15:04 MST on 2 January 2006")
}
