package notify

import (
	"context"
	"strconv"

	"github.com/securetextd/securetextd"
)

// Tracking texts: an SMS provider that says which ids it gave a text, and
// echoes a reference of ours in its delivery reports, lets the gateway
// record what became of each text (delivered, failed) when the report
// comes back — to the portal's /hooks/vonage/dlr.

// TrackingSMSProvider is an SMSProvider that can also return the
// provider's ids of a text (one per SMS segment) and pass ref, a reference
// of ours (the outbox job id), for its delivery reports to echo. *Vonage
// implements it.
type TrackingSMSProvider interface {
	SMSProvider
	SendTrackedSMS(ctx context.Context, to securetextd.Phone, text, ref string) (ids []string, err error)
}

// TextRecorder is an Outbox that keeps the provider's ids of a text when
// it completes the claimed job. *store.DB implements it; an Outbox without
// it has its text jobs completed with CompleteClaim.
type TextRecorder interface {
	CompleteTextClaim(ctx context.Context, job *securetextd.Job, providerIDs []string) error
}

// sendSMS sends a text job's text, through SendTrackedSMS when the
// provider tracks texts, and keeps the ids for complete.
func (w *worker) sendSMS(ctx context.Context, job *securetextd.Job, to securetextd.Phone, text string) error {
	w.ids = nil
	if t, ok := w.SMS.(TrackingSMSProvider); ok {
		ids, err := t.SendTrackedSMS(ctx, to, text, strconv.FormatInt(job.ID, 10))
		w.ids = ids
		return err
	}
	return w.SMS.SendSMS(ctx, to, text)
}

// complete records that job was carried out, with the provider's ids of a
// text when the outbox keeps them.
func (w *worker) complete(ctx context.Context, job *securetextd.Job, ids []string) error {
	if r, ok := w.Outbox.(TextRecorder); ok && job.Kind == securetextd.JobKindText {
		return r.CompleteTextClaim(ctx, job, ids)
	}
	return w.Outbox.CompleteClaim(ctx, job)
}
