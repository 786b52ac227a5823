package notify

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/locale"
)

// MailStore is the data the Mailer reads. *store.DB implements it.
type MailStore interface {
	// Conversation returns the conversation, or an *securetextd.Error
	// with Code ENOTFOUND.
	Conversation(ctx context.Context, id int64) (*securetextd.Conversation, error)
	// ConversationMessage returns a message of a conversation, opened,
	// with its parts described but not read; an *securetextd.Error with
	// Code ENOTFOUND when the message is not one of the conversation's.
	ConversationMessage(ctx context.Context, conversationID, messageID int64) (*securetextd.Message, error)
	// MessageInConversation returns a message of a conversation, and
	// the conversation's latest inbound message before it (nil when
	// there is none), opened, with their parts described but not read;
	// an *securetextd.Error with Code ENOTFOUND when the message is not
	// one of the conversation's.
	MessageInConversation(ctx context.Context, conversationID, messageID int64) (msg, before *securetextd.Message, err error)
	// OpenPart opens the content of part index of a message for reading
	// by ranges, and returns its size. If the reader is also an io.Closer,
	// the Mailer closes it.
	OpenPart(ctx context.Context, messageID int64, index int) (io.ReaderAt, int64, error)
}

// MailConfig configures the Mailer.
type MailConfig struct {
	// Relay is the organization's mail relay, "host:port". Empty means
	// that each email is sealed into a file of Dir instead (maildir.go).
	Relay string
	// RequireTLS refuses a relay that does not offer STARTTLS: the email
	// is kept and tried again later, never sent in plain text. Config
	// mail.require_tls, true by default.
	RequireTLS bool
	// Username and Password log in to the relay with AUTH PLAIN, which is
	// only ever done over TLS. Empty Username: no login.
	Username, Password string
	// TLSConfig is used for STARTTLS; nil means the system's roots. Its
	// ServerName defaults to the relay's host.
	TLSConfig *tls.Config
	// From is our own address, as envelope sender and in From, so that
	// our domain's SPF and DMARC apply: "securetextd@clinic.example".
	From string
	// Dir receives the emails when Relay is empty, each sealed with Seal
	// into a file of its own (maildir.go); it is made 0700 and the files
	// 0600. It is for a demo and for development.
	Dir string
	// Seal seals the files of Dir: the store's keys (*store.Keyring).
	// Required with Dir; an email is never written there in clear.
	Seal Sealer
	// Org is the organization's name, for display names and texts.
	Org string
	// DefaultLanguage is the language of an email to a patient whose job
	// names none (portal.default_language); "" is English.
	DefaultLanguage string
	// Domain is the recipients' domain ("secure.text"). A reply's
	// Reply-To is <phone digits>+<conversation>@Domain, so that the
	// sender's answer lands in the same conversation.
	Domain string
	// PublicURL is the portal's address; a reset link is
	// PublicURL + "/reset/" + token.
	PublicURL string
	// ReplyMode is what a reply's email holds: ReplyNotice ("", the
	// default) or ReplyContent (config mail.reply_mode; mail_notice.go).
	ReplyMode string
	// ConsoleURL is the clinician's console (console.public_url); a
	// reply notice links to the reply there.
	ConsoleURL string
	// Hostname is the gateway's name (smtp.hostname): its EHLO to the
	// relay and the right-hand side of the Message-IDs it makes. Empty,
	// the EHLO is the host name and Message-IDs end with From's domain.
	Hostname string
	// Timeout bounds each step of an SMTP session (connect, each command
	// and its reply, each write of the message), 30s by default.
	Timeout time.Duration
	// Color and OnColor are the organization's colour (brand.color) and
	// the text colour on it, both #RRGGBB, for the HTML part of an email
	// recipient's notice (email_notice.go).
	Color, OnColor string
	// DKIM, if not nil, signs those notices.
	DKIM *DKIM
}

// resetValidity is how long a reset link works, as the email tells the
// reader. The store enforces it.
const resetValidity = 30 * time.Minute

// Mailer sends the emails that outbox jobs ask for:
//
//   - JobKindReply: a recipient's reply, to the sender of the
//     conversation, threaded under the message it answers: by default a
//     notice with a link to the console, or with the reply's text and
//     files attached (MailConfig.ReplyMode);
//   - JobKindReset: a password-reset link, to a recipient's recovery
//     address;
//   - JobKindEmail: the link to a message, to an email recipient (or to a
//     text's fallback address), as a text brings it to a phone
//     (email_notice.go);
//   - JobKindConfirm: a link that confirms a recovery address, to that
//     address (confirm.go);
//   - JobKindEmailCode: a one-time code, to an email recipient (code.go);
//   - JobKindNotice, JobKindMDN, JobKindRead, JobKindUndelivered: what
//     became of a message (texted, displayed, not delivered), to its
//     sender, threaded under it (receipts.go).
//
// It hands each email to the organization's relay (STARTTLS, optional
// AUTH PLAIN) or, without a relay, seals it into a file. Attachments
// are streamed from the store into the SMTP session, base64-encoded on the
// way: an email is never held in memory whole.
type Mailer struct {
	c     MailConfig
	st    MailStore
	log   *slog.Logger
	hello string // our name in EHLO
	host  string // Hostname, or the domain of From: for generated Message-IDs
}

// NewMailer checks c and returns a Mailer. It does not connect.
func NewMailer(c MailConfig, st MailStore, logger *slog.Logger) (*Mailer, error) {
	if st == nil {
		return nil, errors.New("mail: no store")
	}
	from, err := mail.ParseAddress(c.From)
	if err != nil || from.Name != "" || from.Address != c.From {
		return nil, fmt.Errorf("mail: from %q is not a bare email address", c.From)
	}
	_, host, _ := strings.Cut(from.Address, "@")
	if c.Relay != "" {
		if _, _, err := net.SplitHostPort(c.Relay); err != nil {
			return nil, fmt.Errorf("mail: relay %q is not host:port", c.Relay)
		}
	} else if c.Dir == "" {
		return nil, errors.New("mail: neither a relay nor a directory to write to")
	} else if c.Seal == nil {
		return nil, errors.New("mail: no key to seal the files of the mail directory with")
	}
	if c.Password != "" && c.Username == "" {
		return nil, errors.New("mail: a password without a username")
	}
	if c.Domain == "" || strings.ContainsAny(c.Domain, "@<> \r\n") {
		return nil, fmt.Errorf("mail: domain %q is not a domain", c.Domain)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("mail: public url %q is not an absolute url", c.PublicURL)
	}
	if err := checkDKIM(c.DKIM); err != nil {
		return nil, err
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	hello, _ := os.Hostname()
	if hello == "" || strings.ContainsAny(hello, " \r\n") {
		hello = "localhost"
	}
	if c.Hostname != "" {
		if strings.ContainsAny(c.Hostname, "@<> \r\n") {
			return nil, fmt.Errorf("mail: hostname %q is not a host name", c.Hostname)
		}
		hello, host = c.Hostname, c.Hostname
	}
	return &Mailer{c: c, st: st, log: logger.With("component", "mail"), hello: hello, host: host}, nil
}

// outgoing is an email ready to be written: its envelope recipient, and a
// function that writes the whole message, reading the parts it needs.
type outgoing struct {
	to      string
	write   func(w io.Writer) error
	closers []io.Closer
}

func (o *outgoing) close() {
	for _, c := range o.closers {
		c.Close()
	}
}

// Send builds the email that job asks for and delivers it. An error is a
// *PermanentError when sending again cannot help (the conversation is
// gone, the relay refused the recipient or the message with 5xx);
// anything else (the store, the network, a 4xx reply, a relay without
// STARTTLS) is worth retrying. Errors never hold the token, and hold the
// recipient's address only masked.
func (m *Mailer) Send(ctx context.Context, job *securetextd.Job) error {
	var mj securetextd.MailJob
	if err := json.Unmarshal(job.Payload, &mj); err != nil {
		return &PermanentError{Reason: fmt.Sprintf("mail: unreadable %s job: %v", job.Kind, err)}
	}
	var msg *outgoing
	var err error
	switch job.Kind {
	case securetextd.JobKindEmail:
		msg, err = m.emailNotice(ctx, job)
	case securetextd.JobKindReply:
		msg, err = m.reply(ctx, mj)
	case securetextd.JobKindReset:
		msg, err = m.reset(mj)
	case securetextd.JobKindConfirm:
		msg, err = m.confirm(mj)
	case securetextd.JobKindEmailCode:
		msg, err = m.codeEmail(job)
	default:
		// The sender's notices: receipts.go.
		msg, err = m.notice(ctx, job, mj)
	}
	if err != nil {
		return err
	}
	defer msg.close()
	log := m.log.With("job", job.ID, "kind", job.Kind, "to", maskAddress(msg.to))
	if m.c.Relay == "" {
		name, err := m.writeFile(job, msg)
		if err != nil {
			return err
		}
		log.Debug("mail sealed into the mail directory", "file", filepath.Base(name))
		return nil
	}
	if err := m.relay(ctx, log, msg); err != nil {
		return redactError(err, msg.to)
	}
	log.Debug("mail handed to relay")
	return nil
}

// reply builds the email that forwards a recipient's reply to the sender.
func (m *Mailer) reply(ctx context.Context, mj securetextd.MailJob) (*outgoing, error) {
	if mj.MessageID == 0 || mj.ConversationID == 0 {
		return nil, &PermanentError{Reason: "mail: reply job without message or conversation"}
	}
	conv, err := m.st.Conversation(ctx, mj.ConversationID)
	if err != nil {
		return nil, storeError(fmt.Sprintf("conversation %d", mj.ConversationID), err)
	}
	// The reply answers the latest inbound message before it.
	reply, orig, err := m.st.MessageInConversation(ctx, conv.ID, mj.MessageID)
	if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
		reply, err = nil, nil
	}
	if err != nil {
		return nil, storeError(fmt.Sprintf("message %d of conversation %d", mj.MessageID, conv.ID), err)
	}
	if reply == nil || reply.Direction != securetextd.Reply {
		return nil, &PermanentError{Reason: fmt.Sprintf("mail: message %d is not a reply in conversation %d", mj.MessageID, conv.ID)}
	}
	to, err := mail.ParseAddress(conv.Sender)
	if err != nil {
		return nil, &PermanentError{Reason: fmt.Sprintf("mail: conversation %d has no valid sender address", conv.ID)}
	}

	var h mail.Header
	date := reply.Received
	if date.IsZero() {
		date = time.Now()
	}
	h.SetDate(date)
	h.SetAddressList("From", []*mail.Address{{Name: oneLine(m.c.Org + " secure reply"), Address: m.c.From}})
	rcpt := &mail.Address{Address: to.Address}
	if orig != nil && strings.EqualFold(orig.Sender, to.Address) {
		rcpt.Name = oneLine(orig.SenderName)
	}
	h.SetAddressList("To", []*mail.Address{rcpt})
	h.SetAddressList("Reply-To", []*mail.Address{{Address: m.replyTo(conv)}})
	var subject string
	var refs []string
	if orig != nil {
		subject = orig.Subject
		for _, id := range orig.References {
			if validMsgID(id) {
				refs = append(refs, id)
			}
		}
		if validMsgID(orig.MessageID) {
			h.SetMsgIDList("In-Reply-To", []string{orig.MessageID})
			refs = append(refs, orig.MessageID)
		}
	}
	h.SetSubject(replySubject(subject))
	h.SetMsgIDList("References", refs)
	id := reply.MessageID
	if !validMsgID(id) {
		// Stable across attempts, so a message sent twice threads as one.
		id = fmt.Sprintf("reply.%d.%d@%s", conv.ID, reply.ID, m.host)
	}
	h.SetMessageID(id)
	if m.c.ReplyMode != ReplyContent {
		return m.replyNotice(h, to.Address, conv, reply, date), nil
	}

	out := &outgoing{to: to.Address}
	type opened struct {
		part securetextd.Part
		r    *io.SectionReader
	}
	var texts, files []opened
	for i, p := range reply.Parts {
		ra, size, err := m.st.OpenPart(ctx, reply.ID, i)
		if err != nil {
			out.close()
			return nil, storeError(fmt.Sprintf("part %d of message %d", i, reply.ID), err)
		}
		if c, ok := ra.(io.Closer); ok {
			out.closers = append(out.closers, c)
		}
		o := opened{p, io.NewSectionReader(ra, 0, size)}
		if p.Kind == securetextd.PartText {
			texts = append(texts, o)
		} else {
			files = append(files, o)
		}
	}
	note := fmt.Sprintf("Sent from %s's secure message portal by %s", oneLine(m.c.Org), conv.Phone)

	out.write = func(w io.Writer) error {
		mw, err := mail.CreateWriter(w, h)
		if err != nil {
			return err
		}
		var th mail.InlineHeader
		th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
		tw, err := mw.CreateSingleInline(th)
		if err != nil {
			return err
		}
		lw := &lastByteWriter{w: tw}
		for i, t := range texts {
			if i > 0 {
				lw.Write([]byte("\n\n"))
			}
			if _, err := io.Copy(lw, t.r); err != nil {
				return fmt.Errorf("text part: %w", err)
			}
		}
		if lw.n > 0 && lw.last != '\n' {
			lw.Write([]byte("\n"))
		}
		if lw.n > 0 {
			lw.Write([]byte("\n"))
		}
		if _, err := io.WriteString(lw, note+"\n"); err != nil {
			return err
		}
		if err := tw.Close(); err != nil {
			return err
		}
		for _, f := range files {
			name := oneLine(f.part.Filename)
			if name == "" {
				name = "attachment"
				if f.part.Kind == securetextd.PartHTML {
					name = "message.html"
				}
			}
			var ah mail.AttachmentHeader
			ah.SetContentType(mediaType(f.part.ContentType), map[string]string{"name": name})
			ah.SetFilename(name)
			aw, err := mw.CreateAttachment(ah)
			if err != nil {
				return err
			}
			if _, err := io.Copy(aw, f.r); err != nil {
				return fmt.Errorf("attachment: %w", err)
			}
			if err := aw.Close(); err != nil {
				return err
			}
		}
		return mw.Close()
	}
	return out, nil
}

// reset builds the email with a password-reset link.
func (m *Mailer) reset(mj securetextd.MailJob) (*outgoing, error) {
	if mj.To == "" || mj.Token == "" {
		return nil, &PermanentError{Reason: "mail: reset job without address or token"}
	}
	to, err := mail.ParseAddress(mj.To)
	if err != nil {
		return nil, &PermanentError{Reason: "mail: reset job: the recovery address is not valid"}
	}
	l := m.printer(mj.Language)
	h, err := m.accountHeader(l, to.Address, l.T("ResetMailSubject", "Org", m.c.Org))
	if err != nil {
		return nil, err
	}
	body := l.T("ResetMailBody", "Whose", whoseMessages(l, mj), "Org", oneLine(m.c.Org),
		"Valid", l.Duration(resetValidity),
		"Link", strings.TrimSuffix(m.c.PublicURL, "/")+"/reset/"+url.PathEscape(mj.Token))
	return plainMail(to.Address, h, body), nil
}

// accountHeader is the header of an email about a recipient's account (a
// reset, a confirmation) to address: from the organization, made by a
// program, plain text, in l's language (Content-Language).
func (m *Mailer) accountHeader(l *locale.Printer, address, subject string) (mail.Header, error) {
	var h mail.Header
	h.SetDate(time.Now())
	h.SetAddressList("From", []*mail.Address{{Name: oneLine(l.T("MailFromName", "Org", m.c.Org)), Address: m.c.From}})
	h.Set("Content-Language", l.Tag)
	h.SetAddressList("To", []*mail.Address{{Address: address}})
	h.SetSubject(oneLine(subject))
	if err := h.GenerateMessageIDWithHostname(m.host); err != nil {
		return h, fmt.Errorf("mail: message id: %w", err)
	}
	// RFC 3834: an automatic message, not for auto-replies to answer.
	h.Set("Auto-Submitted", "auto-generated")
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	return h, nil
}

// whoseMessages names the account a reset or confirmation is for, the
// number masked.
func whoseMessages(l *locale.Printer, mj securetextd.MailJob) string {
	if mj.Phone != "" {
		return l.T("MailWhosePhone", "Phone", mj.Phone.Masked())
	}
	return l.T("MailWhoseYours")
}

// printer returns the printer of an email to a patient in language tag:
// the job's, else the default language.
func (m *Mailer) printer(tag string) *locale.Printer {
	cat, err := locale.Load()
	if err != nil {
		panic(err) // the embedded catalogue; its tests check it parses
	}
	if !cat.Has(tag) {
		tag = m.c.DefaultLanguage
	}
	return cat.Printer(tag)
}

// plainMail is a mail to one address with header h and a single
// text/plain body.
func plainMail(to string, h mail.Header, body string) *outgoing {
	return &outgoing{to: to, write: func(w io.Writer) error {
		bw, err := mail.CreateSingleInlineWriter(w, h)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(bw, body); err != nil {
			return err
		}
		return bw.Close()
	}}
}

// storeError makes a store failure an error for the worker: a thing that
// is gone will stay gone; anything else may pass.
func storeError(what string, err error) error {
	if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
		return &PermanentError{Reason: fmt.Sprintf("mail: %s: %s", what, securetextd.ErrorMessage(err))}
	}
	return fmt.Errorf("mail: %s: %w", what, err)
}

// replySubject returns "Re: " + subject, without stacking "Re: Re:".
func replySubject(subject string) string {
	s := strings.TrimSpace(oneLine(subject))
	if s == "" {
		return "Re: your secure message"
	}
	if len(s) >= 3 && strings.EqualFold(s[:3], "re:") {
		return s
	}
	return "Re: " + s
}

// oneLine replaces control characters (CR and LF among them) with
// spaces. Subjects, names and filenames come from outside; go-message
// encodes what it writes, and this keeps even the decoded text on one line.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// validMsgID reports whether id can stand between angle brackets in a
// header: printable ASCII, without spaces or brackets.
func validMsgID(id string) bool {
	if id == "" || len(id) > 250 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == '<' || c == '>' {
			return false
		}
	}
	return true
}

// mediaType returns t if it is a media type an attachment can carry, and
// application/octet-stream otherwise. A multipart type would make
// go-message write the part unencoded, as a container.
func mediaType(t string) string {
	mt, params, err := mime.ParseMediaType(t)
	if err != nil || len(params) > 0 || strings.HasPrefix(mt, "multipart/") || !strings.Contains(mt, "/") {
		return "application/octet-stream"
	}
	return mt
}

// maskAddress hides an email address for logs: "a***@example.org".
func maskAddress(a string) string {
	i := strings.LastIndexByte(a, '@')
	if i <= 0 {
		return "***"
	}
	r, _ := utf8.DecodeRuneInString(a)
	return string(r) + "***" + a[i:]
}

// lastByteWriter remembers how much was written and the last byte.
type lastByteWriter struct {
	w    io.Writer
	n    int64
	last byte
}

func (w *lastByteWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	if n > 0 {
		w.n += int64(n)
		w.last = b[n-1]
	}
	return n, err
}
