package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
)

// The outbox is the queue of work that notify drains: a job is inserted in
// the transaction that commits what it is about, so a message that was
// acknowledged is never left without its text, and a text is never sent
// for a message that was not stored. Jobs are "pending" until the worker
// completes them ("done") or gives up ("failed"). Payloads are sealed: a
// text's payload carries its link token, a reset email's its reset token.
//
// Workers take jobs with ClaimJob (claim.go), which leases each job to
// one worker at a time, on this node or any other that shares the
// database; NextJob only reads, for tests and reports.

// Job states, as JobState reports them.
const (
	JobPending = "pending"
	JobDone    = "done"
	JobFailed  = "failed"
)

// addJob inserts a pending job, due now, with payload sealed for its row,
// and returns its id.
//
// The id is reserved here, since the payload is sealed for it: one more
// than any job's, and than any text's, whose row outlives its job when
// finished jobs are purged. An id is never given twice, so a purged job's
// text row is never taken for the new job's, and a payload from an old
// backup never opens in a new row.
func (db *DB) addJob(ctx context.Context, tx *sql.Tx, kind string, payload []byte, now time.Time) (int64, error) {
	id, err := db.nextID(ctx, tx, "jobs")
	if err != nil {
		return 0, err
	}
	_, err = tx.ExecContext(later(ctx), `
		INSERT INTO jobs (id, kind, payload, next_attempt, created, updated)
		VALUES (?, ?, ?, ?, ?, ?)`,
		id, kind, db.seal(payload, payloadPlace(id)), nanos(now), nanos(now), nanos(now))
	return id, err
}

// NextJob returns the pending job, of one of kinds, that has been due
// longest at now (the earliest next attempt, then the oldest), with its
// payload opened, without claiming it: a job claimed by a worker whose
// lease has not run out is not due. No kinds means any kind. It is an
// ENOTFOUND error when no such job is due. Workers use ClaimJob.
//
//	job, err := db.NextJob(ctx, time.Now(), securetextd.JobKindReply, securetextd.JobKindReset)
func (db *DB) NextJob(ctx context.Context, now time.Time, kinds ...string) (*securetextd.Job, error) {
	return db.NextJobExcept(ctx, now, nil, kinds...)
}

// NextJobExcept is NextJob passing over the jobs whose ids are in except: a
// worker that holds the outcome of a job it could not yet record asks for
// other work, rather than be handed the same job again.
func (db *DB) NextJobExcept(ctx context.Context, now time.Time, except []int64, kinds ...string) (*securetextd.Job, error) {
	filter, args := inFilter("kind", false, kinds) // no kinds: every job
	xfilter, xargs := inFilter("id", true, except)
	j := &securetextd.Job{}
	var sealed []byte
	var created int64
	args = append(append([]any{nanos(now), nanos(now)}, args...), xargs...)
	err := db.read.QueryRowContext(replan(ctx), `
		SELECT id, kind, payload, attempts, created FROM jobs
		WHERE state = 'pending' AND next_attempt <= ? AND lease_until <= ?`+filter+xfilter+`
		ORDER BY next_attempt, id LIMIT 1`, args...).Scan(&j.ID, &j.Kind, &sealed, &j.Attempts, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, securetextd.Errorf(securetextd.ENOTFOUND, "No job is due.")
	}
	if err != nil {
		return nil, fmt.Errorf("store: next job: %w", err)
	}
	if j.Payload, err = db.open(sealed, payloadPlace(j.ID)); err != nil {
		return nil, fmt.Errorf("store: next job: job %d payload: %w", j.ID, err)
	}
	j.Created = fromNanos(created)
	return j, nil
}

// NextDue returns when the earliest pending job of one of kinds (any kind
// if none are given) is due, and false if there is no such job. A claimed
// job is due when its lease runs out, unless its outcome comes first.
func (db *DB) NextDue(ctx context.Context, kinds ...string) (time.Time, bool, error) {
	return db.NextDueExcept(ctx, nil, kinds...)
}

// NextDueExcept is NextDue passing over the jobs whose ids are in except.
//
// A job is due at its next attempt, or when its lease ends if it is
// claimed (lease_until past next_attempt). The earliest is found by
// reading each kind's pending jobs in next_attempt order (the index
// jobs_due_kind) up to the first that is not claimed: any job after it is
// due no sooner. Only the jobs claimed at the head of each queue are read,
// where a min() over the pending jobs read them all, thousands while texts
// wait for the SMS rate, at every wake-up of each worker (issue 15). The
// heads of all the kinds come in one query, nextDueHead rows of each;
// a kind whose head is all claimed, which takes that many sends at once,
// is then walked to its end.
func (db *DB) NextDueExcept(ctx context.Context, except []int64, kinds ...string) (time.Time, bool, error) {
	xfilter, xargs := inFilter("id", true, except)
	filters := []string{""} // no kinds: every job
	if len(kinds) > 0 {
		filters = filters[:0]
		for _, k := range kinds {
			// The kinds are the package's constants, never input; each
			// is written into the text, so that each part of the query
			// walks one kind's entries in order.
			if !jobKindName(k) {
				return time.Time{}, false, fmt.Errorf("store: next due: job kind %q", k)
			}
			filters = append(filters, " AND kind = '"+k+"'")
		}
	}
	heads := make([]string, len(filters))
	var args []any
	for i, f := range filters {
		heads[i] = `SELECT * FROM (SELECT ` + strconv.Itoa(i) + ` AS part, next_attempt, lease_until, id FROM jobs
			WHERE state = 'pending'` + f + xfilter + ` ORDER BY next_attempt, id LIMIT ` + strconv.Itoa(nextDueHead) + `) AS h` + strconv.Itoa(i)
		args = append(args, xargs...)
	}
	rows, err := db.read.QueryContext(replan(ctx), strings.Join(heads, " UNION ALL "), args...)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("store: next due: %w", err)
	}
	parts := make([][]dueRow, len(filters))
	for rows.Next() {
		var part int
		var r dueRow
		if err := rows.Scan(&part, &r.next, &r.lease, &r.id); err != nil {
			rows.Close()
			return time.Time{}, false, fmt.Errorf("store: next due: %w", err)
		}
		if part >= 0 && part < len(parts) {
			parts[part] = append(parts[part], r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return time.Time{}, false, fmt.Errorf("store: next due: %w", err)
	}
	var best int64
	found := false
	for i, head := range parts {
		due, ok, open := earliestDue(head)
		if !open && len(head) == nextDueHead {
			// Every job read is claimed: walk the rest of this kind.
			due, ok, err = db.nextDueOf(ctx, filters[i]+xfilter, xargs)
			if err != nil {
				return time.Time{}, false, fmt.Errorf("store: next due: %w", err)
			}
		}
		if ok && (!found || due < best) {
			best, found = due, true
		}
	}
	if !found {
		return time.Time{}, false, nil
	}
	return fromNanos(best), true, nil
}

// nextDueHead is how many of each kind's pending jobs NextDueExcept reads
// at first: more than the sends a node has under way at once.
const nextDueHead = 32

// dueRow is a pending job as NextDueExcept reads it.
type dueRow struct{ next, lease, id int64 }

// earliestDue returns when the first of head, pending jobs of one kind,
// is due, going through them in next_attempt order up to the first that
// is not claimed; open reports whether there was one.
func earliestDue(head []dueRow) (due int64, ok, open bool) {
	slices.SortFunc(head, func(a, b dueRow) int {
		if c := cmp.Compare(a.next, b.next); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	for _, r := range head {
		if d := max(r.next, r.lease); !ok || d < due {
			due, ok = d, true
		}
		if r.lease <= r.next {
			return due, ok, true
		}
	}
	return due, ok, false
}

// nextDueOf walks the pending jobs that filter keeps in next_attempt
// order, up to the first one not claimed, and returns the earliest time
// one of them is due.
func (db *DB) nextDueOf(ctx context.Context, filter string, args []any) (int64, bool, error) {
	rows, err := db.read.QueryContext(replan(ctx),
		`SELECT next_attempt, lease_until FROM jobs WHERE state = 'pending'`+filter+` ORDER BY next_attempt, id`, args...)
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	var best int64
	found := false
	for rows.Next() {
		var next, lease int64
		if err := rows.Scan(&next, &lease); err != nil {
			return 0, false, err
		}
		due := max(next, lease)
		if !found || due < best {
			best, found = due, true
		}
		if lease <= next {
			break // not claimed: every job after it is due no sooner
		}
	}
	return best, found, rows.Err()
}

// jobKindName reports whether k can be written into a query's text: a
// job kind is lowercase letters and dashes.
func jobKindName(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if (c < 'a' || c > 'z') && c != '-' {
			return false
		}
	}
	return true
}

// inFilter returns " AND <column> IN (?, …)" (or NOT IN) for vals, to
// append to a WHERE clause, and its arguments; no vals, no condition.
func inFilter[T any](column string, not bool, vals []T) (string, []any) {
	if len(vals) == 0 {
		return "", nil
	}
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	op := " IN (?"
	if not {
		op = " NOT IN (?"
	}
	return " AND " + column + op + strings.Repeat(", ?", len(vals)-1) + ")", args
}

// CompleteJob records that job id was carried out, whoever holds it: for
// operators and tests. A worker records the outcome of the job it claimed
// with CompleteClaim.
func (db *DB) CompleteJob(ctx context.Context, id int64) error {
	return db.finishAttempt(ctx, "complete job", id, 0, JobDone, nil, "")
}

// RetryJob counts a failed attempt at job id, records why, and makes it
// due again at at. reason is kept in clear and shown to operators: it must
// not quote the payload. Like CompleteJob, it does not ask who holds the
// job; a worker uses RetryClaim.
func (db *DB) RetryJob(ctx context.Context, id int64, at time.Time, reason string) error {
	return db.finishAttempt(ctx, "retry job", id, 0, JobPending, &at, reason)
}

// FailJob counts a last attempt at job id and gives up on it for good,
// recording why. A worker uses FailClaim.
func (db *DB) FailJob(ctx context.Context, id int64, reason string) error {
	return db.finishAttempt(ctx, "fail job", id, 0, JobFailed, nil, reason)
}

// finishAttempt counts an attempt at a pending job and moves it to state,
// due again at next if next is not nil, ending any claim on it. With a
// claim other than 0, only while that is the job's latest claim (see
// ClaimJob). It is an ENOTFOUND error if there is no such job and an
// ECONFLICT error if the job is no longer pending or was claimed again.
//
// The claim is checked in the UPDATE itself: on PostgreSQL a claim does
// not take the write lock, and one that locked the row first makes this
// UPDATE wait for it and then see its new claim.
func (db *DB) finishAttempt(ctx context.Context, op string, id, claim int64, state string, next *time.Time, reason string) error {
	queued := false // a job finished made another (lifecycle.go)
	err := db.update(ctx, func(tx *sql.Tx) error {
		var at sql.NullInt64
		if next != nil {
			at = sql.NullInt64{Int64: nanos(*next), Valid: true}
		}
		res, err := tx.ExecContext(ctx, `
			UPDATE jobs SET
				state = ?,
				attempts = attempts + 1,
				next_attempt = coalesce(?, next_attempt),
				last_error = ?,
				updated = ?,
				lease_until = 0
			WHERE id = ? AND state = 'pending' AND (CAST(? AS BIGINT) = 0 OR claims = ?)`,
			state, at, reason, nanos(db.Now()), id, claim, claim)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return err
			}
			return whyNotFinished(ctx, tx, id)
		}
		queued, err = db.jobFinished(ctx, tx, id, state, reason)
		return err
	})
	if err == nil && queued {
		db.wakeUp()
	}
	return wrap(fmt.Sprintf("%s %d", op, id), err)
}

// whyNotFinished explains why job id could not be finished: gone, no
// longer pending, or claimed again since.
func whyNotFinished(ctx context.Context, tx *sql.Tx, id int64) error {
	var current string
	err := tx.QueryRowContext(ctx, `SELECT state FROM jobs WHERE id = ?`, id).Scan(&current)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return securetextd.Errorf(securetextd.ENOTFOUND, "No job %d.", id)
	case err != nil:
		return err
	case current != JobPending:
		return securetextd.Errorf(securetextd.ECONFLICT, "Job %d is %s already.", id, current)
	}
	return securetextd.Errorf(securetextd.ECONFLICT,
		"Job %d was claimed again after this claim's lease ran out: its outcome is the new holder's to record.", id)
}

// Wake returns a channel that is closed once a commit adds jobs, so that
// a worker can sleep until NextDue and still start at once on new work.
// Each commit closes the current channel and puts a fresh one in its
// place: every waiter wakes (the SMS and the mail worker both hold one),
// and a wake-up stands for any number of commits.
//
// Take the channel before asking for work, so that a job committed in
// between is not missed:
//
//	wake := db.Wake()
//	due, ok, err := db.NextDue(ctx, kinds...)
//	… select on wake, a timer for due, and ctx …
func (db *DB) Wake() <-chan struct{} {
	db.wakeMu.Lock()
	defer db.wakeMu.Unlock()
	return db.wake
}

// WakeMail is Wake for the jobs other than texts: its channel is closed
// once a commit adds jobs that may be mail (a reply, a notice, a read
// receipt, an email recipient's notice), and not by the commit of an
// inbound message to phones only, which adds only texts. The mail worker so sleeps through a stream of inbound messages,
// rather than look for mail, and find none, at each of their commits.
func (db *DB) WakeMail() <-chan struct{} {
	db.wakeMu.Lock()
	defer db.wakeMu.Unlock()
	return db.wakeMail
}

// wakeUp wakes every holder of a channel from Wake or WakeMail.
func (db *DB) wakeUp() {
	db.wakeMu.Lock()
	defer db.wakeMu.Unlock()
	close(db.wake)
	db.wake = make(chan struct{})
	close(db.wakeMail)
	db.wakeMail = make(chan struct{})
}

// wakeUpTexts wakes the holders of a channel from Wake, after a commit
// that added only text jobs.
func (db *DB) wakeUpTexts() {
	db.wakeMu.Lock()
	defer db.wakeMu.Unlock()
	close(db.wake)
	db.wake = make(chan struct{})
}

// JobState returns the state of job id ("pending", "done" or "failed") and
// the attempts made at it, for tests and reports.
func (db *DB) JobState(ctx context.Context, id int64) (state string, attempts int, err error) {
	err = db.read.QueryRowContext(ctx,
		`SELECT state, attempts FROM jobs WHERE id = ?`, id).Scan(&state, &attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, securetextd.Errorf(securetextd.ENOTFOUND, "No job %d.", id)
	}
	if err != nil {
		return "", 0, fmt.Errorf("store: job state %d: %w", id, err)
	}
	return state, attempts, nil
}
