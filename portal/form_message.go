package portal

import (
	"errors"
	"io"
	"mime/multipart"

	"github.com/securetextd/securetextd"
)

// PartSink receives the parts of a message as ReadMessageForm reads them:
// a *store.Draft, which seals each part as it streams in.
type PartSink interface {
	CreatePart(securetextd.Part) (io.WriteCloser, error)
}

// MessageForm is a message read from a multipart/form-data body by
// ReadMessageForm: the same fields, checks and bounds as the REST API's
// multipart send, so that the console's compose form and the API store a
// message the same way.
type MessageForm struct {
	To           []securetextd.Phone
	DatesOfBirth map[securetextd.Phone]string // YYYY-MM-DD, for the numbers that have one
	Subject      string
	Parts        int // the bodies and files written to the sink
	Files        int
	// Problems are what the sender must correct, field by field; the
	// message must then not be committed.
	Problems []FormProblem
}

// FormProblem is one field the sender must correct.
type FormProblem struct{ Field, Detail string }

// FormOptions says who reads a form and what it may hold beyond the API's
// fields (to, subject, text, html, files).
type FormOptions struct {
	// ParsePhone checks a number with the gateway's phone rules. Required.
	ParsePhone func(string) (securetextd.Phone, error)
	// MaxRecipients bounds the phone numbers of one message.
	MaxRecipients int
	// NoRecipients reads a form that names no phone numbers: the
	// console's answer, which goes to the conversation it answers. A to
	// field is then a problem.
	NoRecipients bool
	// DatesOfBirth accepts a date_of_birth field after each to field: the
	// date the portal asks of the numbers in that field (empty: none).
	DatesOfBirth bool
	// Other reads a field of the caller's own, returning false for a
	// field it does not know (which is then refused). It must read p
	// within bounds of its own.
	Other func(name string, p *multipart.Part) (bool, error)
}

// ReadMessageForm reads a multipart/form-data body part by part, streaming
// each file into sink as it arrives: nothing is held whole in memory but
// a text body (at most 1 MiB). The caller bounds body (http.MaxBytesReader)
// and commits or discards the draft behind sink. The error is a malformed
// body (a 400), the body's limit (*http.MaxBytesError), or the sink's
// (the store's, a scan's verdict: *securetextd.Error codes).
func ReadMessageForm(body io.Reader, boundary string, o FormOptions, sink PartSink) (*MessageForm, error) {
	sub := &submission{}
	err := readMessageForm(body, boundary, o.ParsePhone, formFields{datesOfBirth: o.DatesOfBirth, other: o.Other}, sub, sink)
	if err != nil {
		return nil, err
	}
	switch {
	case o.NoRecipients:
		if len(sub.to) > 0 || hasField(sub.errs, "to") {
			sub.bad("to", "this form takes no phone numbers")
		}
	case len(sub.to) == 0 && !hasField(sub.errs, "to"):
		sub.bad("to", "give at least one phone number")
	case o.MaxRecipients > 0 && len(sub.to) > o.MaxRecipients:
		sub.bad("to", "at most %d phone numbers in one message", o.MaxRecipients)
	}
	f := &MessageForm{To: sub.to, DatesOfBirth: sub.dobs, Subject: sub.subject, Parts: sub.parts, Files: len(sub.files)}
	for _, e := range sub.errs {
		f.Problems = append(f.Problems, FormProblem(e))
	}
	return f, nil
}

// IsMalformed reports whether err is ReadMessageForm's word for a body
// that could not be parsed at all.
func IsMalformed(err error) bool { return errors.Is(err, errMalformed) }
