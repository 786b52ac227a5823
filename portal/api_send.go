package portal

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// Bounds of the fields of a message sent through the API.
const (
	maxSubjectRunes  = 255
	maxAPITextBytes  = 1 << 20 // a text or HTML body, held in memory
	maxAPIFiles      = 100
	maxIdempotentKey = 255
	// multipartFraming is added to MaxBodyBytes for boundaries and part
	// headers.
	multipartFraming = 256 << 10
)

// sendRequest is the JSON form of POST /api/v1/messages.
type sendRequest struct {
	To          []sendTo         `json:"to"` // api_submission.go
	Subject     string           `json:"subject"`
	Language    string           `json:"language"` // api_submission.go
	Text        string           `json:"text"`
	HTML        string           `json:"html"`
	Attachments []jsonAttachment `json:"attachments"`
}

type jsonAttachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Content     string `json:"content"` // base64 (standard, padding optional)
}

// apiMessage is a message and its recipients, as the API shows it.
type apiMessage struct {
	ID         int64          `json:"id"`
	Received   time.Time      `json:"received"`
	Recipients []apiRecipient `json:"recipients"`
}

type apiRecipient struct {
	To             securetextd.Phone `json:"to"`
	ConversationID int64             `json:"conversation_id"`
	State          string            `json:"state"`
	Attempts       int               `json:"attempts"`
	Updated        *time.Time        `json:"updated,omitempty"`
	Events         []apiEvent        `json:"events"`
}

type apiEvent struct {
	Type string    `json:"type"`
	At   time.Time `json:"at"`
}

// partSink receives the parts of a message as they are read: a
// *store.Draft, which seals them, or discard, which only lets them be
// fingerprinted (a retry whose answer is kept).
type partSink interface {
	CreatePart(securetextd.Part) (io.WriteCloser, error)
}

type discardSink struct{}

func (discardSink) CreatePart(securetextd.Part) (io.WriteCloser, error) {
	return nopCloser{io.Discard}, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// handleSend stores a message from the API and queues its texts, as mail
// is: the same phone rules, sealing, outbox and limits. The body is JSON,
// or multipart/form-data for large files, which is streamed part by part
// into the store and never held whole in memory. With an Idempotency-Key,
// a retry gets the first answer and sends nothing twice; the same key with
// another message is refused.
func (a *API) handleSend(w http.ResponseWriter, r *http.Request, key *securetextd.APIKey) {
	cfg := a.cfg.Load()
	ctx := r.Context()
	idemKey := r.Header.Get("Idempotency-Key")
	if len(idemKey) > maxIdempotentKey || strings.ContainsFunc(idemKey, func(c rune) bool { return c < 0x21 || c > 0x7e }) {
		a.refuse(w, r, "invalid", http.StatusBadRequest, "invalid-request", "Bad Idempotency-Key",
			fmt.Sprintf("An Idempotency-Key is 1 to %d visible ASCII characters, such as a UUID.", maxIdempotentKey))
		return
	}
	mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var limit int64
	switch mediaType {
	case "application/json":
		limit = cfg.MaxJSONBytes
	case "multipart/form-data":
		limit = cfg.MaxBodyBytes + multipartFraming
	default:
		a.refuse(w, r, "invalid", http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			"Send application/json, or multipart/form-data for large files.")
		return
	}
	if r.ContentLength > limit {
		a.tooLarge(w, r, mediaType, limit)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)

	// A retry whose answer is kept is read only to fingerprint it: its
	// content is not sealed again.
	var sink partSink = discardSink{}
	var kept *store.IdempotentRecord
	if idemKey != "" {
		rec, err := a.store.IdempotentResponse(ctx, key.Sender, idemKey)
		switch securetextd.ErrorCode(err) {
		case "":
			kept = rec
		case securetextd.ENOTFOUND:
		default:
			a.fail(w, r, "idempotent response", err)
			return
		}
	}
	var draft *store.Draft
	if kept == nil {
		draft = a.store.NewDraft()
		defer draft.Discard() // a no-op once committed
		sink = draft
	}

	sub := &submission{}
	var err error
	if mediaType == "application/json" {
		err = a.readJSON(r, sub, sink, kept == nil, key)
	} else {
		err = a.readMultipart(r, params["boundary"], sub, sink)
	}
	if err == nil && len(sub.errs) == 0 {
		a.checkSubmission(sub)
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		a.tooLarge(w, r, mediaType, limit)
		return
	case errors.Is(err, errMalformed):
		a.refuse(w, r, "invalid", http.StatusBadRequest, "malformed-request", "Malformed request", err.Error())
		return
	case err != nil:
		switch code := securetextd.ErrorCode(err); code {
		case securetextd.ELIMIT, securetextd.EMALWARE, securetextd.EUNSCANNED:
			a.metrics().MessageRefused("api", code)
		}
		a.fail(w, r, "read message", err)
		return
	case len(sub.errs) > 0:
		a.metrics().MessageRefused("api", "invalid")
		a.writeProblem(w, r, &problem{
			Type: problemTypes + "invalid-request", Title: "Invalid request", Status: http.StatusUnprocessableEntity,
			Detail: "The message was not sent: see errors.", Errors: sub.errs,
		})
		return
	}
	fp := sub.fingerprint()
	if kept != nil {
		a.replay(w, r, kept, fp)
		return
	}

	cfgHost := cfg.MessageIDHost
	m := &securetextd.Message{
		Direction: securetextd.Inbound,
		Sender:    key.Sender,
		Subject:   sub.subject,
		MessageID: strings.ToLower(rand.Text()) + "@" + cfgHost,
		Received:  time.Now(),
		Auth:      "api-key#" + strconv.FormatInt(key.ID, 10),
		Language:  sub.language,
	}
	var idem *store.Idempotency
	var body []byte
	if idemKey != "" {
		idem = &store.Idempotency{Key: idemKey, Fingerprint: fp, Response: func(rc *store.Receipt) (int, []byte, error) {
			var err error
			body, err = json.Marshal(receiptView(rc, m))
			return http.StatusCreated, body, err
		}}
	}
	// The dates of birth are kept before the message commits, so that no
	// link to it ever opens without its check. A message that then fails
	// to commit leaves a date the sender gave all the same.
	for _, p := range sub.to {
		if dob, ok := sub.dobs[p]; ok {
			if err := a.store.SetDateOfBirth(ctx, p, dob); err != nil {
				a.fail(w, r, "set date of birth", err)
				return
			}
		}
	}
	receipt, rec, err := draft.CommitAPITargets(ctx, m, sub.targets(), idem)
	if err != nil {
		a.metrics().MessageRefused("api", refusalReason(err))
		a.fail(w, r, "commit", err)
		return
	}
	if rec != nil { // a request with the same key won the race
		a.replay(w, r, rec, fp)
		return
	}
	if body == nil {
		body, _ = json.Marshal(receiptView(receipt, m))
	}
	a.metrics().MessageAccepted("api")
	a.logger.Info("message accepted", "message", receipt.MessageID, "key", key.ID, "account", key.Sender,
		"parts", sub.parts, "recipients", maskedList(sub.to))
	w.Header().Set("Location", "/api/v1/messages/"+strconv.FormatInt(receipt.MessageID, 10))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	w.Write(append(body, '\n'))
}

// replay answers a retry with the answer kept for its Idempotency-Key, or
// refuses a different request sent with the same key.
func (a *API) replay(w http.ResponseWriter, r *http.Request, rec *store.IdempotentRecord, fp [32]byte) {
	if !rec.Matches(fp) {
		a.refuse(w, r, "invalid", http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key reused",
			"This Idempotency-Key was used for a different message. Use a new key for each new message.")
		return
	}
	w.Header().Set("Idempotent-Replayed", "true")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rec.Status)
	w.Write(append(rec.Body, '\n'))
}

func (a *API) refuse(w http.ResponseWriter, r *http.Request, reason string, status int, typ, title, detail string) {
	a.metrics().MessageRefused("api", reason)
	a.problem(w, r, status, typ, title, detail)
}

func (a *API) tooLarge(w http.ResponseWriter, r *http.Request, mediaType string, limit int64) {
	detail := fmt.Sprintf("The request is over %s.", humanSize(limit))
	if mediaType == "application/json" {
		detail += " Send large files as multipart/form-data, which allows " + humanSize(a.cfg.Load().MaxBodyBytes) + "."
	}
	a.refuse(w, r, "too_large", http.StatusRequestEntityTooLarge, "too-large", "Request too large", detail)
}

// receiptView is the answer to a message just stored.
func receiptView(rc *store.Receipt, m *securetextd.Message) *apiMessage {
	v := &apiMessage{ID: rc.MessageID, Received: m.Received.UTC(), Recipients: []apiRecipient{}}
	for _, c := range rc.Conversations {
		v.Recipients = append(v.Recipients, apiRecipient{
			To: c.Phone, ConversationID: c.ID, State: securetextd.DeliveryQueued, Events: []apiEvent{},
		})
	}
	return v
}

// refusalReason names a refusal for the metrics.
func refusalReason(err error) string {
	switch securetextd.ErrorCode(err) {
	case securetextd.EINVALID:
		return "invalid"
	case securetextd.ETOOLARGE:
		return "too_large"
	case securetextd.ELIMIT:
		return "limit"
	case securetextd.EINTERNAL:
		return "internal"
	}
	return securetextd.ErrorCode(err)
}

// errMalformed marks a body that cannot be parsed at all.
var errMalformed = errors.New("malformed request")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// readJSON decodes a JSON request, checks its recipients and the sender's
// limits before any content is sealed, then writes its parts to sink.
func (a *API) readJSON(r *http.Request, sub *submission, sink partSink, sealing bool, key *securetextd.APIKey) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	var req sendRequest
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return malformed("the body is not a JSON message: %v", err)
	}
	if dec.More() {
		return malformed("the body holds more than one JSON value")
	}
	for i, to := range req.To {
		cfg := a.cfg.Load()
		field := fmt.Sprintf("to[%d]", i)
		n := len(sub.to)
		sub.addRecipient(cfg.parseRecipient, field, to.To)
		if len(sub.to) > n {
			sub.addFallback(cfg.EmailRecipients, field+".fallback_email", to.FallbackEmail)
			if to.Verify != nil {
				sub.addDateOfBirth(field+".verify.date_of_birth", sub.to[n], to.Verify.DateOfBirth)
			}
		}
	}
	sub.setSubject(req.Subject)
	sub.setLanguage(req.Language)
	if len(req.Attachments) > maxAPIFiles {
		sub.bad("attachments", "at most %d files in one message", maxAPIFiles)
	}
	a.checkSubmission(sub)
	if len(sub.errs) > 0 {
		return nil
	}
	if sealing {
		if err := a.store.CheckLimits(r.Context(), key.Sender, sub.targets()); err != nil {
			return err
		}
	}
	if err := sub.addText(sink, "text", strings.NewReader(req.Text)); err != nil {
		return err
	}
	if err := sub.addText(sink, "html", strings.NewReader(req.HTML)); err != nil {
		return err
	}
	for i, att := range req.Attachments {
		field := fmt.Sprintf("attachments[%d]", i)
		// Standard base64, with or without padding; line breaks (as in
		// MIME) are skipped by the decoder.
		content := strings.TrimRight(att.Content, "=\r\n")
		dec := base64.NewDecoder(base64.RawStdEncoding, strings.NewReader(content))
		if err := sub.addFile(sink, field, att.Filename, att.ContentType, dec); err != nil {
			var corrupt base64.CorruptInputError
			if errors.As(err, &corrupt) {
				// The draft is left with a part half written: it is
				// discarded, as the request is refused.
				sub.bad(field+".content", "is not base64 (at byte %d)", int64(corrupt))
				return nil
			}
			return err
		}
		req.Attachments[i].Content = "" // let it go
	}
	return nil
}

// readMultipart reads a multipart/form-data request part by part: the
// fields to (repeated, or numbers separated by commas), subject, text and
// html, and any number of files. Files are streamed into sink as they
// arrive.
func (a *API) readMultipart(r *http.Request, boundary string, sub *submission, sink partSink) error {
	return readMessageForm(r.Body, boundary, a.cfg.Load().parseRecipient, formFields{}, sub, sink)
}

// formFields is what a multipart form may hold beyond the API's fields.
type formFields struct {
	// datesOfBirth accepts a date_of_birth field after each to field: it
	// applies to the numbers of that field (empty: none).
	datesOfBirth bool
	// other reads a field of the caller's own; it returns false for a
	// field it does not know.
	other func(name string, p *multipart.Part) (bool, error)
}

// readMessageForm reads a multipart/form-data body part by part, as
// readMultipart describes, with the fields more allows.
func readMessageForm(body io.Reader, boundary string, parse func(string) (securetextd.Phone, error), more formFields, sub *submission, sink partSink) error {
	if boundary == "" {
		return malformed("multipart/form-data without a boundary")
	}
	mr := multipart.NewReader(body, boundary)
	n := 0
	var last []securetextd.Phone // the numbers of the last to field
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return multipartErr(err)
		}
		name := p.FormName()
		switch {
		case p.FileName() != "":
			if len(sub.files) >= maxAPIFiles {
				sub.bad("attachments", "at most %d files in one message", maxAPIFiles)
				return nil
			}
			if err := sub.addFile(sink, "attachments["+strconv.Itoa(len(sub.files))+"]", p.FileName(), p.Header.Get("Content-Type"), p); err != nil {
				return multipartErr(err)
			}
		case name == "to":
			b, err := readField(p, 4096)
			if err != nil {
				return err
			}
			last = last[:0]
			for v := range strings.SplitSeq(b, ",") {
				if v = strings.TrimSpace(v); v != "" {
					before := len(sub.to)
					sub.addRecipient(parse, "to["+strconv.Itoa(n)+"]", v)
					if len(sub.to) > before {
						last = append(last, sub.to[before])
					}
					n++
				}
			}
		case name == "date_of_birth" && more.datesOfBirth:
			b, err := readField(p, 64)
			if err != nil {
				return err
			}
			if b = strings.TrimSpace(b); b != "" {
				if len(last) == 0 {
					sub.bad("date_of_birth", "give the phone number the date of birth is for")
				}
				for _, ph := range last {
					sub.addDateOfBirth("to["+strconv.Itoa(n-1)+"].date_of_birth", ph, b)
				}
			}
		case name == "subject":
			b, err := readField(p, 4*maxSubjectRunes)
			if err != nil {
				return err
			}
			sub.setSubject(b)
		case name == "language":
			b, err := readField(p, 64)
			if err != nil {
				return err
			}
			sub.setLanguage(b)
		case name == "text" || name == "html":
			if err := sub.addText(sink, name, p); err != nil {
				return multipartErr(err)
			}
		default:
			if more.other != nil {
				ok, err := more.other(name, p)
				if err != nil {
					return multipartErr(err)
				}
				if ok {
					continue
				}
			}
			sub.bad(name, "unknown field: use to, subject, text, html and files")
			return nil
		}
	}
}

func multipartErr(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || securetextd.ErrorCode(err) != securetextd.EINTERNAL {
		return err
	}
	if strings.HasPrefix(err.Error(), "store:") {
		return err
	}
	return malformed("the form could not be read: %v", err)
}

func readField(p io.Reader, max int) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, int64(max)+1))
	if err != nil {
		return "", multipartErr(err)
	}
	if len(b) > max {
		return "", malformed("a field is over %d bytes", max)
	}
	return string(b), nil
}

func maskedList(phones []securetextd.Phone) []string {
	out := make([]string, len(phones))
	for i, p := range phones {
		out[i] = p.Masked()
	}
	return out
}
