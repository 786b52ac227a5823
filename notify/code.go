package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/locale"
)

// CodeValidFor is how long a one-time code works, as its text says. The
// store holds it to that (store.CodeValidFor); notify does not import
// the store, so the daemon checks that the two agree when it is compiled
// (cmd/securetextd/config_factor.go).
const CodeValidFor = 10 * time.Minute

// CodeText is the text that carries a one-time code, in language tag
// (the source language when the catalogue lacks it). It names who is
// asking and why, and nothing about any message; the code comes first,
// so that it shows on a lock screen's preview and a phone offers it to
// the form (autocomplete="one-time-code"). In English it fits one GSM-7
// segment with an organization name of up to 40 characters; in Spanish
// "código" makes it UCS-2, two segments (TestCodeTextSegments).
func CodeText(tag, org, code string) string {
	cat, err := locale.Load()
	if err != nil {
		return code
	}
	l := cat.Printer(tag)
	return l.T("SMSCode", "Code", code, "Org", org, "Valid", l.Duration(CodeValidFor))
}

// code sends a one-time code job (securetextd.CodeJob). Its slot of the
// SMS rate has come already, as for any text (slots.go).
func (w *worker) code(ctx context.Context, log *slog.Logger, job *securetextd.Job) (*slog.Logger, error) {
	var cj securetextd.CodeJob
	if err := json.Unmarshal(job.Payload, &cj); err != nil {
		return log, &PermanentError{Reason: fmt.Sprintf("unreadable code job: %v", err)}
	}
	if cj.To == "" || len(cj.Code) != securetextd.CodeDigits {
		return log, &PermanentError{Reason: "code job without phone or code"}
	}
	log = log.With("to", cj.To.Masked())
	if !job.Created.IsZero() && time.Since(job.Created) >= CodeValidFor {
		// Held up past its validity (a provider down, a long queue): it
		// would only confuse. The recipient asks for a new one.
		return log, &PermanentError{Reason: "the code expired before it could be sent"}
	}
	_, org, tag := w.textIn(cj.Language)
	return log, w.sendSMS(ctx, job, cj.To, CodeText(tag, org, cj.Code))
}
