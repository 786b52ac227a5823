package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"time"

	"github.com/emersion/go-message/mail"

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

// A recipient reached by email gets the code by email (JobKindEmailCode,
// the mail drain): the same code under the same rules, as the notice
// email comes (email_notice.go): from the organization, text and HTML,
// Auto-Submitted, DKIM-signed with mail.dkim_*. It names who is asking
// and why, and nothing about any message. The code stays out of the
// subject, which mail programs show in more places than the body.

// codeHTML is the HTML part of the email that carries a code, laid out as
// the notice's (noticeHTML).
var codeHTML = template.Must(template.New("code").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{.Org}}</title></head>
<body style="margin:0;padding:0;background:#f4f4f4;font-family:Arial,Helvetica,sans-serif;color:#222">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0"><tr><td align="center" style="padding:24px 12px">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:560px;background:#ffffff;border-radius:6px">
<tr><td style="background:{{.Color}};color:{{.OnColor}};padding:16px 24px;font-size:20px;font-weight:bold;border-radius:6px 6px 0 0">{{.Org}}</td></tr>
<tr><td style="padding:24px;font-size:16px;line-height:1.5">
<p style="margin:0 0 16px">{{.Intro}}</p>
<p style="margin:0 0 24px;font-size:32px;font-weight:bold;letter-spacing:6px;font-family:'Courier New',monospace">{{.Code}}</p>
<p style="margin:0 0 16px;font-size:14px">{{.Use}}</p>
<p style="margin:0;font-size:14px;color:#555">{{.Ignore}}</p>
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
	l := m.printer(cj.Language)
	valid := l.Duration(CodeValidFor)
	d := struct {
		Lang, Org, Code, Color, OnColor string
		Intro, Use, Ignore              string
	}{
		l.Tag, org, cj.Code, m.c.Color, m.c.OnColor,
		l.T("CodeEmailIntro", "Org", org), l.T("CodeEmailUse", "Org", org, "Valid", valid), l.T("CodeEmailIgnore"),
	}
	if d.Color == "" {
		d.Color, d.OnColor = "#1d4e89", "#ffffff"
	}
	var html bytes.Buffer
	if err := codeHTML.Execute(&html, d); err != nil {
		return nil, fmt.Errorf("mail: code email: %w", err)
	}

	var h mail.Header
	h.SetDate(time.Now())
	h.SetAddressList("From", []*mail.Address{{Name: oneLine(l.T("MailFromName", "Org", m.c.Org)), Address: m.c.From}})
	h.SetAddressList("To", []*mail.Address{{Address: to.Address}})
	h.SetSubject(oneLine(l.T("CodeEmailSubject", "Org", org)))
	h.Set("Content-Language", l.Tag)
	// Stable across attempts, as the notice's.
	h.SetMessageID(fmt.Sprintf("code.%d@%s", job.ID, m.host))
	h.Set("Auto-Submitted", "auto-generated")
	h.SetContentType("multipart/alternative", nil)
	// The code comes first, as in the text: a mail program's preview shows it.
	plain := fmt.Sprintf("%s\n\n%s\n\n%s\n", l.T("CodeEmailFirst", "Code", cj.Code, "Org", org), d.Use, d.Ignore)
	body, err := m.alternative(h, []byte(plain), html.Bytes())
	if err != nil {
		return nil, fmt.Errorf("mail: code email: %w", err)
	}
	return &outgoing{to: to.Address, write: func(w io.Writer) error {
		_, err := w.Write(body)
		return err
	}}, nil
}
