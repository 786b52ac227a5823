package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/emersion/go-message/mail"

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

// A recipient reached by email gets the code by email (JobKindEmailCode,
// the mail drain): the same code under the same rules, as the notice
// email comes (email_notice.go): from the organization, text and HTML,
// Auto-Submitted, DKIM-signed with mail.dkim_*. It names who is asking
// and why, and nothing about any message. The code stays out of the
// subject, which mail programs show in more places than the body.

// CodeEmailSubject is the subject of the email that carries a code.
func CodeEmailSubject(org string) string {
	return "Your code for " + org + " secure messages"
}

// CodeEmailText is the plain-text part of the email that carries a code.
func CodeEmailText(org, code string) string {
	return code + " is your " + org + " code to open your secure messages.\n\n" +
		"Type it on the page that asked for it. It works for " +
		strconv.Itoa(int(CodeValidFor.Minutes())) + " minutes, once. Never share it: " +
		org + " will never ask you for it.\n\n" +
		"If you did not ask for a code, someone may have your link: you can ignore this email, " +
		"and your messages stay closed without the code.\n"
}

// codeHTML is the HTML part of the email that carries a code, laid out as
// the notice's (noticeHTML).
var codeHTML = template.Must(template.New("code").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{.Org}}</title></head>
<body style="margin:0;padding:0;background:#f4f4f4;font-family:Arial,Helvetica,sans-serif;color:#222">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0"><tr><td align="center" style="padding:24px 12px">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:560px;background:#ffffff;border-radius:6px">
<tr><td style="background:{{.Color}};color:{{.OnColor}};padding:16px 24px;font-size:20px;font-weight:bold;border-radius:6px 6px 0 0">{{.Org}}</td></tr>
<tr><td style="padding:24px;font-size:16px;line-height:1.5">
<p style="margin:0 0 16px">Your code to open your secure messages from {{.Org}}:</p>
<p style="margin:0 0 24px;font-size:32px;font-weight:bold;letter-spacing:6px;font-family:'Courier New',monospace">{{.Code}}</p>
<p style="margin:0 0 16px;font-size:14px">Type it on the page that asked for it. It works for {{.Minutes}} minutes, once. Never share it: {{.Org}} will never ask you for it.</p>
<p style="margin:0;font-size:14px;color:#555">If you did not ask for a code, someone may have your link: you can ignore this email, and your messages stay closed without the code.</p>
</td></tr></table></td></tr></table>
</body></html>
`))

// codeEmail builds the email of a JobKindEmailCode job.
func (m *Mailer) codeEmail(job *securetextd.Job) (*outgoing, error) {
	var cj securetextd.CodeJob
	if err := json.Unmarshal(job.Payload, &cj); err != nil {
		return nil, &PermanentError{Reason: fmt.Sprintf("mail: unreadable code job: %v", err)}
	}
	if !cj.To.IsEmail() || len(cj.Code) != securetextd.CodeDigits {
		return nil, &PermanentError{Reason: "mail: code job without address or code"}
	}
	if !job.Created.IsZero() && time.Since(job.Created) >= CodeValidFor {
		// As for a text (code): the recipient asks for a new one.
		return nil, &PermanentError{Reason: "mail: the code expired before it could be sent"}
	}
	to, err := mail.ParseAddress(string(cj.To))
	if err != nil {
		return nil, &PermanentError{Reason: "mail: code job: the recipient's address is not valid"}
	}
	org := oneLine(m.c.Org)
	d := struct {
		Org, Code, Color, OnColor string
		Minutes                   int
	}{org, cj.Code, m.c.Color, m.c.OnColor, int(CodeValidFor.Minutes())}
	if d.Color == "" {
		d.Color, d.OnColor = "#1d4e89", "#ffffff"
	}
	var html bytes.Buffer
	if err := codeHTML.Execute(&html, d); err != nil {
		return nil, fmt.Errorf("mail: code email: %w", err)
	}

	var h mail.Header
	h.SetDate(time.Now())
	h.SetAddressList("From", []*mail.Address{{Name: oneLine(m.c.Org + " secure messages"), Address: m.c.From}})
	h.SetAddressList("To", []*mail.Address{{Address: to.Address}})
	h.SetSubject(oneLine(CodeEmailSubject(org)))
	// Stable across attempts, as the notice's.
	h.SetMessageID(fmt.Sprintf("code.%d@%s", job.ID, m.host))
	h.Set("Auto-Submitted", "auto-generated")
	h.SetContentType("multipart/alternative", nil)
	body, err := m.alternative(h, []byte(CodeEmailText(org, cj.Code)), html.Bytes())
	if err != nil {
		return nil, fmt.Errorf("mail: code email: %w", err)
	}
	return &outgoing{to: to.Address, write: func(w io.Writer) error {
		_, err := w.Write(body)
		return err
	}}, nil
}
