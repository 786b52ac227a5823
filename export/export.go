// Package export writes a conversation as standard mail, for a subpoena,
// an audit or a patient's request: each message, in both directions, as
// an RFC 5322 message with its body and files opened from the sealed
// store, and a text part with the access history of that message from the
// audit trail. An mbox (mboxrd) holds them all in one file; an eml
// directory holds one file per message. Both open in a mail program.
//
// The package writes to an io.Writer and never touches the file system or
// holds a message whole: each part streams from the store's decrypting
// reader through its encoder to w. Where the bytes go, sealed or not, is
// the caller's (cmd/securetextd).
//
// The output of a conversation is the same each time it is written, as
// long as no message was added and no audit row names one of its messages
// since: boundaries come from message ids (a boundary starting with "=_"
// cannot occur in quoted-printable or base64 text), dates from the store.
package export

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// Source is what an export reads. *store.DB implements it.
type Source interface {
	// ConversationRecord returns a conversation's messages and each
	// message's audit rows, read in one snapshot.
	ConversationRecord(ctx context.Context, id int64) (*store.ConversationRecord, error)
	// OpenPart returns the plaintext of one part of a message.
	OpenPart(ctx context.Context, messageID int64, index int) (io.ReaderAt, int64, error)
}

// Writer writes the messages of one conversation record.
type Writer struct {
	Source Source
	Record *store.ConversationRecord
	// Domain is the gateway's mail domain ("secure.text"): a phone
	// appears as "+12125550123@secure.text", the address its replies
	// come from.
	Domain string
}

// phoneAddress is the mail address of the conversation's phone.
func (x *Writer) phoneAddress() string {
	return string(x.Record.Conversation.Phone) + "@" + x.Domain
}

// FileName is the name of message i (0-based, in the record's order) in an
// eml directory: "0001-message-12.eml". Names sort in the order of the
// conversation.
func (x *Writer) FileName(i int) string {
	return fmt.Sprintf("%04d-message-%d.eml", i+1, x.Record.Messages[i].ID)
}

// WriteMessage writes message i of the record to w as one RFC 5322
// message with CRLF line endings.
func (x *Writer) WriteMessage(ctx context.Context, w io.Writer, i int) error {
	m := x.Record.Messages[i]
	c := x.Record.Conversation
	sender := &mail.Address{Name: m.SenderName, Address: m.Sender}
	to := &mail.Address{Address: x.phoneAddress()}
	subject := m.Subject
	if m.Direction == securetextd.Reply {
		sender, to = to, &mail.Address{Address: c.Sender}
		if subject == "" {
			subject = "Reply"
			if s := x.firstSubject(); s != "" {
				subject = "Re: " + s
			}
		}
	}
	id := m.MessageID
	if id == "" {
		id = fmt.Sprintf("securetextd-message-%d@%s", m.ID, x.Domain)
	}
	dir := "inbound"
	if m.Direction == securetextd.Reply {
		dir = "reply"
	}
	// go-message writes the fields last set first: they are set from
	// the bottom up, so that a reader sees Date, From, To and Subject on
	// top.
	var h mail.Header
	h.SetContentType("multipart/mixed", map[string]string{"boundary": boundary(m.ID)})
	if m.Auth != "" {
		h.Set("X-Securetextd-Auth", m.Auth)
	}
	h.Set("X-Securetextd-Direction", dir)
	h.Set("X-Securetextd-Message", strconv.FormatInt(m.ID, 10))
	h.Set("X-Securetextd-Conversation", strconv.FormatInt(c.ID, 10))
	if n := len(m.References); n > 0 {
		h.SetMsgIDList("References", m.References)
		h.SetMsgIDList("In-Reply-To", m.References[n-1:])
	}
	h.SetMessageID(id)
	h.SetSubject(subject)
	h.SetAddressList("To", []*mail.Address{to})
	h.SetAddressList("From", []*mail.Address{sender})
	h.SetDate(m.Received)
	mw, err := message.CreateWriter(w, h.Header)
	if err != nil {
		return fmt.Errorf("export: message %d: %w", m.ID, err)
	}
	if len(m.Parts) == 0 {
		if err := writeText(mw, "text/plain", "The content of this message was deleted (retention, or its sender's request); its access history follows.\r\n",
			"X-Securetextd-Purged", "yes"); err != nil {
			return fmt.Errorf("export: message %d: %w", m.ID, err)
		}
	}
	for idx, p := range m.Parts {
		if err := x.writePart(ctx, mw, m.ID, idx, p); err != nil {
			return fmt.Errorf("export: message %d part %d: %w", m.ID, idx, err)
		}
	}
	if err := x.writeHistory(mw, m); err != nil {
		return fmt.Errorf("export: message %d history: %w", m.ID, err)
	}
	return mw.Close()
}

// firstSubject is the subject of the conversation's first inbound
// message, which replies answer.
func (x *Writer) firstSubject() string {
	for _, m := range x.Record.Messages {
		if m.Direction == securetextd.Inbound {
			return m.Subject
		}
	}
	return ""
}

// boundary is the multipart boundary of message id: "=_" cannot start a
// line of quoted-printable ("=" is always escaped) or appear in base64.
func boundary(id int64) string { return "=_securetextd-export-" + strconv.FormatInt(id, 10) }

// writePart streams part idx of message id, as it was received: bodies as
// quoted-printable UTF-8, files and inline images as base64 with their
// names.
func (x *Writer) writePart(ctx context.Context, mw *message.Writer, id int64, idx int, p securetextd.Part) error {
	var h message.Header
	ctype := p.ContentType
	switch p.Kind {
	case securetextd.PartText, securetextd.PartHTML:
		if ctype == "" {
			ctype = "text/plain"
			if p.Kind == securetextd.PartHTML {
				ctype = "text/html"
			}
		}
		h.SetContentType(ctype, map[string]string{"charset": "utf-8"})
		h.Set("Content-Transfer-Encoding", "quoted-printable")
		h.SetContentDisposition("inline", nil)
	default:
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		disp := "attachment"
		if p.Kind == securetextd.PartInline {
			disp = "inline"
		}
		var params map[string]string
		if p.Filename != "" {
			params = map[string]string{"filename": p.Filename}
			h.SetContentType(ctype, map[string]string{"name": p.Filename})
		} else {
			h.SetContentType(ctype, nil)
		}
		setDisposition(&h, disp, params)
		h.Set("Content-Transfer-Encoding", "base64")
		if p.ContentID != "" {
			h.Set("Content-ID", "<"+p.ContentID+">")
		}
	}
	if p.Damaged {
		h.Set("X-Securetextd-Damaged", "yes: only what could be decoded was kept")
	}
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	ra, size, err := x.Source.OpenPart(ctx, id, idx)
	if err != nil {
		return err
	}
	if _, err := io.Copy(pw, io.NewSectionReader(ra, 0, size)); err != nil {
		return err
	}
	return pw.Close()
}

// setDisposition sets Content-Disposition with a non-ASCII filename in
// RFC 2231 form (filename*= with percent-encoded UTF-8), which Python's email package,
// Thunderbird and go-message all read, where go-message alone would write
// an RFC 2047 encoded word, which the standard does not allow in a
// parameter. Content-Type's name keeps go-message's encoded word, for old
// readers that look only there.
func setDisposition(h *message.Header, disp string, params map[string]string) {
	if v := mime.FormatMediaType(disp, params); v != "" {
		h.Set("Content-Disposition", v)
		return
	}
	h.SetContentDisposition(disp, params)
}

// writeText adds a small text part with extra header fields (name, value
// pairs).
func writeText(mw *message.Writer, ctype, text string, fields ...string) error {
	var h message.Header
	h.SetContentType(ctype, map[string]string{"charset": "utf-8"})
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	for i := 0; i+1 < len(fields); i += 2 {
		h.Set(fields[i], fields[i+1])
	}
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(pw, text); err != nil {
		return err
	}
	return pw.Close()
}

// HistoryFileName is the name of a message's access-history part.
func HistoryFileName(id int64) string { return fmt.Sprintf("access-history-message-%d.txt", id) }

// writeHistory adds the access-history part of message m: one line per
// audit row that names it, with the row's seq and hash, so that each line
// can be held to the trail (securetextd audit verify, audit export).
func (x *Writer) writeHistory(mw *message.Writer, m *securetextd.Message) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Access history of message %d in conversation %d, from the audit trail of securetextd.\r\n",
		m.ID, x.Record.Conversation.ID)
	fmt.Fprintf(&b, "Times are UTC. Each row's seq and hash are those of `securetextd audit export`.\r\n\r\n")
	events := x.Record.History[m.ID]
	if len(events) == 0 {
		b.WriteString("No row of the trail names this message.\r\n")
	}
	for _, ev := range events {
		fmt.Fprintf(&b, "%s  seq %d  %s  by %s", ev.Time.UTC().Format(time.RFC3339Nano), ev.Seq, ev.Event, ev.Actor)
		if ev.Client != "" {
			fmt.Fprintf(&b, "  from %s", ev.Client)
		}
		if ev.UserAgent != "" {
			fmt.Fprintf(&b, "  agent %q", ev.UserAgent)
		}
		if ev.Detail != "" {
			fmt.Fprintf(&b, "  (%s)", ev.Detail)
		}
		fmt.Fprintf(&b, "  hash %s\r\n", hex.EncodeToString(ev.Hash))
	}
	var h message.Header
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	h.SetContentDisposition("inline", map[string]string{"filename": HistoryFileName(m.ID)})
	h.Set("Content-Description", "securetextd access history")
	h.Set("X-Securetextd-Part", "access-history")
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(pw, b.String()); err != nil {
		return err
	}
	return pw.Close()
}

// MBox writes every message of the record to w as an mboxrd file: each
// message after a "From " line with its envelope sender and date, lines
// ending in LF, and each line that starts with ">"s and "From " given one
// more ">" (see mboxrd), so that a reader splits the file where it
// should and gives every line back.
func (x *Writer) MBox(ctx context.Context, w io.Writer) error {
	for i, m := range x.Record.Messages {
		from := m.Sender
		if m.Direction == securetextd.Reply {
			from = x.phoneAddress()
		}
		if from == "" || strings.ContainsAny(from, " \t\r\n") {
			from = "MAILER-DAEMON"
		}
		if _, err := fmt.Fprintf(w, "From %s %s\n", from, m.Received.UTC().Format("Mon Jan _2 15:04:05 2006")); err != nil {
			return err
		}
		q := newMboxrd(w)
		if err := x.WriteMessage(ctx, q, i); err != nil {
			return err
		}
		if err := q.Close(); err != nil {
			return err
		}
		if _, err := io.WriteString(w, "\n"); err != nil {
			return err
		}
	}
	return nil
}
