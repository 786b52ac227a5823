package smtp

// Multipart walking: splitting a multipart body into its parts at its
// boundary's delimiter lines (mimeMultipart), reading each part's raw body
// up to the next delimiter (mimePartBody), and keeping raw, as a file, a
// body that claims to be a multipart but has no usable delimiter. The walk
// itself (mime.go) descends into each part.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/emersion/go-message/textproto"

	"github.com/securetextd/securetextd"
)

// delimiterKind is what a line of a multipart body is to its boundary.
type delimiterKind int

const (
	noDelimiter    delimiterKind = iota
	partDelimiter                // --boundary: a part follows
	closeDelimiter               // --boundary--: the last part is over
)

// mimeMultipart splits the body of a multipart entity into its parts.
type mimeMultipart struct {
	w     *mimeWalker
	br    *bufio.Reader
	dash  []byte // "--" + boundary; nil when the boundary is unusable
	cur   *mimePartBody
	delim delimiterKind // the delimiter that ended the preamble or cur
	done  bool
}

func newMIMEMultipart(w *mimeWalker, body io.Reader, boundary string) *mimeMultipart {
	mr := &mimeMultipart{w: w, br: bufio.NewReader(body)}
	if boundary != "" && len(boundary) <= maxBoundary && !strings.ContainsAny(boundary, "\r\n") {
		mr.dash = []byte("--" + boundary)
	}
	return mr
}

// next returns the header and raw body of the next part, or io.EOF after
// the last one. The previous part's body need not have been read.
func (mr *mimeMultipart) next() (textproto.Header, io.Reader, error) {
	var none textproto.Header
	if mr.done {
		return none, nil, io.EOF
	}
	if mr.cur == nil {
		found, err := mr.preamble()
		if err != nil {
			return none, nil, err
		}
		if !found {
			mr.done = true
			return none, nil, io.EOF
		}
	} else {
		if _, err := io.Copy(io.Discard, mr.cur); err != nil && mr.w.src.err != nil {
			return none, nil, mr.w.src.err
		}
	}
	if mr.delim != partDelimiter {
		mr.done = true // the close delimiter, or the input ended
		return none, nil, io.EOF
	}
	if err := mr.skipLine(); err != nil {
		return none, nil, err
	}
	raw, err := mr.w.readHeader(mr.br, mr)
	if errors.Is(err, errHeaderTooBig) {
		return none, nil, mimeTooLarge("MIME part header exceeds %s", formatByteSize(mr.w.lim.MaxHeaderBytes))
	}
	if err != nil {
		return none, nil, err
	}
	mr.delim = noDelimiter // until the body of this part meets one
	pb := &mimePartBody{mr: mr, lineStart: true}
	h, n, _, _ := parseHeaderBlock(raw, false)
	if n < len(raw) {
		pb.start(bytes.Clone(raw[n:]))
	}
	mr.cur = pb
	return h, pb, nil
}

// preamble reads up to the first delimiter line and reports whether there
// is one. What comes before it is a note for readers without MIME, and is
// dropped. But a body without any delimiter is not the multipart it claims
// to be (no boundary, or the wrong one): it is kept raw, as a text file,
// and so is a preamble too long to be a note.
func (mr *mimeMultipart) preamble() (bool, error) {
	w := mr.w
	if w.pre == nil {
		w.pre = make([]byte, 0, sniffSize)
	}
	kept := w.pre[:0]
	var out *mimePartWriter // the raw body, once it must be kept
	keep := func(b []byte) error {
		if out == nil && len(kept)+len(b) <= sniffSize {
			kept = append(kept, b...)
			return nil
		}
		if out == nil {
			if err := w.countLeaf(); err != nil {
				return err
			}
			out = &mimePartWriter{w: w, part: rawBodyPart()}
			if err := out.write(kept); err != nil {
				return err
			}
		}
		return out.write(b)
	}
	lineStart := true
	for {
		if lineStart {
			d, err := mr.delimiter()
			if err != nil {
				return false, err
			}
			if d != noDelimiter {
				mr.delim = d
				if out != nil {
					return true, out.close()
				}
				return true, nil
			}
		}
		s, err := mr.br.ReadSlice('\n')
		if len(s) > 0 {
			lineStart = s[len(s)-1] == '\n'
			if err := keep(s); err != nil {
				return false, err
			}
		}
		if err == io.EOF || err == errTruncated {
			break
		}
		if err != nil && err != bufio.ErrBufferFull {
			if w.src.err != nil {
				return false, w.src.err
			}
			break
		}
	}
	if out == nil && len(bytes.TrimSpace(kept)) > 0 {
		if err := w.countLeaf(); err != nil {
			return false, err
		}
		out = &mimePartWriter{w: w, part: rawBodyPart()}
		if err := out.write(kept); err != nil {
			return false, err
		}
	}
	if out != nil {
		return false, out.close()
	}
	return false, nil
}

// rawBodyPart describes the raw body of a multipart that could not be split.
func rawBodyPart() securetextd.Part {
	return securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "text/plain", Filename: "body.txt"}
}

// delimiter tells whether the unread input starts with a delimiter line.
// As go-message and net/mime do, it takes "--boundary" followed by white
// space or a line end as a delimiter (ignoring the rest of the line), and
// "--boundary--" (or "--boundary" at the end of input) as the close
// delimiter.
func (mr *mimeMultipart) delimiter() (delimiterKind, error) {
	if mr.dash == nil {
		return noDelimiter, nil
	}
	b, err := mr.br.Peek(len(mr.dash) + 2)
	if err != nil && err != io.EOF && err != errTruncated {
		return noDelimiter, err
	}
	if !bytes.HasPrefix(b, mr.dash) {
		return noDelimiter, nil
	}
	rest := b[len(mr.dash):]
	if len(rest) == 0 {
		return closeDelimiter, nil
	}
	switch rest[0] {
	case '-':
		if len(rest) == 1 || rest[1] == '-' {
			return closeDelimiter, nil
		}
	case ' ', '\t', '\r', '\n':
		return partDelimiter, nil
	}
	return noDelimiter, nil
}

// skipLine reads the rest of the current line.
func (mr *mimeMultipart) skipLine() error {
	for {
		_, err := mr.br.ReadSlice('\n')
		switch err {
		case bufio.ErrBufferFull:
			continue
		case nil, io.EOF, errTruncated:
			return nil
		}
		return err
	}
}

// mimePartBody reads the raw body of one part, up to the next delimiter
// line. The line ending before a delimiter belongs to the delimiter (RFC
// 2046), so the last line ending read is held back until the next line
// shows whether it is content.
type mimePartBody struct {
	mr        *mimeMultipart
	pending   []byte // to return first: a released line ending, or the start of the body
	line      []byte // to return next: the rest of the current line, in mr.br's buffer
	released  [2]byte
	hold      [2]byte
	nhold     int
	lineStart bool
	end       error // io.EOF at a delimiter, errTruncated at the end of input, or the reader's error
}

// start makes b, read as part of the header block, the start of the body.
func (p *mimePartBody) start(b []byte) {
	k := lineEnding(b)
	p.pending = b[:len(b)-k]
	p.nhold = copy(p.hold[:], b[len(b)-k:])
	p.lineStart = len(b) == 0 || b[len(b)-1] == '\n'
}

func (p *mimePartBody) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		switch {
		case len(p.pending) > 0:
			c := copy(b[n:], p.pending)
			p.pending = p.pending[c:]
			n += c
		case len(p.line) > 0:
			c := copy(b[n:], p.line)
			p.line = p.line[c:]
			n += c
		case p.end != nil:
			if n == 0 {
				return 0, p.end
			}
			return n, nil
		case n > 0 && p.mr.br.Buffered() < len(p.mr.dash)+2:
			return n, nil // return what we have rather than wait for more
		default:
			p.advance()
		}
	}
	return n, nil
}

// advance reads the next line (or piece of a long line) of the body, or
// finds its end.
func (p *mimePartBody) advance() {
	mr := p.mr
	if p.lineStart {
		d, err := mr.delimiter()
		if err != nil {
			p.end = err
			return
		}
		if d != noDelimiter {
			mr.delim = d
			p.nhold = 0
			p.end = io.EOF
			return
		}
	}
	s, err := mr.br.ReadSlice('\n')
	if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
		// The enclosing body failed or was cut short: what came is content.
		p.release()
		p.line = s
		p.end = err
		return
	}
	if len(s) == 0 {
		p.release() // a line ending at the end of input is content
		p.end = errTruncated
		return
	}
	p.lineStart = s[len(s)-1] == '\n'
	if p.nhold == 1 && p.hold[0] == '\r' && len(s) == 1 && s[0] == '\n' {
		p.hold[1] = '\n' // a CRLF split between two reads
		p.nhold = 2
		return
	}
	p.release()
	k := lineEnding(s)
	p.line = s[:len(s)-k]
	p.nhold = copy(p.hold[:], s[len(s)-k:])
}

// release makes the held line ending content.
func (p *mimePartBody) release() {
	p.released = p.hold
	p.pending = p.released[:p.nhold]
	p.nhold = 0
}

// lineEnding returns the length of the line ending (CRLF, LF or a lone CR
// that may yet be followed by LF) at the end of s.
func lineEnding(s []byte) int {
	switch {
	case bytes.HasSuffix(s, []byte("\r\n")):
		return 2
	case bytes.HasSuffix(s, []byte("\n")), bytes.HasSuffix(s, []byte("\r")):
		return 1
	}
	return 0
}
