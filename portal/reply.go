package portal

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/securetextd/securetextd"
)

const (
	// multipartAllowance is added to MaxReplyBytes for the form's framing:
	// boundaries and part headers.
	multipartAllowance = 64 << 10
	// maxReplyText bounds the text of a reply, which is read into memory.
	maxReplyText = 64 << 10
	// maxReplyFiles bounds the files of one reply.
	maxReplyFiles = 20
)

// replyError is a reply refused for what it holds; its text is for the
// recipient.
type replyError struct {
	msg string // a message id of the catalogue
	n   int    // its plural count, for ReplyTooManyFiles
}

func (e *replyError) Error() string { return e.msg }

// handleReply stores a reply: the text and every file chosen or
// photographed. The upload is streamed part by part from the request into
// the store, never buffered whole in memory or on disk, and cut off at
// MaxReplyBytes: then nothing is stored and the recipient is told why.
func (s *Server) handleReply(w http.ResponseWriter, r *http.Request) {
	_, conv := s.ownConversation(w, r)
	if conv == nil {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxReplyBytes+multipartAllowance)
	mr, err := r.MultipartReader()
	if err != nil {
		s.replyFailed(w, r, conv, &replyError{msg: "ReplyUnreadable"}, "")
		return
	}
	up := &uploads{mr: mr}
	first, err := up.next()
	if err != nil {
		s.replyFailed(w, r, conv, err, up.text)
		return
	}
	if first == nil {
		s.renderConversation(w, r, http.StatusBadRequest, conv, s.printer(r).T("ReplyEmpty"))
		return
	}
	msg, err := s.store.SaveReply(r.Context(), conv.ID, up.all(first))
	if err != nil {
		if s.replyRefused(w, r, conv, err, up.text) {
			return
		}
		s.replyFailed(w, r, conv, err, up.text)
		return
	}
	s.logger.Info("reply", "phone", conv.Phone.Masked(), "conversation", conv.ID, "message", msg.ID, "files", up.files)
	http.Redirect(w, r, "/c/"+strconv.FormatInt(conv.ID, 10)+"#m"+strconv.FormatInt(msg.ID, 10), http.StatusSeeOther)
}

// replyFailed answers a reply that was not stored. A reply refused for
// what it holds (too large, too many files, a text too long, unreadable)
// shows the conversation again, the reason above the form and what was
// typed back in it, as a malware refusal does (scan.go): the patient
// loses nothing but the files, which a page cannot choose again for them.
// Anything else is the store's failure, with its error page.
func (s *Server) replyFailed(w http.ResponseWriter, r *http.Request, conv *securetextd.Conversation, err error, text string) {
	var tooBig *http.MaxBytesError
	var bad *replyError
	l := s.printer(r)
	kept := ""
	if text != "" {
		kept = " " + l.T("ReplyTextKept")
	}
	switch {
	case errors.As(err, &tooBig) || securetextd.ErrorCode(err) == securetextd.ETOOLARGE:
		s.logger.Info("reply too large", "phone", conv.Phone.Masked(), "conversation", conv.ID)
		s.renderConversationDraft(w, r, http.StatusRequestEntityTooLarge, conv,
			l.T("ReplyOver", "Max", l.Size(s.cfg.MaxReplyBytes))+kept, text)
	case errors.As(err, &bad) || securetextd.ErrorCode(err) == securetextd.EINVALID:
		problem := l.T("ReplyEmpty") // the store's only refusal of what a reply holds
		if bad != nil && bad.n > 0 {
			problem = l.N(bad.msg, bad.n)
		} else if bad != nil {
			problem = l.T(bad.msg)
		}
		s.renderConversationDraft(w, r, http.StatusBadRequest, conv, problem+" "+l.T("ReplyNothingSent")+kept, text)
	default:
		s.fail(w, r, "save reply", err)
	}
}

// uploads walks a reply's multipart form, part by part, skipping empty
// fields and unknown ones.
type uploads struct {
	mr    *multipart.Reader
	files int
	text  string // the reply's text, as typed (normalized)
}

type upload struct {
	part securetextd.Part
	r    io.Reader
}

// all yields first, then every later part. An error reading the form is
// handed to the store as the error of a last part's reader, so that the
// store stores nothing.
func (u *uploads) all(first *upload) iter.Seq2[securetextd.Part, io.Reader] {
	return func(yield func(securetextd.Part, io.Reader) bool) {
		for next := first; next != nil; {
			if !yield(next.part, next.r) {
				return
			}
			var err error
			if next, err = u.next(); err != nil {
				yield(securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/octet-stream"}, errReader{err})
				return
			}
		}
	}
}

// uploadReader is a file of the form as the store reads it: an error of
// the upload (cut short, malformed) becomes one the recipient can act on.
type uploadReader struct{ r io.Reader }

func (u uploadReader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	if err != nil && err != io.EOF {
		err = wrapUploadErr(err)
	}
	return n, err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// next returns the next part of the reply that has content, or nil at
// the end of the form.
func (u *uploads) next() (*upload, error) {
	for {
		p, err := u.mr.NextPart()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, wrapUploadErr(err)
		}
		switch p.FormName() {
		case "text":
			b, err := io.ReadAll(io.LimitReader(p, maxReplyText+1))
			if err != nil {
				return nil, wrapUploadErr(err)
			}
			if len(b) > maxReplyText {
				// Kept to its limit, in whole characters, for the
				// form: the patient splits it rather than types it
				// again.
				n := maxReplyText
				for n > 0 && !utf8.RuneStart(b[n]) {
					n--
				}
				u.text = normalizeText(b[:n])
				return nil, &replyError{msg: "ReplyTextTooLong"}
			}
			text := strings.TrimSpace(normalizeText(b))
			if text == "" {
				continue
			}
			u.text = text
			return &upload{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain", Size: int64(len(text))}, strings.NewReader(text)}, nil
		case "files", "photo":
			if p.FileName() == "" {
				continue // an empty file input
			}
			br := bufio.NewReaderSize(p, 512)
			head, err := br.Peek(512)
			if err != nil && err != io.EOF {
				return nil, wrapUploadErr(err)
			}
			if len(head) == 0 {
				continue
			}
			if u.files++; u.files > maxReplyFiles {
				return nil, &replyError{msg: "ReplyTooManyFiles", n: maxReplyFiles}
			}
			typ := declaredType(p.Header.Get("Content-Type"))
			if typ == "" {
				typ, _, _ = mime.ParseMediaType(http.DetectContentType(head))
			}
			name := cleanFilename(p.FileName())
			if name == "" || !utf8.ValidString(name) {
				name = "file-" + strconv.Itoa(u.files)
			}
			return &upload{securetextd.Part{Kind: securetextd.PartAttachment, ContentType: typ, Filename: name}, uploadReader{br}}, nil
		}
	}
}

// declaredType returns the media type a browser declared for a file,
// lowercase and without parameters, or "" when it declared none that
// says anything.
func declaredType(v string) string {
	typ, _, err := mime.ParseMediaType(v)
	if err != nil || typ == "application/octet-stream" || !strings.Contains(typ, "/") {
		return ""
	}
	return typ
}

// wrapUploadErr keeps a size-limit error as it is and makes any other
// error reading the form one the recipient can act on.
func wrapUploadErr(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return err
	}
	return fmt.Errorf("%w: %v", &replyError{msg: "ReplyIncomplete"}, err)
}

// lineEndings turns CRLF and a lone CR (old Mac files, and what is left of
// "\r\r\n") into LF, so that stored text has one kind of line ending.
var lineEndings = strings.NewReplacer("\r\n", "\n", "\r", "\n")

// normalizeText makes typed or posted text valid UTF-8 with LF line
// endings: browsers send textarea lines as CRLF, and the text is shown and
// mailed with LF.
func normalizeText(b []byte) string {
	return lineEndings.Replace(strings.ToValidUTF8(string(b), "\uFFFD"))
}
