// Package notify tells people that something is waiting for them. It owns
// the outbox workers, which drain the jobs that the store commits together
// with each message; the SMS providers that carry the texts (Vonage, and a
// console provider for development); the message templates that say what a
// text contains; and the Mailer, which emails recipients' replies back to
// their senders, threaded under the original, and password-reset links.
//
// A text never carries message content: only the organization's name and
// a link to the portal. The link holds a secret token, so neither the text
// nor a full phone number is ever logged; nor are reset tokens, email
// addresses (masked) or subjects.
package notify

import (
	"context"
	"errors"
	"time"

	"github.com/securetextd/securetextd"
)

// Outbox is the queue of work the worker drains. The store implements it:
// a job is committed in the same transaction as the message it notifies
// about, so a message that was acknowledged is never left unnotified.
//
// Workers claim jobs for a lease (lease.go): any number of them, on one
// node or on several that share the store, drain it side by side, and a
// job is worked on by one at a time.
type Outbox interface {
	// ClaimJob claims the pending job of one of kinds that is due at now,
	// has waited longest and is not held by another worker, passing over
	// the jobs whose ids are in except, and holds it until now + lease:
	// no other claim hands it out meanwhile. It returns an
	// *securetextd.Error with Code ENOTFOUND when none is due. No kinds
	// means any kind; a Worker always names its kinds.
	ClaimJob(ctx context.Context, now time.Time, lease time.Duration, except []int64, kinds ...string) (*securetextd.Job, error)
	// NextDueExcept returns when the earliest pending job of one of kinds,
	// not in except, falls due (a claimed one: when its lease ends), and
	// false when there is no such job.
	NextDueExcept(ctx context.Context, except []int64, kinds ...string) (time.Time, bool, error)
	// CompleteClaim records that the claimed job was carried out.
	CompleteClaim(ctx context.Context, job *securetextd.Job) error
	// RetryClaim counts a failed attempt and makes the job due again at at.
	RetryClaim(ctx context.Context, job *securetextd.Job, at time.Time, reason string) error
	// FailClaim gives up on the job for good.
	FailClaim(ctx context.Context, job *securetextd.Job, reason string) error
	// Each of the three is an *securetextd.Error with Code ECONFLICT when
	// the job is no longer pending, or was claimed again by another
	// worker after this claim's lease ran out: the outcome is then the
	// other worker's to record.

	// Wake returns a channel that is closed when the next job is
	// committed (of any kind) by this process, so that workers need not
	// poll. Every waiter wakes; the channel is then replaced, so a worker
	// calls Wake again each time it waits, before it asks NextDue. Jobs
	// that other processes commit are found by polling (Worker.Poll).
	Wake() <-chan struct{}
}

// MailWaker is an Outbox whose commits that add only texts need not wake
// a worker that sends no texts: WakeMail's channel is Wake's for the
// other kinds of jobs. A worker for mail alone waits on it, and so does
// not look for work at every inbound message's commit.
type MailWaker interface {
	WakeMail() <-chan struct{}
}

// SMSProvider sends one text.
//
// A *PermanentError means that retrying cannot help: the number does not
// exist, the credentials are wrong, the content is refused. Any other error
// is taken as temporary and the text is tried again later. Errors must not
// quote the text, which carries a secret link.
type SMSProvider interface {
	SendSMS(ctx context.Context, to securetextd.Phone, text string) error
}

// PermanentError is a failure that sending again would only repeat.
type PermanentError struct {
	Reason string
}

func (e *PermanentError) Error() string { return e.Reason }

// ThrottledError is a temporary failure at which the provider asked to
// slow down. It concerns the whole account, not the one text: no text goes
// out before After has passed, and this one is tried again then.
type ThrottledError struct {
	Reason string
	// After is how long the provider asked to wait (HTTP Retry-After);
	// zero when it did not say, and the usual back-off applies.
	After time.Duration
}

func (e *ThrottledError) Error() string { return e.Reason }

// IsPermanent reports whether err, or an error it wraps, is a
// *PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
