package portal

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// What a message sent through the API asks for, as it is read (JSON or
// multipart): its recipients, with what the portal is to check of each,
// its subject, and a digest of each body and file, checked and
// fingerprinted field by field.

// sendTo is one recipient of a sendRequest: a phone number as people
// write it, or (with email_recipients.enabled) an email address, or an
// object that adds what the portal checks of the person before anything
// opens, and, for a phone, the address its notice goes to by email if the
// text fails for good (api_email.go):
//
//	"+12125550123"
//	"jane@example.net"
//	{"to": "+12125550123", "verify": {"date_of_birth": "1980-04-27"},
//	 "fallback_email": "sam@example.net"}
type sendTo struct {
	To            string     `json:"to"`
	FallbackEmail string     `json:"fallback_email,omitempty"`
	Verify        *sendCheck `json:"verify,omitempty"`
}

// sendCheck is what a recipient must give on the portal: the date of
// birth, at the first visit and at every password reset.
type sendCheck struct {
	DateOfBirth string `json:"date_of_birth"`
}

// UnmarshalJSON reads a recipient given as a string or as an object,
// refusing unknown fields of the object as the request's are.
func (t *sendTo) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*t = sendTo{}
		return json.Unmarshal(b, &t.To)
	}
	type plain sendTo
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return err
	}
	*t = sendTo(p)
	return nil
}

// submission is a message being read from a request: what it asks for,
// and a digest of each field, for the request's fingerprint.
type submission struct {
	to      []securetextd.Phone
	dobs    map[securetextd.Phone]string // verify.date_of_birth, YYYY-MM-DD
	subject string
	text    [32]byte
	html    [32]byte
	files   []fileDigest
	parts   int
	errs    []fieldError

	// fallbacks holds, beside each of to, its fallback address or "".
	fallbacks []string
	// language is the language the recipients read ("es"), for their
	// texts: "" when the request named none.
	language string
}

type fileDigest struct {
	name, typ string
	sum       [32]byte
}

// fingerprint hashes what the request asks for, whatever its encoding
// (JSON or multipart, field order, base64 line breaks): a retry has the
// same fingerprint, another request with the same Idempotency-Key does not.
func (s *submission) fingerprint() [32]byte {
	h := sha256.New()
	field := func(b []byte) {
		binary.Write(h, binary.BigEndian, uint32(len(b)))
		h.Write(b)
	}
	field([]byte("securetextd api message v1"))
	for i, p := range s.to {
		field([]byte(p))
		if dob, ok := s.dobs[p]; ok {
			field([]byte("verify.date_of_birth"))
			field([]byte(dob))
		}
		if i < len(s.fallbacks) && s.fallbacks[i] != "" {
			field([]byte("fallback " + s.fallbacks[i]))
		}
	}
	field([]byte("subject"))
	field([]byte(s.subject))
	if s.language != "" {
		field([]byte("language " + s.language))
	}
	field(s.text[:])
	field(s.html[:])
	for _, f := range s.files {
		field([]byte(f.name))
		field([]byte(f.typ))
		field(f.sum[:])
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func (s *submission) bad(field, format string, args ...any) {
	s.errs = append(s.errs, fieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

func (s *submission) addRecipient(parse func(string) (securetextd.Phone, error), field, v string) {
	p, err := parse(v)
	if err != nil {
		s.bad(field, "%s", securetextd.ErrorMessage(err))
		return
	}
	s.to = append(s.to, p)
	s.fallbacks = append(s.fallbacks, "")
}

// targets are the store's targets of the submission.
func (s *submission) targets() []store.Target {
	targets := make([]store.Target, len(s.to))
	for i, p := range s.to {
		targets[i] = store.Target{Phone: p, Fallback: s.fallbacks[i]}
	}
	return targets
}

// addDateOfBirth keeps the date of birth the portal is to ask of phone's
// recipient.
func (s *submission) addDateOfBirth(field string, phone securetextd.Phone, v string) {
	dob, err := store.ParseDateOfBirth(v, time.Now())
	if err != nil {
		s.bad(field, "must be a date of birth of the form YYYY-MM-DD")
		return
	}
	if old, ok := s.dobs[phone]; ok && old != dob {
		s.bad(field, "differs from the date of birth given for the same number")
		return
	}
	if s.dobs == nil {
		s.dobs = make(map[securetextd.Phone]string)
	}
	s.dobs[phone] = dob
}

func (s *submission) setSubject(v string) {
	if strings.ContainsFunc(v, unicode.IsControl) || !utf8.ValidString(v) {
		s.bad("subject", "must be one line of text")
		return
	}
	if utf8.RuneCountInString(v) > maxSubjectRunes {
		s.bad("subject", "must be at most %d characters", maxSubjectRunes)
		return
	}
	s.subject = strings.TrimSpace(v)
}

// setLanguage keeps the language the recipients read, from a BCP 47 tag
// ("es", "es-US"): the text (or notice email) that brings each their link
// is in it, unless the recipient chose a language on the portal. A
// language the portal has no catalogue for takes the default.
func (s *submission) setLanguage(v string) {
	if v == "" {
		return
	}
	lang, ok := securetextd.ParseLanguage(v)
	if !ok || strings.Contains(v, ",") {
		s.bad("language", "must be one language tag, such as \"es\" or \"en-US\"")
		return
	}
	s.language = lang
}

// checkSubmission checks what can only be judged once every field is read.
func (a *API) checkSubmission(s *submission) {
	max := a.cfg.Load().MaxRecipients
	switch {
	case len(s.to) == 0 && !hasField(s.errs, "to"):
		s.bad("to", "give at least one phone number or email address")
	case len(s.to) > max:
		s.bad("to", "at most %d recipients in one message", max)
	}
}

func hasField(errs []fieldError, prefix string) bool {
	for _, e := range errs {
		if strings.HasPrefix(e.Field, prefix) {
			return true
		}
	}
	return false
}

// addText writes a text or HTML body to sink: it is read into memory
// (bounded), made valid UTF-8, and left out when empty.
func (s *submission) addText(sink partSink, field string, r io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(r, maxAPITextBytes+1))
	if err != nil {
		return err
	}
	if len(b) > maxAPITextBytes {
		s.bad(field, "must be at most %s; send longer content as a file", humanSize(maxAPITextBytes))
		return nil
	}
	text := normalizeText(b)
	if strings.TrimSpace(text) == "" {
		return nil
	}
	kind, typ, sum := securetextd.PartText, "text/plain", &s.text
	if field == "html" {
		kind, typ, sum = securetextd.PartHTML, "text/html", &s.html
	}
	*sum = sha256.Sum256([]byte(text))
	w, err := sink.CreatePart(securetextd.Part{Kind: kind, ContentType: typ})
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, text); err != nil {
		return err
	}
	s.parts++
	return w.Close()
}

// addFile streams one attachment into sink, hashing it on the way. An
// undeclared content type is sniffed from the first bytes.
func (s *submission) addFile(sink partSink, field, name, declared string, r io.Reader) error {
	br := bufio.NewReaderSize(r, 512)
	head, err := br.Peek(512)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return err
	}
	typ := declaredType(declared)
	if typ == "" {
		typ, _, _ = mime.ParseMediaType(http.DetectContentType(head))
	}
	clean := cleanFilename(name)
	if clean == "" {
		clean = "file-" + strconv.Itoa(len(s.files)+1)
	}
	w, err := sink.CreatePart(securetextd.Part{Kind: securetextd.PartAttachment, ContentType: typ, Filename: clean})
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(w, h), br); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	s.files = append(s.files, fileDigest{name: clean, typ: typ, sum: sum32(h)})
	s.parts++
	return nil
}

func sum32(h hash.Hash) (b [32]byte) {
	h.Sum(b[:0])
	return b
}
