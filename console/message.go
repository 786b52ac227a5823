package console

import (
	"html"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/microcosm-cc/bluemonday"

	"github.com/securetextd/securetextd"
)

// blockEnd matches the end of an HTML block, and <br>.
var blockEnd = regexp.MustCompile(`(?i)</(p|div|li|h[1-6]|tr|blockquote|pre)\s*>|<br\s*/?>`)

// maxBodyShown bounds the body read back onto a message's page; a longer
// one is cut, and its part is offered as a file.
const maxBodyShown = 256 << 10

// messagePageData is a message's page: what was sent and what became of
// it for each recipient.
type messagePageData struct {
	layout
	ID         int64
	Sender     string
	Subject    string
	Received   time.Time
	Body       string
	BodyCut    bool
	Files      []fileRow
	Recipients []recipientRow
	Replies    []replyRow // reply.go
	// Done says what was just done to the message (?done=, ?sent=).
	Done string
}

type fileRow struct {
	Href, Name, Type string
	Size             int64
}

type recipientRow struct {
	Phone   string
	Status  string
	History []historyRow
}

type historyRow struct {
	Time   time.Time
	What   string
	Client string
	Device string
}

// ownMessage returns message id when the account may see it (its own, or
// any for an admin), or answers 404 and returns nil: another sender's
// message looks like no message.
func (s *Server) ownMessage(w http.ResponseWriter, r *http.Request, acct *securetextd.SenderAccount) *securetextd.Message {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.handleNotFound(w, r)
		return nil
	}
	m, err := s.store.Message(r.Context(), id)
	if err != nil {
		s.fail(w, r, "read message", err)
		return nil
	}
	if m.Direction != securetextd.Inbound || (!acct.Admin && !strings.EqualFold(m.Sender, acct.Address)) {
		s.handleNotFound(w, r)
		return nil
	}
	return m
}

// handleMessage shows one sent message: subject, body, files (read back
// from the sealed store on demand), and every recipient's state and
// access history.
func (s *Server) handleMessage(w http.ResponseWriter, r *http.Request) {
	acct, r := s.signedIn(w, r)
	if acct == nil {
		return
	}
	m := s.ownMessage(w, r, acct)
	if m == nil {
		return
	}
	p := &messagePageData{layout: layoutFor(acct, "Message"), ID: m.ID, Sender: m.Sender, Subject: m.Subject, Received: m.Received}
	switch {
	case p.Subject == "" && len(m.Parts) == 0:
		p.Subject = "(content deleted)"
	case p.Subject == "":
		p.Subject = "(no subject)"
	}
	p.Done = doneWords[r.URL.Query().Get("done")]
	if r.URL.Query().Get("sent") != "" {
		p.Done = "Sent. Each recipient gets a text with a link to read it."
	}
	body, cut, err := s.body(r, m)
	if err != nil {
		s.fail(w, r, "read body", err)
		return
	}
	p.Body, p.BodyCut = body, cut
	for i, part := range m.Parts {
		if part.Kind != securetextd.PartAttachment && part.Kind != securetextd.PartInline {
			continue
		}
		p.Files = append(p.Files, fileRow{
			Href: "/m/" + strconv.FormatInt(m.ID, 10) + "/p/" + strconv.Itoa(i),
			Name: fileName(part, i), Type: part.ContentType, Size: part.Size,
		})
	}
	q := securetextd.SentQuery{MessageID: m.ID}
	if !acct.Admin {
		q.Sender = acct.Address
	}
	rows, _, err := s.store.SentPage(r.Context(), q)
	if err != nil {
		s.fail(w, r, "message recipients", err)
		return
	}
	for _, row := range rows {
		rr := recipientRow{Phone: string(row.Phone), Status: statusLabel(row.State)}
		for _, ev := range row.History {
			rr.History = append(rr.History, historyRow{Time: ev.Time, What: eventWords(ev), Client: ev.Client, Device: device(ev.UserAgent)})
		}
		p.Recipients = append(p.Recipients, rr)
	}
	if p.Replies, err = s.repliesTo(r, m, rows); err != nil {
		s.fail(w, r, "message replies", err)
		return
	}
	s.render(w, http.StatusOK, "message_page.html", p)
}

// doneWords say what the page's ?done= parameter means.
var doneWords = map[string]string{
	"withdrawn": "Withdrawn. The recipients can no longer open this message.",
	"deleted":   "Deleted. The message's text and files are destroyed.",
	"answered":  "Answered. Your answer joins the conversation, and the recipient is sent a new link to read it.",
	"held":      "Withdrawn. A conversation of this message is under legal hold: it is deleted when the hold is removed.",
}

// body reads the message's text back: the plain text part, or the HTML
// part's text without its markup, at most maxBodyShown bytes.
func (s *Server) body(r *http.Request, m *securetextd.Message) (string, bool, error) {
	idx := -1
	for i, p := range m.Parts {
		if p.Kind == securetextd.PartText {
			idx = i
			break
		}
		if p.Kind == securetextd.PartHTML && idx < 0 {
			idx = i
		}
	}
	if idx < 0 {
		return "", false, nil
	}
	ra, size, err := s.store.OpenPart(r.Context(), m.ID, idx)
	if err != nil {
		return "", false, err
	}
	n := min(size, maxBodyShown)
	buf := make([]byte, n)
	if _, err := ra.ReadAt(buf, 0); err != nil && err != io.EOF {
		return "", false, err
	}
	text := strings.ToValidUTF8(string(buf), "\uFFFD")
	if m.Parts[idx].Kind == securetextd.PartHTML {
		// The text without markup; a block's end or a <br> ends a line.
		text = blockEnd.ReplaceAllString(text, "$0\n")
		text = html.UnescapeString(bluemonday.StrictPolicy().Sanitize(text))
	}
	return strings.TrimSpace(text), size > n, nil
}

// handlePart serves a file of the account's message as a download, and
// records that it was read back.
func (s *Server) handlePart(w http.ResponseWriter, r *http.Request) {
	acct, r := s.signedIn(w, r)
	if acct == nil {
		return
	}
	m := s.ownMessage(w, r, acct)
	if m == nil {
		return
	}
	idx, err := strconv.Atoi(r.PathValue("idx"))
	if err != nil || idx < 0 || idx >= len(m.Parts) {
		s.handleNotFound(w, r)
		return
	}
	ra, size, err := s.store.OpenPart(r.Context(), m.ID, idx)
	if err != nil {
		s.fail(w, r, "open part", err)
		return
	}
	if err := s.store.Audit(r.Context(), securetextd.AuditEvent{Event: securetextd.AuditPartReadBack,
		MessageID: m.ID, Detail: "part " + strconv.Itoa(idx)}); err != nil {
		s.fail(w, r, "audit read back", err)
		return
	}
	h := w.Header()
	// Served as bytes to save, never rendered here: were a browser to
	// render it anyway, it could run nothing and fetch nothing.
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": fileName(m.Parts[idx], idx)}))
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(ra, 0, size))
}

// fileName is a part's name as shown and offered: the sender's, without
// paths or control characters, or one made from its index.
func fileName(p securetextd.Part, idx int) string {
	name := p.Filename
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '"' {
			return -1
		}
		return r
	}, name)
	if r := []rune(name); len(r) > 120 {
		name = string(r[:120])
	}
	if strings.Trim(name, ". ") == "" {
		name = "part-" + strconv.Itoa(idx+1)
	}
	return name
}

// eventWords says what an audit event means to the clinician.
func eventWords(ev securetextd.AuditEvent) string {
	switch ev.Event {
	case securetextd.AuditMessageAccepted:
		return "Accepted by the gateway"
	case securetextd.AuditTextQueued:
		return "Text queued"
	case securetextd.AuditTextSent:
		return "Texted"
	case securetextd.AuditTextDelivered:
		return "Text delivered to the phone"
	case securetextd.AuditTextFailed:
		return "Text failed"
	case securetextd.AuditLinkOpened:
		return "Link opened"
	case securetextd.AuditPasswordSet:
		return "Password set by the recipient"
	case securetextd.AuditLoginOK:
		return "Recipient signed in"
	case securetextd.AuditLoginFailed:
		return "Wrong password"
	case securetextd.AuditLoginLocked:
		return "Sign-in paused after wrong passwords"
	case securetextd.AuditMessageViewed:
		return "Message opened"
	case securetextd.AuditDownloaded:
		return "File downloaded"
	case securetextd.AuditReplySent:
		return "Recipient replied"
	case securetextd.AuditReceiptQueued:
		return "Read receipt sent"
	case securetextd.AuditExpired:
		return "Access expired"
	case securetextd.AuditRevoked:
		return "Withdrawn"
	case securetextd.AuditPurged:
		return "Content deleted"
	case securetextd.AuditReplyRead:
		return "Reply read in the console"
	}
	return ev.Event
}

// device names the browser and system of a user agent, as a person says
// it: "Chrome on Android". The whole string stays in the audit trail.
func device(ua string) string {
	if ua == "" {
		return ""
	}
	browser := ""
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"Firefox/", "Firefox"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	system := ""
	for _, o := range []struct{ token, name string }{
		{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"}, {"Windows", "Windows"},
		{"Mac OS X", "Mac"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			system = o.name
			break
		}
	}
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "" || system != "":
		return browser + system
	}
	if len(ua) > 40 {
		return ua[:40] + "…"
	}
	return ua
}
