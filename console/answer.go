package console

import (
	"crypto/rand"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/portal"
)

// The clinician answers a reply from its page: a text and files, read as
// compose's form is (portal.ReadMessageForm, each file streamed into a
// store draft, sealed and scanned as it arrives, the whole bounded by
// smtp.max_message_bytes) and committed by store.Draft.CommitAnswer, the
// path a mailed answer to the conversation's reply address takes: the
// same limits, audit and renewal, and the recipient gets a fresh link by
// text (or notice email), as for any new message. The answer goes out in
// the name of the conversation's sender only: an admin who reads another
// sender's reply sees no form, and a POST of theirs is refused. A
// conversation withdrawn, deleted or past its retention takes no answer
// (store.DB.AnswerClosed): the page says why and offers compose, which
// starts a new conversation.

// answerRow is an answer the sender sent after a reply, as the reply's
// page lists it.
type answerRow struct {
	Href string
	Sent time.Time
}

// answerForm is the answer part of a reply's page.
type answerForm struct {
	// Closed says why the conversation takes no answer; OnlySender names
	// the sender who alone may answer, to an admin reading another's
	// reply. With either, no form is shown.
	Closed     string
	OnlySender string
	Text       string
	Problems   []portal.FormProblem
	MaxSize    int64
	Answers    []answerRow
}

// thread finds, in a conversation's messages, the sender's message that
// reply answers (the last before it; nil when none) and the sender's
// answers to it (those after it, before the recipient's next reply).
func thread(msgs []*securetextd.Message, reply int64) (answered *securetextd.Message, answers []answerRow) {
	after := false
	for _, m := range msgs {
		switch {
		case m.ID == reply:
			after = true
		case m.Direction == securetextd.Reply:
			if after {
				return answered, answers
			}
		case !after:
			answered = m
		default:
			answers = append(answers, answerRow{Href: "/m/" + strconv.FormatInt(m.ID, 10), Sent: m.Received})
		}
	}
	return answered, answers
}

// answerState fills in whether acct may answer in conv, and why not.
func (s *Server) answerState(r *http.Request, acct *securetextd.SenderAccount, conv *securetextd.Conversation, f *answerForm) error {
	f.MaxSize = s.cfg.MaxMessageBytes
	if !strings.EqualFold(conv.Sender, acct.Address) {
		f.OnlySender = conv.Sender
		return nil
	}
	err := s.store.AnswerClosed(r.Context(), conv.ID)
	switch securetextd.ErrorCode(err) {
	case "":
	case securetextd.EREVOKED, securetextd.EEXPIRED:
		f.Closed = securetextd.ErrorMessage(err)
	default:
		return err
	}
	return nil
}

// handleAnswer reads an answer to reply id as it streams in and commits
// it into the reply's conversation, then shows the answer's page. An
// empty answer, or one the store refuses for something the sender can
// act on (a limit, malware), shows the reply's page again with the
// problem at the form and the text kept; nothing of it is stored.
func (s *Server) handleAnswer(w http.ResponseWriter, r *http.Request) {
	acct, r := s.signedIn(w, r)
	if acct == nil {
		return
	}
	reply, conv := s.ownReply(w, r, acct)
	if reply == nil {
		return
	}
	ctx := r.Context()
	// Refused before the upload is read: it would only be thrown away.
	if !strings.EqualFold(conv.Sender, acct.Address) {
		s.render(w, http.StatusForbidden, "message.html", &messagePage{
			layout:  layoutFor(acct, "Cannot answer"),
			Heading: "Only the sender can answer",
			Text:    "An answer goes out in the name of the conversation's sender, " + conv.Sender + ", and only they can send it.",
			Href:    securetextd.ConsoleReplyPath(reply.ID), LinkText: "Back to the reply",
		})
		return
	}
	if err := s.store.AnswerClosed(ctx, conv.ID); err != nil {
		s.answerClosed(w, r, acct, conv, err)
		return
	}
	mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType != "multipart/form-data" {
		s.renderMessage(w, http.StatusUnsupportedMediaType, "Try again", "This form could not be read", "Go back and try again.")
		return
	}
	limit := s.cfg.MaxMessageBytes + formFraming
	if r.ContentLength > limit {
		s.tooLarge(w)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)

	form := &answerForm{}
	draft := s.store.NewDraft()
	defer draft.Discard() // a no-op once committed
	read, err := portal.ReadMessageForm(r.Body, params["boundary"], portal.FormOptions{
		ParsePhone:   s.cfg.ParsePhone,
		NoRecipients: true,
		Other: func(name string, p *multipart.Part) (bool, error) {
			if name != "files" { // "files": a file input left empty
				return false, nil
			}
			_, err := io.Copy(io.Discard, io.LimitReader(p, 1<<10))
			return true, err
		},
	}, &echoSink{draft: draft, text: &form.Text})
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		s.tooLarge(w)
		return
	case portal.IsMalformed(err):
		s.renderMessage(w, http.StatusBadRequest, "Try again", "This form could not be read", "Go back and try again.")
		return
	case err != nil:
		s.answerFailed(w, r, acct, reply, conv, form, err)
		return
	}
	form.Problems = read.Problems
	if len(form.Problems) == 0 && read.Parts == 0 {
		form.Problems = []portal.FormProblem{{Field: "text", Detail: "write an answer or add a file"}}
	}
	if len(form.Problems) > 0 {
		s.renderReply(w, r, http.StatusUnprocessableEntity, acct, reply, conv, form)
		return
	}

	msgs, err := s.store.ConversationMessages(ctx, conv.ID)
	if err != nil {
		s.fail(w, r, "conversation messages", err)
		return
	}
	m := &securetextd.Message{
		Direction: securetextd.Inbound,
		Sender:    acct.Address,
		MessageID: strings.ToLower(rand.Text()) + "@" + s.cfg.MessageIDHost,
		Received:  time.Now(),
		Auth:      "console",
	}
	// Threaded as a mail program threads an answer: "Re:" the subject of
	// the message the reply answers, and References to both; signed with
	// the display name that message went out with (the sender's own, from
	// their mail program's From).
	answered, _ := thread(msgs, reply.ID)
	if answered != nil {
		m.Subject = reSubject(answered.Subject)
		m.SenderName = answered.SenderName
		m.References = append(m.References, answered.References...)
		if answered.MessageID != "" {
			m.References = append(m.References, answered.MessageID)
		}
	}
	if reply.MessageID != "" {
		m.References = append(m.References, reply.MessageID)
	}
	receipt, err := draft.CommitAnswer(ctx, m, conv.ID)
	if err != nil {
		s.answerFailed(w, r, acct, reply, conv, form, err)
		return
	}
	s.logger.Info("answer accepted", "message", receipt.MessageID, "conversation", conv.ID,
		"account", acct.Address, "parts", read.Parts)
	http.Redirect(w, r, "/m/"+strconv.FormatInt(receipt.MessageID, 10)+"?done=answered", http.StatusSeeOther)
}

// reSubject is subject as an answer's: "Re: " before it, once.
func reSubject(subject string) string {
	if subject == "" || strings.HasPrefix(strings.ToLower(subject), "re:") {
		return subject
	}
	return "Re: " + subject
}

// answerFailed shows the reply's page again for a refusal the sender can
// act on (a limit, malware, a scan to try again), the closed page when the
// conversation closed while the answer was written, and fails otherwise.
func (s *Server) answerFailed(w http.ResponseWriter, r *http.Request, acct *securetextd.SenderAccount, reply *securetextd.Message, conv *securetextd.Conversation, form *answerForm, err error) {
	switch code := securetextd.ErrorCode(err); code {
	case securetextd.EREVOKED, securetextd.EEXPIRED:
		s.answerClosed(w, r, acct, conv, err)
		return
	case securetextd.ELIMIT, securetextd.EMALWARE, securetextd.EUNSCANNED, securetextd.EINVALID, securetextd.ETOOLARGE:
		s.logger.Info("answer refused", "code", code)
		form.Problems = []portal.FormProblem{{Field: "answer", Detail: securetextd.ErrorMessage(err)}}
		status := http.StatusUnprocessableEntity
		if code == securetextd.ELIMIT {
			status = http.StatusTooManyRequests
		}
		s.renderReply(w, r, status, acct, reply, conv, form)
		return
	}
	s.fail(w, r, "answer", err)
}

// answerClosed is the page of an answer to a conversation that takes no
// more: why, and the way to write to the number again.
func (s *Server) answerClosed(w http.ResponseWriter, r *http.Request, acct *securetextd.SenderAccount, conv *securetextd.Conversation, err error) {
	switch securetextd.ErrorCode(err) {
	case securetextd.EREVOKED, securetextd.EEXPIRED:
	default:
		s.fail(w, r, "answer closed", err)
		return
	}
	s.render(w, http.StatusGone, "message.html", &messagePage{
		layout:  layoutFor(acct, "Cannot answer"),
		Heading: "Your answer was not sent",
		Text: securetextd.ErrorMessage(err) + " To write to " + string(conv.Phone) +
			" again, compose a new message: it starts a new conversation.",
		Href: "/compose", LinkText: "Compose a new message",
	})
}
