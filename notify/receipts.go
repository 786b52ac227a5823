package notify

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/securetextd/securetextd"
)

// The sender's notices: what became of a message they sent. Each goes to
// the conversation's checked sender address — never to an address taken
// from the message, such as Disposition-Notification-To, which anyone may
// set and which would make the gateway a reflector of mail at strangers —
// and each threads under the original (In-Reply-To and References carry
// its Message-ID). They hold nothing the sender did not write: the
// subject, and the phone number masked.
//
//   - JobKindNotice: the text went out, with a link that withdraws the
//     message at once (/revoke/{token} on the portal).
//   - JobKindMDN: an RFC 8098 message disposition notification, for a
//     message that asked for one: multipart/report with a human-readable
//     part and a message/disposition-notification part saying
//     "automatic-action/MDN-sent-automatically; displayed".
//   - JobKindRead: the same news in plain words, when the policy is to
//     send receipts to every sender (mail.read_receipts = "always").
//   - JobKindUndelivered: the text could not be delivered.

// noticeTime writes a time for the sender: "14:32 UTC on 2 March 2026".
func noticeTime(t time.Time) string {
	return t.UTC().Format("15:04 MST on 2 January 2006")
}

// notice builds the email of a notice job.
func (m *Mailer) notice(ctx context.Context, job *securetextd.Job, mj securetextd.MailJob) (*outgoing, error) {
	switch job.Kind {
	case securetextd.JobKindNotice, securetextd.JobKindMDN, securetextd.JobKindRead, securetextd.JobKindUndelivered:
	default:
		return nil, &PermanentError{Reason: fmt.Sprintf("mail: unknown job kind %q", job.Kind)}
	}
	if mj.MessageID == 0 || mj.ConversationID == 0 {
		return nil, &PermanentError{Reason: fmt.Sprintf("mail: %s job without message or conversation", job.Kind)}
	}
	if job.Kind == securetextd.JobKindNotice && mj.Token == "" {
		return nil, &PermanentError{Reason: "mail: notice job without its revocation token"}
	}
	conv, err := m.st.Conversation(ctx, mj.ConversationID)
	if err != nil {
		return nil, storeError(fmt.Sprintf("conversation %d", mj.ConversationID), err)
	}
	orig, err := m.st.ConversationMessage(ctx, conv.ID, mj.MessageID)
	if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
		orig, err = nil, nil
	}
	if err != nil {
		return nil, storeError(fmt.Sprintf("message %d of conversation %d", mj.MessageID, conv.ID), err)
	}
	if orig == nil || orig.Direction != securetextd.Inbound {
		return nil, &PermanentError{Reason: fmt.Sprintf("mail: message %d is not a message of conversation %d", mj.MessageID, conv.ID)}
	}
	to, err := mail.ParseAddress(conv.Sender)
	if err != nil {
		return nil, &PermanentError{Reason: fmt.Sprintf("mail: conversation %d has no valid sender address", conv.ID)}
	}
	when := job.Created
	if when.IsZero() {
		when = time.Now()
	}

	var h mail.Header
	h.SetDate(time.Now())
	h.SetAddressList("From", []*mail.Address{{Name: oneLine(m.c.Org + " secure messages"), Address: m.c.From}})
	rcpt := &mail.Address{Address: to.Address}
	if strings.EqualFold(orig.Sender, to.Address) {
		rcpt.Name = oneLine(orig.SenderName)
	}
	h.SetAddressList("To", []*mail.Address{rcpt})
	var refs []string
	for _, id := range orig.References {
		if validMsgID(id) {
			refs = append(refs, id)
		}
	}
	if validMsgID(orig.MessageID) {
		h.SetMsgIDList("In-Reply-To", []string{orig.MessageID})
		refs = append(refs, orig.MessageID)
	}
	if len(refs) > 0 {
		h.SetMsgIDList("References", refs)
	}
	// Stable across attempts, so that a notice sent twice is one message.
	h.SetMessageID(fmt.Sprintf("%s.%d.%d.%d@%s", job.Kind, conv.ID, orig.ID, job.ID, m.host))
	// RFC 3834: made by a program, not to be answered by another.
	h.Set("Auto-Submitted", "auto-replied")

	subject := strings.TrimSpace(oneLine(orig.Subject))
	quoted := "your secure message"
	if subject != "" {
		quoted = "your secure message \u201c" + subject + "\u201d"
	} else {
		subject = "your secure message"
	}
	phone := conv.Phone.Masked()
	org := oneLine(m.c.Org)
	ref := fmt.Sprintf("Reference: conversation %d, message %d.", conv.ID, orig.ID)

	// An email recipient's link went by email, not by text (email_notice.go).
	texted, textedTitle, number := "texted", "Texted", "number"
	if conv.Phone.IsEmail() {
		texted, textedTitle, number = "emailed", "Sent", "address"
	}
	var body string
	switch job.Kind {
	case securetextd.JobKindNotice:
		h.SetSubject(textedTitle + ": " + subject)
		link := strings.TrimSuffix(m.c.PublicURL, "/") + "/revoke/" + url.PathEscape(mj.Token)
		body = fmt.Sprintf("%s was "+texted+" to %s at %s. The recipient reads it on %s's secure portal after entering their password.\n\n"+
			"Sent to the wrong "+number+", or by mistake? This link withdraws it, so that it can no longer be opened:\n\n%s\n\n"+
			"Withdrawing cannot be undone. Anyone who has this email can use the link: do not forward it.\n\n%s\n",
			capitalize(quoted), phone, noticeTime(when), org, link, ref)
	case securetextd.JobKindUndelivered:
		h.SetSubject("Not delivered: " + subject)
		body = fmt.Sprintf("%s could not be "+texted+" to %s: the carrier, the SMS provider or the mail relay reported it as undelivered at %s.\n\n"+
			"The recipient has not received a link to it. Check the number (it may be wrong, out of service, or unable to receive texts), then send the message again.\n\n%s\n",
			capitalize(quoted), phone, noticeTime(when), ref)
	case securetextd.JobKindRead:
		h.SetSubject("Read: " + subject)
		body = fmt.Sprintf("%s to %s was opened at %s.\n\n"+
			"This means that the message was shown on the recipient's screen after they entered their password; it is no guarantee that it was read or understood.\n\n%s\n",
			capitalize(quoted), phone, noticeTime(when), ref)
	case securetextd.JobKindMDN:
		h.SetSubject("Read: " + subject)
		return &outgoing{to: to.Address, write: func(w io.Writer) error {
			return m.writeMDN(w, h, conv, orig, quoted, phone, when, ref)
		}}, nil
	}
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	return plainMail(to.Address, h, body), nil
}

// writeMDN writes an RFC 8098 message disposition notification: a
// multipart/report with a part for people and the machine-readable
// message/disposition-notification. The original's header is not returned
// in a third part: the gateway keeps none of it in clear.
func (m *Mailer) writeMDN(w io.Writer, h mail.Header, conv *securetextd.Conversation, orig *securetextd.Message, quoted, phone string, when time.Time, ref string) error {
	h.SetContentType("multipart/report", map[string]string{"report-type": "disposition-notification"})
	mw, err := message.CreateWriter(w, h.Header)
	if err != nil {
		return err
	}
	var th message.Header
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	th.Set("Content-Transfer-Encoding", "quoted-printable")
	tw, err := mw.CreatePart(th)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(tw, "The message you sent, %s, was displayed to its recipient %s at %s.\n\n"+
		"Note: this is no guarantee that the message has been read or understood.\n\n%s\n",
		quoted, phone, noticeTime(when), ref); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}

	var dh message.Header
	dh.SetContentType("message/disposition-notification", nil)
	dw, err := mw.CreatePart(dh)
	if err != nil {
		return err
	}
	// The recipient is the gateway's address for the phone, as the
	// sender's mail named it: <digits>@domain; an email recipient's own.
	recipient := "rfc822;" + conv.Phone.Digits() + "@" + m.c.Domain
	if conv.Phone.IsEmail() {
		recipient = "rfc822;" + string(conv.Phone)
	}
	fields := []string{
		"Reporting-UA: " + m.hello + "; securetextd " + oneLine(securetextd.Version),
		"Original-Recipient: " + recipient,
		"Final-Recipient: " + recipient,
	}
	if validMsgID(orig.MessageID) {
		fields = append(fields, "Original-Message-ID: <"+orig.MessageID+">")
	}
	fields = append(fields, "Disposition: automatic-action/MDN-sent-automatically; displayed")
	if _, err := io.WriteString(dw, strings.Join(fields, "\r\n")+"\r\n"); err != nil {
		return err
	}
	if err := dw.Close(); err != nil {
		return err
	}
	return mw.Close()
}

// capitalize makes the first letter upper case: sentences start with
// "your secure message …".
func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
