package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/securetextd/securetextd"
)

// The audit trail is an append-only table of events (securetextd.Audit*)
// in a hash chain. Each row keeps the hash of the row before it (prev) and
// its own hash:
//
//	hash = SHA-256(prev ‖ canonical(row))
//
// where prev is 32 zero bytes for the first row, and canonical(row) is the
// text "securetextd audit v1\n" followed by, for each of time (decimal unix
// nanoseconds), event, actor, conversation id (decimal), message id
// (decimal), client, user agent and detail, its length as a 4-byte
// big-endian number and its UTF-8 bytes. The row's seq is not hashed: it
// only orders the rows, and a gap in it is itself a finding.
//
// A row is written in the transaction of the change it records, where
// there is one (a message committed, a text sent, a conversation revoked),
// so that the change and its record stand or fall together. Rows never
// carry content: no subjects, names, bodies or filenames, no tokens or
// passwords; phone numbers and sender addresses appear in full, as the
// actors and subjects of events, as they do elsewhere in the database.
//
// VerifyAudit recomputes the chain and names the first row that was
// altered, removed or inserted. A hash chain cannot stop someone who holds
// the database file from rewriting the whole trail after a point, or from
// cutting its tail; the head (VerifyAudit's last row and hash) is what an
// operator records elsewhere — `securetextd audit verify` prints it, the
// daemon logs it daily — so that a later check can hold the trail to it.

// auditMagic starts the canonical encoding of every row, so that a hash
// of this scheme cannot be mistaken for one of another.
const auditMagic = "securetextd audit v1\n"

// Bounds of the free-text fields of a row: what comes from outside (a user
// agent) is cut, never refused.
const (
	maxAuditActor  = 320
	maxAuditClient = 64
	maxAuditUA     = 256
	maxAuditDetail = 256
)

// Audit appends ev to the audit trail, for events that change nothing else
// (a link opened, a login, a download), and returns once it is durable.
// Concurrent events share a commit (see updateGrouped), so that fifty
// patients downloading at once do not queue for fifty fsyncs.
// Time is now; an empty Actor, Client or UserAgent is taken from the
// securetextd.Origin of ctx.
func (db *DB) Audit(ctx context.Context, ev securetextd.AuditEvent) error {
	err := db.updateGrouped(ctx, func(ctx context.Context, tx *sql.Tx) error { return db.audit(ctx, tx, ev) })
	return wrap("audit "+ev.Event, err)
}

// audit appends ev to the trail inside tx, filling in what ctx's Origin
// knows.
func (db *DB) audit(ctx context.Context, tx *sql.Tx, ev securetextd.AuditEvent) error {
	if ev.Event == "" {
		return errors.New("audit event without a name")
	}
	o := securetextd.OriginFrom(ctx)
	if ev.Actor == "" {
		ev.Actor = o.Actor
	}
	if ev.Actor == "" {
		ev.Actor = "system"
	}
	if ev.Client == "" {
		ev.Client = o.Client
	}
	if ev.UserAgent == "" {
		ev.UserAgent = o.UserAgent
	}
	ev.Actor = clip(ev.Actor, maxAuditActor)
	ev.Client = clip(ev.Client, maxAuditClient)
	ev.UserAgent = clip(ev.UserAgent, maxAuditUA)
	ev.Detail = clip(ev.Detail, maxAuditDetail)
	if ev.Time.IsZero() {
		ev.Time = db.Now()
	}
	ev.Time = fromNanos(nanos(ev.Time))

	head, err := db.chainHead(ctx, tx)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	prev := head.hash
	ev.Seq = head.seq + 1
	ev.Hash = auditHash(prev, ev)
	_, err = tx.ExecContext(later(ctx), `
		INSERT INTO audit (seq, time, event, actor, conversation_id, message_id, client, user_agent, detail, prev, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.Seq, nanos(ev.Time), ev.Event, ev.Actor, ev.ConversationID, ev.MessageID,
		ev.Client, ev.UserAgent, ev.Detail, prev, ev.Hash)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	db.appended(tx, ev.Seq, ev.Hash)
	return nil
}

// auditHash returns SHA-256(prev ‖ canonical(ev)).
func auditHash(prev []byte, ev securetextd.AuditEvent) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write([]byte(auditMagic))
	for _, f := range []string{
		strconv.FormatInt(nanos(ev.Time), 10),
		ev.Event,
		ev.Actor,
		strconv.FormatInt(ev.ConversationID, 10),
		strconv.FormatInt(ev.MessageID, 10),
		ev.Client,
		ev.UserAgent,
		ev.Detail,
	} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return h.Sum(nil)
}

// clip cuts s to at most n bytes, on a rune boundary, and makes it valid
// UTF-8.
func clip(s string, n int) string {
	s = string(bytes.ToValidUTF8([]byte(s), []byte("\uFFFD")))
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// AuditTrail calls fn with each row of the trail from since on (all rows
// for the zero time), oldest first, and stops at fn's first error.
func (db *DB) AuditTrail(ctx context.Context, since time.Time, fn func(securetextd.AuditEvent) error) error {
	var from int64
	if !since.IsZero() {
		from = nanos(since)
	}
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			SELECT seq, time, event, actor, conversation_id, message_id, client, user_agent, detail, hash
			FROM audit WHERE time >= ? ORDER BY seq`, from)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var ev securetextd.AuditEvent
			var t int64
			if err := rows.Scan(&ev.Seq, &t, &ev.Event, &ev.Actor, &ev.ConversationID, &ev.MessageID,
				&ev.Client, &ev.UserAgent, &ev.Detail, &ev.Hash); err != nil {
				return err
			}
			ev.Time = fromNanos(t)
			if err := fn(ev); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	return wrap("audit trail", err)
}

// AuditCheck is the verdict of VerifyAudit.
type AuditCheck struct {
	// Rows is the number of rows read.
	Rows int64
	// Head is the last row, whose Seq and Hash an operator can record to
	// hold later checks to (AnchorOf, CheckAuditAnchor).
	Head securetextd.AuditEvent
	// Seq is the first row found altered, removed or inserted, and 0 when
	// the trail verifies. Problem says which, in words.
	Seq     int64
	Problem string
}

// OK reports whether the trail verified.
func (c *AuditCheck) OK() bool { return c.Seq == 0 }

// auditRow is what VerifyAudit reads of a row.
type auditRow struct {
	ev   securetextd.AuditEvent
	prev []byte
	self bool // hash = SHA-256(prev ‖ canonical(row))
}

// VerifyAudit recomputes the hash chain of the whole trail and returns the
// first row that breaks it. Each row is judged against the row before it
// and the one after:
//
//   - a row whose hash does not match its content, while the next row
//     links to it, was altered;
//   - a row that the next row skips (the next row's prev is the hash of
//     the row before) was inserted;
//   - a gap in seq means a row was removed; a row that is sound in itself
//     but does not link to the row before means that a row between them
//     was removed (and the rest renumbered), or that the row before was
//     rewritten with a hash to match.
//
// The trail is read in one snapshot, row by row: memory stays flat.
func (db *DB) VerifyAudit(ctx context.Context) (*AuditCheck, error) {
	check := &AuditCheck{}
	errFound := errors.New("found")
	err := db.view(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			SELECT seq, time, event, actor, conversation_id, message_id, client, user_agent, detail, prev, hash
			FROM audit ORDER BY seq`)
		if err != nil {
			return err
		}
		defer rows.Close()
		last := make([]byte, sha256.Size) // hash of the last row that verified
		expect := int64(1)
		var cur *auditRow
		for rows.Next() {
			r := &auditRow{}
			var t int64
			if err := rows.Scan(&r.ev.Seq, &t, &r.ev.Event, &r.ev.Actor, &r.ev.ConversationID, &r.ev.MessageID,
				&r.ev.Client, &r.ev.UserAgent, &r.ev.Detail, &r.prev, &r.ev.Hash); err != nil {
				return err
			}
			r.ev.Time = fromNanos(t)
			r.self = bytes.Equal(auditHash(r.prev, r.ev), r.ev.Hash)
			check.Rows++
			if cur != nil {
				if judgeAudit(check, cur, r, last, expect) {
					return errFound
				}
				last, expect = cur.ev.Hash, cur.ev.Seq+1
			}
			cur = r
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if cur != nil {
			if judgeAudit(check, cur, nil, last, expect) {
				return errFound
			}
			check.Head = cur.ev
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return nil, fmt.Errorf("store: verify audit: %w", err)
	}
	return check, nil
}

// judgeAudit records in check what is wrong with cur, given the hash of
// the last sound row, the seq it should have, and the row after it (nil
// for the last row); it reports whether it found something.
func judgeAudit(check *AuditCheck, cur, next *auditRow, last []byte, expect int64) bool {
	linked := bytes.Equal(cur.prev, last)
	skipped := next != nil && bytes.Equal(next.prev, last) && !bytes.Equal(cur.ev.Hash, last)
	switch {
	case cur.ev.Seq != expect:
		check.Seq = expect
		check.Problem = fmt.Sprintf("row %d was removed (the trail goes from row %d to row %d)", expect, expect-1, cur.ev.Seq)
	case cur.self && linked:
		return false
	case skipped:
		check.Seq = cur.ev.Seq
		check.Problem = fmt.Sprintf("row %d was inserted (row %d follows the row before it)", cur.ev.Seq, next.ev.Seq)
	case cur.self && !linked:
		check.Seq = cur.ev.Seq
		check.Problem = fmt.Sprintf("row %d does not follow row %d: a row between them was removed, or row %d was rewritten", cur.ev.Seq, cur.ev.Seq-1, cur.ev.Seq-1)
	case next == nil:
		check.Seq = cur.ev.Seq
		check.Problem = fmt.Sprintf("row %d, the last, was altered or inserted (its hash does not match its content)", cur.ev.Seq)
	default:
		check.Seq = cur.ev.Seq
		check.Problem = fmt.Sprintf("row %d was altered (its hash does not match its content)", cur.ev.Seq)
	}
	return true
}

// AuditRow returns row seq of the trail, for an operator to compare with a
// head recorded earlier. It is an ENOTFOUND error if there is no such row.
func (db *DB) AuditRow(ctx context.Context, seq int64) (*securetextd.AuditEvent, error) {
	var ev securetextd.AuditEvent
	var t int64
	err := db.read.QueryRowContext(ctx, `
		SELECT seq, time, event, actor, conversation_id, message_id, client, user_agent, detail, hash
		FROM audit WHERE seq = ?`, seq).Scan(&ev.Seq, &t, &ev.Event, &ev.Actor, &ev.ConversationID, &ev.MessageID,
		&ev.Client, &ev.UserAgent, &ev.Detail, &ev.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, securetextd.Errorf(securetextd.ENOTFOUND, "The audit trail has no row %d.", seq)
	}
	if err != nil {
		return nil, fmt.Errorf("store: audit row %d: %w", seq, err)
	}
	ev.Time = fromNanos(t)
	return &ev, nil
}

// AuditHead returns the last row of the trail, or nil when it is empty.
func (db *DB) AuditHead(ctx context.Context) (*securetextd.AuditEvent, error) {
	var seq sql.NullInt64
	if err := db.read.QueryRowContext(ctx, `SELECT max(seq) FROM audit`).Scan(&seq); err != nil {
		return nil, fmt.Errorf("store: audit head: %w", err)
	}
	if !seq.Valid {
		return nil, nil
	}
	return db.AuditRow(ctx, seq.Int64)
}
