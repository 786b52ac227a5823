package portal

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/locale"
)

// maxBodyBytes bounds how much of one text or HTML body a page shows; the
// whole body stays downloadable.
const maxBodyBytes = 256 << 10

// conversationPage shows every message and reply, oldest first, and the
// reply form.
type conversationPage struct {
	layout
	ID       int64
	Heading  string // who the messages are from
	Messages []messageView
	Closes   string // when access ends, from now; "" if never
	// MaxReplyBytes is for static/reply.js's check before the upload;
	// ReplyUpTo and ReplyFilesOver say it to the patient.
	MaxReplyBytes  int64
	ReplyUpTo      string
	ReplyFilesOver string
	Error          string // what was wrong with the last reply
	Draft          string // the text of a reply that was not sent, given back
}

type messageView struct {
	ID         int64
	Reply      bool // written by the recipient
	SenderName string
	Sender     string
	Subject    string
	Received   time.Time
	ISO        string // Received, for the time element and static/time.js
	When       string // Received, in the page's language and zone
	New        bool   // received since the recipient last opened the conversation
	Bodies     []bodyView
	Files      []fileView
}

type bodyView struct {
	HTML      template.HTML // escaped text with links, or sanitised HTML
	Rich      bool          // sanitised HTML
	Damaged   bool
	Truncated bool
	Href      string // the whole body, as a download
}

type fileView struct {
	Name    string
	Type    string
	Kind    string // what a patient calls it: "PDF", "Photo (JPEG)" (kind.go)
	Size    int64
	Href    string
	Preview string // an inline URL, for PNG, JPEG, GIF and WebP
	Damaged bool
	// KindText, SizeText and PreviewAlt are Kind, Size and the preview's
	// alternative text in the page's language.
	KindText, SizeText, PreviewAlt string
}

// ownConversation returns the conversation of the request's path when the
// browser's session is for its phone number. Otherwise it answers the
// request itself (the same 404 for every case) and returns nil.
func (s *Server) ownConversation(w http.ResponseWriter, r *http.Request) (*securetextd.Session, *securetextd.Conversation) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.handleNotFound(w, r)
		return nil, nil
	}
	sess, err := s.session(r)
	if err != nil {
		s.fail(w, r, "session", err)
		return nil, nil
	}
	if sess == nil {
		s.handleNotFound(w, r)
		return nil, nil
	}
	var conv *securetextd.Conversation
	var access error
	ar, oneQuery := s.life.(accessReader)
	if oneQuery {
		conv, access, err = ar.ConversationWithAccess(r.Context(), id)
	} else {
		conv, err = s.store.Conversation(r.Context(), id)
	}
	if err != nil {
		s.fail(w, r, "conversation", err)
		return nil, nil
	}
	// Whose it is first: another phone's conversation is not found,
	// whether open or not.
	if conv.Phone != sess.Phone {
		s.logger.Warn("conversation of another phone", "phone", sess.Phone.Masked(), "conversation", id)
		s.handleNotFound(w, r)
		return nil, nil
	}
	if !oneQuery {
		access = s.checkAccess(r, conv)
	}
	if access != nil {
		s.fail(w, r, "conversation access", access)
		return nil, nil
	}
	return sess, conv
}

// handleConversation shows a conversation.
func (s *Server) handleConversation(w http.ResponseWriter, r *http.Request) {
	_, conv := s.ownConversation(w, r)
	if conv == nil {
		return
	}
	s.renderConversation(w, r, http.StatusOK, conv, "")
}

func (s *Server) renderConversation(w http.ResponseWriter, r *http.Request, status int, conv *securetextd.Conversation, problem string) {
	s.renderConversationDraft(w, r, status, conv, problem, "")
}

// renderConversationDraft renders the conversation with a reply that was
// not sent: what was wrong, and its text back in the form.
func (s *Server) renderConversationDraft(w http.ResponseWriter, r *http.Request, status int, conv *securetextd.Conversation, problem, draft string) {
	msgs, err := s.store.ConversationMessages(r.Context(), conv.ID)
	if err != nil {
		s.fail(w, r, "conversation messages", err)
		return
	}
	seen, err := s.lastSeen(r.Context(), conv)
	if err != nil {
		s.fail(w, r, "last seen", err)
		return
	}
	l := s.printer(r)
	p := &conversationPage{
		layout:        layout{Title: "ConversationTitle", SignedIn: true, Zone: s.pageZone(zoneOf(conv.Phone, s.cfg.Location))},
		ID:            conv.ID,
		MaxReplyBytes: s.cfg.MaxReplyBytes,
		Error:         problem,
		Draft:         draft,
	}
	for _, m := range msgs {
		v, err := s.messageView(r.Context(), conv.ID, m)
		if err != nil {
			s.fail(w, r, "open message", err)
			return
		}
		v.New = !v.Reply && m.Received.After(seen)
		p.Messages = append(p.Messages, v)
	}
	sender := conv.Sender
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Direction == securetextd.Inbound && msgs[i].SenderName != "" {
			sender = msgs[i].SenderName + " (" + msgs[i].Sender + ")"
			break
		}
	}
	p.texts(l, sender, s.closesIn(l, conv, time.Now()))
	// Recorded before anything is shown: a view the trail missed would
	// be a view without its audit event, and without its read receipt.
	if err := s.markViewed(r, conv, msgs); err != nil {
		s.fail(w, r, "mark viewed", err)
		return
	}
	s.render(w, r, status, "conversation.html", p)
}

// texts writes the page's texts with fields in l's language (layout's
// comment says why in Go): sender is who the messages are from, closes
// when access ends, from now ("" if never). The page's zone must be set.
func (p *conversationPage) texts(l *locale.Printer, sender, closes string) {
	p.Heading = l.T("ConversationHeading", "Sender", sender)
	if closes != "" {
		p.Closes = l.T("ConversationCloses", "Wait", closes)
	}
	size := l.Size(p.MaxReplyBytes)
	p.ReplyUpTo, p.ReplyFilesOver = l.T("ReplyUpTo", "Max", size), l.T("ReplyFilesOver", "Max", size)
	for i := range p.Messages {
		v := &p.Messages[i]
		v.ISO = v.Received.UTC().Format(time.RFC3339)
		v.When = when(l, p.Zone, v.Received)
		for j := range v.Files {
			f := &v.Files[j]
			f.KindText, f.SizeText = l.T(f.Kind), l.Size(f.Size)
			if f.Preview != "" {
				f.PreviewAlt = l.T("PreviewOf", "Name", f.Name)
			}
		}
	}
}

// messageView opens what a page shows of a message: its bodies (HTML when
// it has any, else text), and its files. Inline images that the HTML
// shows are not listed again as files.
func (s *Server) messageView(ctx context.Context, convID int64, m *securetextd.Message) (messageView, error) {
	v := messageView{
		ID:         m.ID,
		Reply:      m.Direction == securetextd.Reply,
		SenderName: m.SenderName,
		Sender:     m.Sender,
		Subject:    m.Subject,
		Received:   m.Received,
	}
	bodyKind := securetextd.PartText
	for _, p := range m.Parts {
		if p.Kind == securetextd.PartHTML {
			bodyKind = securetextd.PartHTML
		}
	}
	shown := make(map[int]bool) // inline parts the HTML shows
	resolve := func(cid string) (string, bool) {
		if u, err := url.PathUnescape(cid); err == nil {
			cid = u // as the sanitiser wrote it back
		}
		for i, p := range m.Parts {
			if p.ContentID != "" && strings.EqualFold(p.ContentID, cid) && isRaster(p.ContentType) {
				shown[i] = true
				return partURL(convID, m.ID, i) + "?inline=1", true
			}
		}
		return "", false
	}
	for i, p := range m.Parts {
		if p.Kind != bodyKind {
			continue
		}
		ra, size, err := s.store.OpenPart(ctx, m.ID, i)
		if err != nil {
			return v, fmt.Errorf("part %d of message %d: %w", i, m.ID, err)
		}
		b, err := readLimited(ra, size, maxBodyBytes)
		if err != nil {
			return v, fmt.Errorf("read part %d of message %d: %w", i, m.ID, err)
		}
		body := bodyView{Damaged: p.Damaged, Truncated: size > maxBodyBytes, Href: partURL(convID, m.ID, i)}
		if bodyKind == securetextd.PartHTML {
			body.HTML, body.Rich = sanitize(s.policy, b, resolve), true
		} else {
			body.HTML = linkify(strings.ToValidUTF8(string(b), "\uFFFD"))
		}
		v.Bodies = append(v.Bodies, body)
	}
	for i, p := range m.Parts {
		// An image the HTML shows is not listed again, whatever its
		// disposition: mail programs mark an inline image "attachment",
		// or put it in multipart/mixed, and still refer to its cid:.
		if shown[i] || (p.Kind != securetextd.PartAttachment && p.Kind != securetextd.PartInline) {
			continue
		}
		f := fileView{
			Name:    displayName(p, i),
			Type:    p.ContentType,
			Kind:    fileKind(p.ContentType, displayName(p, i)),
			Size:    p.Size,
			Href:    partURL(convID, m.ID, i),
			Damaged: p.Damaged,
		}
		if isRaster(p.ContentType) {
			f.Preview = f.Href + "?inline=1"
		}
		v.Files = append(v.Files, f)
	}
	return v, nil
}

// partURL is where part idx of message msg of conversation conv is
// downloaded.
func partURL(conv, msg int64, idx int) string {
	return fmt.Sprintf("/c/%d/m/%d/p/%d", conv, msg, idx)
}

// closesIn says when conv closes to its recipient, from now: its latest
// activity plus the access expiry (the rule of DB.ConversationAccess);
// "" when conversations do not expire.
func (s *Server) closesIn(l *locale.Printer, conv *securetextd.Conversation, now time.Time) string {
	if s.cfg.AccessExpiry <= 0 {
		return ""
	}
	return l.Duration(conv.LastActivity.Add(s.cfg.AccessExpiry).Sub(now))
}
