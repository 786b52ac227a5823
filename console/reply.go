package console

import (
	"context"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
)

// ReplyStore is what the console needs to show the recipients' replies.
// *store.DB implements it.
type ReplyStore interface {
	// ReplyConversation returns the conversation of reply id, or
	// ENOTFOUND when id is no reply.
	ReplyConversation(ctx context.Context, id int64) (*securetextd.Conversation, error)
	// ConversationMessages returns a conversation's messages, oldest
	// first, with their parts described but not read.
	ConversationMessages(ctx context.Context, conversationID int64) ([]*securetextd.Message, error)
	// AnswerClosed is nil when the conversation's sender may answer in
	// it, or EREVOKED or EEXPIRED saying why not (answer.go).
	AnswerClosed(ctx context.Context, id int64) error
}

// The recipients' replies stay sealed in the store (mail.reply_mode =
// "notice" mails only that one arrived, with a link here). A message's
// page lists the replies that answer it; a reply's page, /r/{id}, shows
// its text and offers its files, each read from the store when asked for
// and recorded in the audit trail (sender.reply_read). Only the sender of
// the conversation, or an admin, sees a reply: to anyone else it is a 404,
// as a message that does not exist. Its sender answers it there
// (answer.go).

// replyRoutes adds the reply pages to mux.
func (s *Server) replyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /r/{id}", s.handleReply)
	mux.HandleFunc("GET /r/{id}/p/{idx}", s.handleReplyPart)
	mux.HandleFunc("POST /r/{id}/answer", s.handleAnswer) // multipart, bounded there
}

// replyPageData is a reply's page.
type replyPageData struct {
	layout
	ID       int64
	Phone    string
	Received time.Time
	Body     string
	BodyCut  bool
	Files    []fileRow
	// Photos are the Files that the page shows as images, each also
	// offered as a download.
	Photos []fileRow
	// Answered is the message page of the sender's message it answers,
	// if any.
	Answered string
	// Answer is the form to answer it, and the answers sent (answer.go).
	Answer *answerForm
}

// replyRow is a reply as a message's page lists it.
type replyRow struct {
	Href     string
	Phone    string
	Received time.Time
	Files    int
}

// ownReply returns reply id and its conversation when the account may
// read it (a reply in one of its conversations, or any for an admin), or
// answers 404 and returns nil.
func (s *Server) ownReply(w http.ResponseWriter, r *http.Request, acct *securetextd.SenderAccount) (*securetextd.Message, *securetextd.Conversation) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.handleNotFound(w, r)
		return nil, nil
	}
	conv, err := s.store.ReplyConversation(r.Context(), id)
	if securetextd.ErrorCode(err) == securetextd.ENOTFOUND {
		s.handleNotFound(w, r)
		return nil, nil
	}
	if err != nil {
		s.fail(w, r, "reply conversation", err)
		return nil, nil
	}
	if !acct.Admin && !strings.EqualFold(conv.Sender, acct.Address) {
		s.handleNotFound(w, r)
		return nil, nil
	}
	m, err := s.store.Message(r.Context(), id)
	if err != nil {
		s.fail(w, r, "read reply", err)
		return nil, nil
	}
	return m, conv
}

// handleReply shows a recipient's reply: its text and its files, read
// from the sealed store now, and audited; and the form to answer it
// (answer.go).
func (s *Server) handleReply(w http.ResponseWriter, r *http.Request) {
	acct, r := s.signedIn(w, r)
	if acct == nil {
		return
	}
	m, conv := s.ownReply(w, r, acct)
	if m == nil {
		return
	}
	s.renderReply(w, r, http.StatusOK, acct, m, conv, &answerForm{})
}

// renderReply shows reply m of conv, read from the store and audited as
// it is shown, with the answer form as given (its problems and text, when
// an answer was refused) and the answers sent to it.
func (s *Server) renderReply(w http.ResponseWriter, r *http.Request, status int, acct *securetextd.SenderAccount, m *securetextd.Message, conv *securetextd.Conversation, form *answerForm) {
	if err := s.store.Audit(r.Context(), securetextd.AuditEvent{Event: securetextd.AuditReplyRead,
		MessageID: m.ID, ConversationID: conv.ID}); err != nil {
		s.fail(w, r, "audit reply read", err)
		return
	}
	p := &replyPageData{layout: layoutFor(acct, "Reply"), ID: m.ID, Phone: string(conv.Phone), Received: m.Received, Answer: form}
	body, cut, err := s.body(r, m)
	if err != nil {
		s.fail(w, r, "read reply body", err)
		return
	}
	p.Body, p.BodyCut = body, cut
	for i, part := range m.Parts {
		if part.Kind != securetextd.PartAttachment && part.Kind != securetextd.PartInline {
			continue
		}
		f := fileRow{
			Href: securetextd.ConsoleReplyPath(m.ID) + "/p/" + strconv.Itoa(i),
			Name: fileName(part, i), Type: part.ContentType, Size: part.Size,
		}
		if isPhoto(part) {
			p.Photos = append(p.Photos, f)
		}
		p.Files = append(p.Files, f)
	}
	msgs, err := s.store.ConversationMessages(r.Context(), conv.ID)
	if err != nil {
		s.fail(w, r, "conversation messages", err)
		return
	}
	answered, answers := thread(msgs, m.ID)
	if answered != nil {
		p.Answered = "/m/" + strconv.FormatInt(answered.ID, 10)
	}
	form.Answers = answers
	if err := s.answerState(r, acct, conv, form); err != nil {
		s.fail(w, r, "answer state", err)
		return
	}
	s.render(w, status, "reply_page.html", p)
}

// handleReplyPart serves a file of a reply as a download, audited.
func (s *Server) handleReplyPart(w http.ResponseWriter, r *http.Request) {
	acct, r := s.signedIn(w, r)
	if acct == nil {
		return
	}
	m, conv := s.ownReply(w, r, acct)
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
		s.fail(w, r, "open reply part", err)
		return
	}
	inline := r.URL.Query().Get("inline") == "1" && isPhoto(m.Parts[idx])
	detail := "part " + strconv.Itoa(idx)
	if inline {
		detail += " inline"
	}
	if err := s.store.Audit(r.Context(), securetextd.AuditEvent{Event: securetextd.AuditReplyRead,
		MessageID: m.ID, ConversationID: conv.ID, Detail: detail}); err != nil {
		s.fail(w, r, "audit reply read", err)
		return
	}
	h := w.Header()
	// As handlePart: bytes to save, never rendered here; or, asked for
	// by the page's <img>, a raster image, which runs nothing. Either
	// way the sandbox lets nothing run or load, and nosniff (the
	// security headers) keeps the browser to the type given.
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if inline {
		h.Set("Content-Type", m.Parts[idx].ContentType)
		h.Set("Content-Disposition", "inline")
	} else {
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": fileName(m.Parts[idx], idx)}))
	}
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(ra, 0, size))
}

// repliesTo lists the replies that answer message m in the conversations
// rows name: in each, the replies after m and before the sender's next
// message. Their content is not read.
func (s *Server) repliesTo(r *http.Request, m *securetextd.Message, rows []securetextd.SentMessage) ([]replyRow, error) {
	var out []replyRow
	for _, row := range rows {
		msgs, err := s.store.ConversationMessages(r.Context(), row.ConversationID)
		if err != nil {
			return nil, err
		}
		after := false
		for _, cm := range msgs {
			switch {
			case cm.ID == m.ID:
				after = true
			case cm.Direction == securetextd.Inbound:
				after = false
			case after && cm.Direction == securetextd.Reply:
				out = append(out, replyRow{Href: securetextd.ConsoleReplyPath(cm.ID), Phone: string(row.Phone), Received: cm.Received, Files: countFiles(cm)})
			}
		}
	}
	return out, nil
}

// photoTypes are the images the reply's page shows: raster formats, which
// run no script, unlike SVG; the portal shows the same.
var photoTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// isPhoto reports whether a reply's part is shown on its page as an
// image.
func isPhoto(p securetextd.Part) bool {
	return (p.Kind == securetextd.PartAttachment || p.Kind == securetextd.PartInline) && photoTypes[p.ContentType]
}

// countFiles counts a message's files.
func countFiles(m *securetextd.Message) int {
	n := 0
	for _, p := range m.Parts {
		if p.Kind == securetextd.PartAttachment || p.Kind == securetextd.PartInline {
			n++
		}
	}
	return n
}
