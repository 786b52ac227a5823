// Package notify tells people that something is waiting for them. It owns
// the outbox worker, which drains the jobs that the store commits together
// with each message; the SMS providers that carry the texts (Vonage, and a
// console provider for development); and the message templates that say
// what a text contains. Outgoing mail (replies, read receipts, password
// resets) will join it.
//
// A text never carries message content: only the organization's name and
// a link to the portal. The link holds a secret token, so neither the text
// nor a full phone number is ever logged.
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
type Outbox interface {
	// NextJob returns the pending job that is due at now and has waited
	// longest, or an *securetextd.Error with Code ENOTFOUND when none is due.
	NextJob(ctx context.Context, now time.Time) (*securetextd.Job, error)
	// NextDue returns when the earliest pending job falls due, and false
	// when there is no pending job at all.
	NextDue(ctx context.Context) (time.Time, bool, error)
	// CompleteJob records that the job was carried out.
	CompleteJob(ctx context.Context, id int64) error
	// RetryJob counts a failed attempt and makes the job due again at at.
	RetryJob(ctx context.Context, id int64, at time.Time, reason string) error
	// FailJob gives up on the job for good.
	FailJob(ctx context.Context, id int64, reason string) error
	// Wake returns a channel that receives after new jobs are committed,
	// so that the worker need not poll.
	Wake() <-chan struct{}
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

// IsPermanent reports whether err, or an error it wraps, is a
// *PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
