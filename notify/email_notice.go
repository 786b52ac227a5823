package notify

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/securetextd/securetextd"
)

// The notice email of an email recipient (JobKindEmail): what a text is to
// a phone. It says who is writing (the checked sender, with the display
// name they gave) through which organization, and gives the link to the
// same portal; the message itself stays there. It carries no subject,
// body or file name of the message: the email crosses servers the
// organization does not run, and sits in an inbox that others may read.
// It has a plain-text and an HTML part (the organization's colour, a
// button), Auto-Submitted: auto-generated (RFC 3834: no auto-replies),
// a Message-ID on smtp.hostname stable across attempts, and, with
// mail.dkim_* set, a DKIM signature of the organization's domain, so that
// the recipient's provider can tell it from a phishing copy.

// DKIM is how the Mailer signs the notice emails (mail.dkim_domain,
// mail.dkim_selector, mail.dkim_key).
type DKIM struct {
	Domain   string
	Selector string
	// Signer is the private key: *rsa.PrivateKey or ed25519.PrivateKey.
	Signer crypto.Signer
}

// dkimHeaderKeys are the fields a notice's signature covers: each that
// the recipient reads or that shapes the body, and Auto-Submitted.
var dkimHeaderKeys = []string{"From", "To", "Subject", "Date", "Message-ID",
	"Auto-Submitted", "MIME-Version", "Content-Type"}

// emailNotice builds the notice email of job, a TextJob to an address.
func (m *Mailer) emailNotice(ctx context.Context, job *securetextd.Job) (*outgoing, error) {
	var tj securetextd.TextJob
	if err := json.Unmarshal(job.Payload, &tj); err != nil {
		return nil, &PermanentError{Reason: fmt.Sprintf("mail: unreadable email job: %v", err)}
	}
	if !tj.To.IsEmail() || tj.Token == "" || tj.ConversationID == 0 {
		return nil, &PermanentError{Reason: "mail: email job without address, token or conversation"}
	}
	to, err := mail.ParseAddress(string(tj.To))
	if err != nil {
		return nil, &PermanentError{Reason: "mail: email job: the recipient's address is not valid"}
	}
	conv, err := m.st.Conversation(ctx, tj.ConversationID)
	if err != nil {
		return nil, storeError(fmt.Sprintf("conversation %d", tj.ConversationID), err)
	}
	// Who is writing: the checked sender, and the display name shown
	// beside it (the smtp package keeps only one that holds no address).
	var name string
	msg, err := m.st.ConversationMessage(ctx, conv.ID, tj.MessageID)
	switch {
	case securetextd.ErrorCode(err) == securetextd.ENOTFOUND:
	case err != nil:
		return nil, storeError(fmt.Sprintf("message %d of conversation %d", tj.MessageID, conv.ID), err)
	case strings.EqualFold(msg.Sender, conv.Sender):
		name = oneLine(msg.SenderName)
	}
	n := noticeData{
		Org:     oneLine(m.c.Org),
		Name:    name,
		Sender:  oneLine(conv.Sender),
		Link:    linkFor(m.c.PublicURL, url.PathEscape(tj.Token)),
		Color:   m.c.Color,
		OnColor: m.c.OnColor,
	}
	if n.Color == "" {
		n.Color, n.OnColor = "#1d4e89", "#ffffff"
	}
	writer := n.Sender
	if n.Name != "" {
		writer = n.Name + " (" + n.Sender + ")"
	}

	l := m.printer(recipientLanguage(ctx, m.log, m.st, tj.To, tj.Language))
	n.Lang = l.Tag
	n.Sent = l.T("NoticeSent", "Writer", writer, "Org", n.Org)
	n.Open, n.Button, n.OrOpen = l.T("NoticeOpen"), l.T("NoticeButton"), l.T("NoticeOrOpen")
	n.Stays, n.Ignore = l.T("NoticeStays", "Org", n.Org), l.T("NoticeIgnore")

	var h mail.Header
	h.SetDate(time.Now())
	h.SetAddressList("From", []*mail.Address{{Name: oneLine(l.T("MailFromName", "Org", m.c.Org)), Address: m.c.From}})
	h.SetAddressList("To", []*mail.Address{{Address: to.Address}})
	h.SetSubject(oneLine(l.T("NoticeSubject", "Org", m.c.Org)))
	h.Set("Content-Language", l.Tag)
	// Stable across attempts: a notice sent twice is one to the reader's
	// mail program.
	h.SetMessageID(fmt.Sprintf("link.%d.%d@%s", conv.ID, job.ID, m.host))
	h.Set("Auto-Submitted", "auto-generated")
	h.SetContentType("multipart/alternative", nil)

	var plain bytes.Buffer
	fmt.Fprintf(&plain, "%s\n\n%s\n\n%s\n\n%s\n\n%s\n", n.Sent, n.Open, n.Link, n.Stays, n.Ignore)
	var html bytes.Buffer
	if err := noticeHTML.Execute(&html, n); err != nil {
		return nil, fmt.Errorf("mail: email notice: %w", err)
	}

	body, err := m.alternative(h, plain.Bytes(), html.Bytes())
	if err != nil {
		return nil, fmt.Errorf("mail: email notice: %w", err)
	}
	return &outgoing{to: to.Address, write: func(w io.Writer) error {
		_, err := w.Write(body)
		return err
	}}, nil
}

// alternative returns the email of header h (whose Content-Type is
// multipart/alternative) with a plain-text and an HTML part, quoted-
// printable, DKIM-signed with mail.dkim_* (sign): an email recipient's
// notice, or their one-time code (code.go).
func (m *Mailer) alternative(h mail.Header, plain, html []byte) ([]byte, error) {
	var msg bytes.Buffer
	mw, err := message.CreateWriter(&msg, h.Header)
	if err != nil {
		return nil, err
	}
	for _, p := range []struct {
		mediaType string
		body      []byte
	}{{"text/plain", plain}, {"text/html", html}} {
		var ph message.Header
		ph.SetContentType(p.mediaType, map[string]string{"charset": "utf-8"})
		ph.Set("Content-Transfer-Encoding", "quoted-printable")
		pw, err := mw.CreatePart(ph)
		if err != nil {
			return nil, err
		}
		pw.Write(p.body)
		if err := pw.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return m.sign(msg.Bytes())
}

// sign returns msg with a DKIM-Signature of the configured domain at its
// head, or msg as it is without mail.dkim_*. A notice is a few KiB, so it
// is signed whole in memory; replies, which carry files, are not signed
// here.
func (m *Mailer) sign(msg []byte) ([]byte, error) {
	if m.c.DKIM == nil {
		return msg, nil
	}
	var out bytes.Buffer
	out.Grow(len(msg) + 1024)
	err := dkim.Sign(&out, bytes.NewReader(msg), &dkim.SignOptions{
		Domain:                 m.c.DKIM.Domain,
		Selector:               m.c.DKIM.Selector,
		Signer:                 m.c.DKIM.Signer,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             dkimHeaderKeys,
	})
	if err != nil {
		// A key that cannot sign will not sign on the next attempt.
		return nil, &PermanentError{Reason: fmt.Sprintf("mail: dkim: %v", err)}
	}
	return out.Bytes(), nil
}

// checkDKIM refuses an incomplete DKIM configuration.
func checkDKIM(d *DKIM) error {
	if d == nil {
		return nil
	}
	if d.Domain == "" || d.Selector == "" || d.Signer == nil {
		return errors.New("mail: dkim needs a domain, a selector and a key")
	}
	return nil
}

// noticeData is what a notice says, each value on one line.
type noticeData struct {
	Org, Name, Sender, Link string
	Color, OnColor          string // #RRGGBB, checked at start (brand.color)
	// The words, in the recipient's language (Lang).
	Lang, Sent, Open, Button, OrOpen, Stays, Ignore string
}

// noticeHTML is the HTML part: a table layout and inline styles, as mail
// programs ignore style sheets; html/template escapes every value (the
// colour is a checked #RRGGBB, passed as a CSS value).
var noticeHTML = template.Must(template.New("notice").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{.Org}}</title></head>
<body style="margin:0;padding:0;background:#f4f4f4;font-family:Arial,Helvetica,sans-serif;color:#222">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0"><tr><td align="center" style="padding:24px 12px">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:560px;background:#ffffff;border-radius:6px">
<tr><td style="background:{{.Color}};color:{{.OnColor}};padding:16px 24px;font-size:20px;font-weight:bold;border-radius:6px 6px 0 0">{{.Org}}</td></tr>
<tr><td style="padding:24px;font-size:16px;line-height:1.5">
<p style="margin:0 0 16px">{{.Sent}}</p>
<p style="margin:0 0 24px"><a href="{{.Link}}" style="display:inline-block;background:{{.Color}};color:{{.OnColor}};padding:12px 24px;border-radius:4px;text-decoration:none;font-weight:bold">{{.Button}}</a></p>
<p style="margin:0 0 16px;font-size:14px">{{.OrOpen}} <a href="{{.Link}}">{{.Link}}</a></p>
<p style="margin:0 0 16px;font-size:14px">{{.Stays}}</p>
<p style="margin:0;font-size:14px;color:#555">{{.Ignore}}</p>
</td></tr></table></td></tr></table>
</body></html>
`))

// replyTo is the address that answers into conversation conv, for the
// Reply-To of the emails that carry its recipient's replies:
// <phone digits>+<id>@Domain, or email+<id>@Domain for an email
// recipient, whose address cannot stand in a local part (the smtp
// package reads both).
func (m *Mailer) replyTo(conv *securetextd.Conversation) string {
	if conv.Phone.IsEmail() {
		return fmt.Sprintf("email+%d@%s", conv.ID, m.c.Domain)
	}
	return fmt.Sprintf("%s+%d@%s", conv.Phone.Digits(), conv.ID, m.c.Domain)
}
