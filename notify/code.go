package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/securetextd/securetextd"
)

// CodeValidFor is how long a one-time code works, as its text says. The
// store holds it to that (store.CodeValidFor); notify does not import
// the store, so the daemon checks that the two agree when it is compiled
// (cmd/securetextd/config_factor.go).
const CodeValidFor = 10 * time.Minute

// CodeText is the text that carries a one-time code. It names who is
// asking and why, and nothing about any message; the code comes first,
// so that it shows on a lock screen's preview and a phone offers it to
// the form (autocomplete="one-time-code"). It fits one GSM-7 segment with
// an organization name of up to 40 characters.
func CodeText(org, code string) string {
	return code + " is your " + org + " code to open your secure messages. It works for " +
		strconv.Itoa(int(CodeValidFor.Minutes())) + " minutes. Never share it."
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
	_, org := w.textSettings()
	return log, w.sendSMS(ctx, job, cj.To, CodeText(org, cj.Code))
}
