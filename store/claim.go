package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/securetextd/securetextd"
)

// Claims. Any number of workers drain the outbox, on one node or on
// several that share a PostgreSQL database, and a job must be worked on by
// one of them at a time. A worker claims a job for a lease: ClaimJob picks
// the job that has been due longest among those no one holds, counts a
// claim on it (jobs.claims) and holds it until the lease ends
// (jobs.lease_until). Within the lease no other claim hands it out; past
// it, a job whose outcome was not recorded (its node died, or hangs) is
// due again and the next claim takes it over.
//
// The outcome of a claimed job is recorded with CompleteClaim, RetryClaim,
// FailClaim or CompleteTextClaim, and only for the job's latest claim
// (Job.Claim; a job handed out without a claim has none to check): a
// worker whose lease ran out, and whose job another worker took over, gets
// ECONFLICT, as it would for a job already done, and changes nothing that
// the new holder did. An outcome recorded after the lease ended but before
// anyone else claimed the job still counts: no one else worked on it.
//
// On PostgreSQL the claim is a short transaction of its own that does not
// take the write lock (engine.go): SELECT … FOR UPDATE SKIP LOCKED picks
// a row no concurrent claim holds, and the UPDATE of its lease commits at
// once, so claims neither wait behind commits nor behind each other, and
// two of them never return one job. On SQLite the one writer orders them
// with everything else.
//
// A lease must outlast the work on the job, or a slow worker and the one
// that took its job over would both carry it out: notify chooses the
// lease of each kind and cuts each send short before it ends
// (notify/lease.go).

// ClaimJob claims the pending job, of one of kinds, that has been due
// longest at now (the earliest next attempt, then the oldest) and that no
// worker holds, passing over the jobs whose ids are in except, and leases
// it until now + lease. It returns the job with its payload opened and
// Job.Claim set, which its outcome must quote. No kinds means any kind.
// It is an ENOTFOUND error when no such job is due.
//
//	job, err := db.ClaimJob(ctx, time.Now(), time.Minute, nil, securetextd.JobKindText)
//	… send …
//	err = db.CompleteClaim(ctx, job)
func (db *DB) ClaimJob(ctx context.Context, now time.Time, lease time.Duration, except []int64, kinds ...string) (*securetextd.Job, error) {
	if lease <= 0 {
		return nil, fmt.Errorf("store: claim job: lease %v must be positive", lease)
	}
	filter, args := inFilter("kind", false, kinds) // no kinds: every job
	xfilter, xargs := inFilter("id", true, except)
	args = append(append([]any{nanos(now), nanos(now)}, args...), xargs...)
	j := &securetextd.Job{}
	var sealed []byte
	var created int64
	found := false
	err := db.updateRows(ctx, func(tx *sql.Tx) error {
		// Planned for the kinds asked: replan.go.
		err := tx.QueryRowContext(replan(ctx), `
			SELECT id, kind, payload, attempts, created FROM jobs
			WHERE state = 'pending' AND next_attempt <= ? AND lease_until <= ?`+filter+xfilter+`
			ORDER BY next_attempt, id LIMIT 1`+db.eng.skipLocked, args...).
			Scan(&j.ID, &j.Kind, &sealed, &j.Attempts, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		return tx.QueryRowContext(ctx,
			`UPDATE jobs SET claims = claims + 1, lease_until = ?, claim_node = ? WHERE id = ? RETURNING claims`,
			nanos(now.Add(lease)), db.nodeLock.key, j.ID).Scan(&j.Claim)
	})
	if err != nil && db.eng.name == SQLite && errors.Is(err, errStorageFull) {
		// One process serves a SQLite file (StartNode), so no other
		// process needs to be kept off the job, and this one's workers
		// take apart kinds and pass over the jobs whose outcomes they
		// hold. A claim the full disk cannot take is handed out as an
		// unclaimed job, whose outcome is recorded whoever holds it:
		// texts go on while their outcomes wait for space
		// (notify/record.go).
		return db.NextJobExcept(ctx, now, except, kinds...)
	}
	if err != nil {
		return nil, fmt.Errorf("store: claim job: %w", err)
	}
	if !found {
		return nil, securetextd.Errorf(securetextd.ENOTFOUND, "No job is due.")
	}
	if j.Payload, err = db.open(sealed, payloadPlace(j.ID)); err != nil {
		return nil, fmt.Errorf("store: claim job: job %d payload: %w", j.ID, err)
	}
	j.Created = fromNanos(created)
	return j, nil
}

// CompleteClaim records that the claimed job was carried out. It is an
// ECONFLICT error when the job is no longer pending or was claimed again
// since job was (see ClaimJob).
func (db *DB) CompleteClaim(ctx context.Context, job *securetextd.Job) error {
	return db.finishAttempt(ctx, "complete job", job.ID, job.Claim, JobDone, nil, "")
}

// RetryClaim counts a failed attempt at the claimed job, records why, and
// makes it due again at at (see RetryJob), ending the claim. It is an
// ECONFLICT error as CompleteClaim is.
func (db *DB) RetryClaim(ctx context.Context, job *securetextd.Job, at time.Time, reason string) error {
	return db.finishAttempt(ctx, "retry job", job.ID, job.Claim, JobPending, &at, reason)
}

// FailClaim counts a last attempt at the claimed job and gives up on it
// for good, recording why. It is an ECONFLICT error as CompleteClaim is.
func (db *DB) FailClaim(ctx context.Context, job *securetextd.Job, reason string) error {
	return db.finishAttempt(ctx, "fail job", job.ID, job.Claim, JobFailed, nil, reason)
}

// CompleteTextClaim is CompleteText for a claimed text job: it is an
// ECONFLICT error as CompleteClaim is (the provider's ids are kept all the
// same: the text was sent).
func (db *DB) CompleteTextClaim(ctx context.Context, job *securetextd.Job, providerIDs []string) error {
	return db.completeText(ctx, job.ID, job.Claim, providerIDs)
}

// CompleteText records that text job id was sent, with the provider's ids
// of it (one per SMS segment), which its delivery reports will quote. It is
// CompleteJob otherwise. The ids are kept first, in a transaction of their
// own, so that a report that arrives at once finds its text; if that
// fails, the job is completed all the same (sending the text again would
// be worse than a report found by its client-ref only), and the error
// says so.
func (db *DB) CompleteText(ctx context.Context, id int64, providerIDs []string) error {
	return db.completeText(ctx, id, 0, providerIDs)
}

// completeText is CompleteText for the holder of claim (0: anyone).
func (db *DB) completeText(ctx context.Context, id, claim int64, providerIDs []string) error {
	var idsErr error
	if len(providerIDs) > 0 {
		idsErr = db.update(ctx, func(tx *sql.Tx) error {
			for _, p := range providerIDs {
				if p == "" || len(p) > 100 {
					continue
				}
				if _, err := tx.ExecContext(ctx, `
					INSERT INTO text_ids (provider_id, job_id)
					SELECT CAST(? AS TEXT), job_id FROM texts WHERE job_id = ?
					ON CONFLICT DO NOTHING`, p, id); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := db.finishAttempt(ctx, "complete job", id, claim, JobDone, nil, ""); err != nil {
		return err
	}
	if idsErr != nil {
		return fmt.Errorf("store: complete text %d: sent, but its provider ids were not kept: %w", id, idsErr)
	}
	return nil
}

// updateRows runs fn in a write transaction that takes no write lock on
// PostgreSQL: for writes whose order against other commits does not
// matter, and whose rows their own statements lock (a claim, the SMS
// rate's row), which must not wait behind every commit of every node. On
// SQLite it is update: the one writer orders every write.
func (db *DB) updateRows(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	if db.eng.lock == "" {
		return db.update(ctx, fn)
	}
	db.writeTxs.Add(1)
	defer func() { db.space.note(err, db.Now()) }()
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return storageFull(err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return storageFull(err)
	}
	return storageFull(tx.Commit())
}
