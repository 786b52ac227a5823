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

// The compose form ("WebMail"): the clinician writes a message to one or
// more phone numbers, with files, from the browser. It is read by the
// REST API's multipart reader (portal.ReadMessageForm), streamed part by
// part into a store draft (sealed, and scanned when clamd is set, as it
// arrives), and committed by the same store path as the API's: the same
// phone rules, limits (per sender, per phone, per organization), audit
// and outbox.

// composeRows is how many recipients the form offers; a row may hold
// several numbers separated by commas.
const composeRows = 4

// formFraming is added to the message limit for boundaries, part headers
// and the small fields.
const formFraming = 256 << 10

type composePage struct {
	layout
	Rows     []composeRow
	Subject  string
	Text     string
	Receipt  bool
	Problems []portal.FormProblem
	MaxSize  int64
}

type composeRow struct {
	N        int
	To, Born string
}

func (s *Server) newComposePage(acct *securetextd.SenderAccount) *composePage {
	p := &composePage{layout: layoutFor(acct, "Compose"), MaxSize: s.cfg.MaxMessageBytes}
	for i := range composeRows {
		p.Rows = append(p.Rows, composeRow{N: i})
	}
	return p
}

// handleComposeForm shows an empty compose form.
func (s *Server) handleComposeForm(w http.ResponseWriter, r *http.Request) {
	acct, _ := s.signedIn(w, r)
	if acct == nil {
		return
	}
	s.render(w, http.StatusOK, "compose.html", s.newComposePage(acct))
}

// handleCompose reads the compose form as it streams in and stores the
// message, then shows its page. A form with mistakes is shown again with
// each mistake at its field; its files must be chosen again (a browser
// never lets a page fill in a file input).
func (s *Server) handleCompose(w http.ResponseWriter, r *http.Request) {
	acct, r := s.signedIn(w, r)
	if acct == nil {
		return
	}
	ctx := r.Context()
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

	page := s.newComposePage(acct)
	draft := s.store.NewDraft()
	defer draft.Discard() // a no-op once committed
	form, err := portal.ReadMessageForm(r.Body, params["boundary"], portal.FormOptions{
		ParsePhone:    s.cfg.ParsePhone,
		MaxRecipients: s.cfg.MaxRecipients,
		DatesOfBirth:  true,
		Other: func(name string, p *multipart.Part) (bool, error) {
			switch name {
			case "read_receipt":
				page.Receipt = true
				draft.RequestReadReceipt(acct.Address)
			case "files": // a file input left empty
			default:
				return false, nil
			}
			_, err := io.Copy(io.Discard, io.LimitReader(p, 1<<10))
			return true, err
		},
	}, &echoSink{draft: draft, text: &page.Text})
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		s.tooLarge(w)
		return
	case portal.IsMalformed(err):
		s.renderMessage(w, http.StatusBadRequest, "Try again", "This form could not be read", "Go back and try again.")
		return
	case err != nil:
		s.composeFailed(w, r, page, err)
		return
	}
	if len(form.Problems) > 0 {
		page.Problems, page.Subject = form.Problems, form.Subject
		for i, p := range form.To {
			if i < len(page.Rows) {
				page.Rows[i].To, page.Rows[i].Born = string(p), form.DatesOfBirth[p]
			}
		}
		s.render(w, http.StatusUnprocessableEntity, "compose.html", page)
		return
	}
	// The dates of birth are kept before the message commits, so that no
	// link to it ever opens without its check (as the API does).
	for _, p := range form.To {
		if dob, ok := form.DatesOfBirth[p]; ok {
			if err := s.store.SetDateOfBirth(ctx, p, dob); err != nil {
				s.fail(w, r, "set date of birth", err)
				return
			}
		}
	}
	m := &securetextd.Message{
		Direction: securetextd.Inbound,
		Sender:    acct.Address,
		Subject:   form.Subject,
		MessageID: strings.ToLower(rand.Text()) + "@" + s.cfg.MessageIDHost,
		Received:  time.Now(),
		Auth:      "console",
	}
	receipt, _, err := draft.CommitAPI(ctx, m, form.To, nil)
	if err != nil {
		s.composeFailed(w, r, page, err)
		return
	}
	s.logger.Info("message accepted", "message", receipt.MessageID, "account", acct.Address,
		"parts", form.Parts, "recipients", len(form.To))
	http.Redirect(w, r, "/m/"+strconv.FormatInt(receipt.MessageID, 10)+"?sent=1", http.StatusSeeOther)
}

// composeFailed shows the form again for a refusal the sender can act on
// (a limit, malware, an invalid message), and fails otherwise.
func (s *Server) composeFailed(w http.ResponseWriter, r *http.Request, page *composePage, err error) {
	switch code := securetextd.ErrorCode(err); code {
	case securetextd.ELIMIT, securetextd.EMALWARE, securetextd.EUNSCANNED, securetextd.EINVALID, securetextd.ETOOLARGE:
		s.logger.Info("message refused", "code", code)
		page.Problems = []portal.FormProblem{{Field: "message", Detail: securetextd.ErrorMessage(err)}}
		status := http.StatusUnprocessableEntity
		if code == securetextd.ELIMIT {
			status = http.StatusTooManyRequests
		}
		s.render(w, status, "compose.html", page)
		return
	}
	s.fail(w, r, "compose", err)
}

func (s *Server) tooLarge(w http.ResponseWriter) {
	s.renderMessage(w, http.StatusRequestEntityTooLarge, "Too large", "This message is too large",
		"A message and its files may be at most "+humanSize(s.cfg.MaxMessageBytes)+". Go back and send fewer or smaller files.")
}

// echoSink passes parts to the draft, and keeps the text body's words in
// text (the page's), so that a form shown again keeps what was typed.
// Only the text is kept, bounded by the reader (1 MiB); files are not.
type echoSink struct {
	draft portal.PartSink
	text  *string
}

func (e *echoSink) CreatePart(p securetextd.Part) (io.WriteCloser, error) {
	w, err := e.draft.CreatePart(p)
	if err != nil || p.Kind != securetextd.PartText {
		return w, err
	}
	return &echoWriter{WriteCloser: w, to: e.text}, nil
}

type echoWriter struct {
	io.WriteCloser
	to   *string
	text strings.Builder
}

func (w *echoWriter) Write(b []byte) (int, error) {
	w.text.Write(b)
	return w.WriteCloser.Write(b)
}

func (w *echoWriter) Close() error {
	*w.to = w.text.String()
	return w.WriteCloser.Close()
}
