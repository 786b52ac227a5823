package smtp

// The MIME walk: a message arrives as a stream, and each body and file in it
// goes to the store as it is decoded. Nothing holds a whole part in memory;
// what the walk keeps is bounded by mimeLimits and a few fixed buffers.
//
// go-message parses the header blocks (textproto.ReadHeader on a block this
// file has already read and bounded) and their fields; the multipart bodies
// are split here rather than with go-message's MultipartReader, which reads
// part headers without a bound, stops at the first malformed part, and hides
// the error of the underlying reader behind fmt's %v.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	gosmtp "github.com/emersion/go-smtp"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/transform"

	"github.com/securetextd/securetextd"
)

// partCreator receives the parts of a message as they are decoded.
// *store.Draft implements it. Each part is closed before the next is created.
type partCreator interface {
	CreatePart(p securetextd.Part) (io.WriteCloser, error)
}

// damageMarker is implemented by a part writer that can record, after the
// fact, that its part could not be decoded completely: the walk learns it
// only while it decodes (corrupt base64 halfway, a body cut short), after
// CreatePart. The walk calls MarkDamaged before Close. A writer without it
// keeps what was decoded, unmarked.
type damageMarker interface {
	MarkDamaged()
}

// mimeLimits bounds the work one message can cause. A zero field takes its
// default from defaultMIMELimits.
type mimeLimits struct {
	MaxHeaderBytes int64 // per header block, top-level and nested; default 1 MiB
	MaxParts       int   // leaf parts, and multiparts apart; default 500
	MaxDepth       int   // multipart nesting; default 20
}

// defaultMIMELimits returns the limits used when none are configured.
func defaultMIMELimits() mimeLimits {
	return mimeLimits{MaxHeaderBytes: 1 << 20, MaxParts: 500, MaxDepth: 20}
}

func (l mimeLimits) orDefaults() mimeLimits {
	d := defaultMIMELimits()
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxParts <= 0 {
		l.MaxParts = d.MaxParts
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	return l
}

// headerInfo is what the gateway needs from the top-level header.
type headerInfo struct {
	// Subject is decoded to UTF-8 (RFC 2047, any charset go-message knows),
	// or the raw field when it cannot be; control characters become spaces,
	// so that it can go back into a reply's header as it is.
	Subject string
	// From is the parsed From header; empty when it is missing or does not
	// parse.
	From []*mail.Address
	// FromFields counts the From: header fields. More than one is an
	// attempt to show the recipient a sender other than the one checked.
	FromFields int
	MessageID  string   // without <>
	InReplyTo  []string // without <>
	References []string // without <>
	// DispositionNotificationTo is the address (addr-spec only) that asked
	// for a read receipt, or "".
	DispositionNotificationTo string
	// Language is the language of the first Content-Language tag ("es"),
	// "" for none: the language of the recipient's text.
	Language string
}

// walkMessage reads a message from r, gives each of its bodies and files to
// pc as it decodes them, and returns what the gateway needs from its header.
// It reads r to its end, so that an error of r (a size limit, a dropped
// connection) always reaches the caller, even one found in an epilogue.
//
// Text bodies (text/plain and text/html that are not attachments) become
// PartText and PartHTML, converted to UTF-8; parts with a Content-ID in a
// multipart/related (or inline with one) become PartInline; everything else,
// a forwarded message/rfc822 included, becomes a PartAttachment, decoded from
// its transfer encoding but otherwise as sent. An empty text body makes no
// part, so a message without a body makes none.
//
// Mail that is malformed but readable is kept rather than refused: a part
// that cannot be fully decoded keeps what was decoded and is marked Damaged;
// what cannot be understood at all (an unknown transfer encoding, a multipart
// without a usable boundary) is kept raw as an attachment. What walkMessage
// refuses, it refuses with a *gosmtp.SMTPError that says why: a top-level
// header that does not parse (554 5.6.0), a header block over
// MaxHeaderBytes or more than MaxParts parts (552 5.3.4), multiparts nested
// deeper than MaxDepth (554 5.6.0).
//
// An error of r is returned unchanged; an error of pc is returned wrapped.
func walkMessage(r io.Reader, pc partCreator, lim mimeLimits) (*headerInfo, error) {
	bufs := walkBuffers.Get().(*walkBufs)
	defer func() {
		bufs.br.Reset(nil) // no reference to this message's reader
		walkBuffers.Put(bufs)
	}()
	w := &mimeWalker{pc: pc, lim: lim.orDefaults(), src: &mimeSource{r: r}, br: bufs.br, buf: bufs.buf}
	w.br.Reset(w.src)
	info, err := w.walk()
	if w.src.err != nil {
		return nil, w.src.err
	}
	if err != nil {
		return nil, err
	}
	requestReceipt(pc, info) // Disposition-Notification-To (lifecycle.go)
	return info, nil
}

// walkBufs are a walk's two 32 KiB buffers: the one it reads the message
// through and the one it copies decoded content with. They are kept
// between walks (walkBuffers), because allocating them was most of what
// receiving a small message allocated, and so most of its garbage
// collection.
//
// They hold message content, so nothing may refer to them once the walk
// is over: the walk copies what it keeps (header fields, a preamble),
// part writers copy what they are given (age buffers its plaintext before
// it seals it), and a reused reader starts empty (bufio.Reader.Reset).
type walkBufs struct {
	br  *bufio.Reader
	buf []byte
}

var walkBuffers = sync.Pool{New: func() any {
	return &walkBufs{br: bufio.NewReaderSize(nil, copyBufferSize), buf: make([]byte, copyBufferSize)}
}}

// mimeSource is the message as the client sends it. It keeps the first
// error of the reader under it, which the walk returns unchanged however
// deep in the MIME tree it surfaced, and repeats it to any later read.
type mimeSource struct {
	r   io.Reader
	err error // the first error other than io.EOF
	eof bool
}

func (s *mimeSource) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.eof {
		return 0, io.EOF
	}
	n, err := s.r.Read(p)
	if err == io.EOF {
		s.eof = true
	} else if err != nil {
		s.err = err
	}
	return n, err
}

const (
	copyBufferSize = 32 << 10
	// sniffSize bounds what the walk keeps of a body to decide what it is:
	// a text in an unknown charset, or the preamble of a multipart.
	sniffSize = 64 << 10
	// maxBoundary bounds a multipart boundary. RFC 2046 allows 70 bytes.
	maxBoundary = 200
)

var (
	// errHeaderTooBig stops readHeader; the walk turns it into a reply.
	errHeaderTooBig = errors.New("header block too big")
	// errTruncated ends a body part that the input ends before its
	// delimiter line: what was read is kept, marked Damaged.
	errTruncated = errors.New("MIME body part cut short: no closing boundary")
)

// mimeTooLarge and mimeMalformed return the replies for a message the walk
// will not take: over a limit (552 5.3.4), or unreadable (554 5.6.0).
func mimeTooLarge(format string, args ...any) error {
	return &gosmtp.SMTPError{Code: 552, EnhancedCode: gosmtp.EnhancedCode{5, 3, 4}, Message: "Message refused: " + fmt.Sprintf(format, args...)}
}

func mimeMalformed(format string, args ...any) error {
	return &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 6, 0}, Message: "Message refused: " + fmt.Sprintf(format, args...)}
}

// mimeWalker holds the state of one walk.
type mimeWalker struct {
	pc      partCreator
	lim     mimeLimits
	src     *mimeSource
	br      *bufio.Reader // reads src (walkBufs)
	leaves  int           // leaf parts seen, against MaxParts
	nodes   int           // multiparts seen, against MaxParts too
	created int           // parts created
	hdr     []byte        // the header block being read, reused
	buf     []byte        // copy buffer (walkBufs)
	sniff   []byte        // start of a body in an unknown charset, reused
	pre     []byte        // preamble of a multipart, reused
}

func (w *mimeWalker) walk() (*headerInfo, error) {
	br := w.br
	raw, err := w.readHeader(br, nil)
	if errors.Is(err, errHeaderTooBig) {
		return nil, mimeTooLarge("message header exceeds %s", formatByteSize(w.lim.MaxHeaderBytes))
	}
	if err != nil {
		return nil, err
	}
	h, n, ok, bad := parseHeaderBlock(raw, true)
	if !ok {
		return nil, mimeMalformed("message header is malformed (line %d is not a header field)", bad)
	}
	info := newHeaderInfo(h)
	body := io.Reader(br)
	if n < len(raw) {
		body = io.MultiReader(bytes.NewReader(bytes.Clone(raw[n:])), br)
	}
	if err := w.entity(h, body, "", 0); err != nil {
		return nil, err
	}
	// Anything after the last part (an epilogue) is dropped, but read: the
	// reader's own verdict on the message comes at its end.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, err
	}
	return info, nil
}

// readHeader reads a header block from br: its lines up to and including the
// empty line that ends it, or up to the end of input, or, in a body part
// (mr != nil), up to a delimiter line of mr, which it leaves unread. It
// fails with errHeaderTooBig past MaxHeaderBytes, having read no more.
func (w *mimeWalker) readHeader(br *bufio.Reader, mr *mimeMultipart) ([]byte, error) {
	w.hdr = w.hdr[:0]
	lineStart := true
	for {
		if lineStart && mr != nil {
			d, err := mr.delimiter()
			if err != nil {
				return nil, err
			}
			if d != noDelimiter {
				return w.hdr, nil
			}
		}
		s, err := br.ReadSlice('\n')
		if int64(len(w.hdr)+len(s)) > w.lim.MaxHeaderBytes {
			return nil, errHeaderTooBig
		}
		w.hdr = append(w.hdr, s...)
		switch {
		case err == bufio.ErrBufferFull:
			lineStart = false
			continue
		case err == io.EOF || err == errTruncated:
			return w.hdr, nil
		case err != nil:
			return nil, err
		}
		if lineStart && (len(s) == 1 || len(s) == 2 && s[0] == '\r') {
			return w.hdr, nil
		}
		lineStart = true
	}
}

// parseHeaderBlock parses a block read by readHeader, and returns how many
// bytes of it are the header: the rest, if any, is the start of the body.
//
// It reads mail as mail readers do. A line that is not a header field
// continues the field above it if that one ends with ";" (a parameter list
// wrapped without indentation); otherwise the empty line was left out, and
// the body starts there. A top-level header may start with what saved mail
// often does: an mbox "From " line, blank or indented lines. A body part
// whose block does not start with a header field has no header: all of raw
// is its body.
//
// What it cannot read is a top-level header that does not start with a
// header field: ok is false, and bad is the number of that line.
func parseHeaderBlock(raw []byte, top bool) (h textproto.Header, n int, ok bool, bad int) {
	fixed := make([]byte, 0, len(raw)+8)
	first, params := true, false
	line := 0
lines:
	for n < len(raw) {
		l := raw[n:]
		if i := bytes.IndexByte(l, '\n'); i >= 0 {
			l = l[:i+1]
		}
		line++
		size := len(l) // bytes of raw this line takes, before any trimming
		content := bytes.TrimRight(l, "\r\n")
		switch {
		case len(content) == 0:
			fixed = append(fixed, l...)
			n += len(l)
			break lines // the empty line that ends the header
		case first && top && line == 1 && bytes.HasPrefix(l, []byte("From ")) && !isHeaderField(l),
			first && top && len(bytes.Trim(content, " \t")) == 0:
			n += len(l)
			continue // an mbox separator, a blank line
		case first:
			if top {
				l = bytes.TrimLeft(l, " \t")
			}
			if !isHeaderField(l) {
				if top {
					return h, 0, false, line
				}
				return textproto.Header{}, 0, true, 0
			}
		case l[0] == ' ' || l[0] == '\t' || isHeaderField(l):
		case params:
			fixed = append(fixed, ' ')
		default:
			break lines
		}
		fixed = append(fixed, l...)
		n += size
		first = false
		params = bytes.HasSuffix(bytes.TrimRight(content, " \t"), []byte(";"))
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(fixed)))
	if err != nil {
		if top {
			return h, 0, false, 1
		}
		return textproto.Header{}, 0, true, 0
	}
	return h, n, true, 0
}

// isHeaderField reports whether l reads as "Name: value" to
// textproto.ReadHeader.
func isHeaderField(l []byte) bool {
	i := bytes.IndexByte(l, ':')
	if i < 0 {
		return false
	}
	for _, c := range bytes.Trim(l[:i], " \t") {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// entity walks one entity: the message itself, or a part of a multipart
// whose subtype is parent ("multipart/related"). depth counts the multiparts
// around it.
func (w *mimeWalker) entity(h textproto.Header, body io.Reader, parent string, depth int) error {
	typ, params := entityType(h, parent)
	if !strings.HasPrefix(typ, "multipart/") {
		return w.leaf(h, typ, params, body, parent)
	}
	if depth+1 > w.lim.MaxDepth {
		return mimeMalformed("MIME parts nested more than %d deep", w.lim.MaxDepth)
	}
	if w.nodes++; w.nodes > w.lim.MaxParts {
		return mimeTooLarge("more than %d MIME parts", w.lim.MaxParts)
	}
	// A content transfer encoding on a multipart is not allowed, and ignored
	// as go-message does: mailers that set one do not apply it.
	mr := newMIMEMultipart(w, body, params["boundary"])
	for {
		ph, pb, err := mr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := w.entity(ph, pb, typ, depth+1); err != nil {
			return err
		}
	}
}

// entityType returns the media type of an entity (lowercase, without
// parameters, "" when invalid) and its parameters. Without a Content-Type,
// a part is text/plain, or message/rfc822 in a multipart/digest.
func entityType(h textproto.Header, parent string) (string, map[string]string) {
	v := h.Get("Content-Type")
	if strings.TrimSpace(v) == "" {
		if parent == "multipart/digest" {
			return "message/rfc822", nil
		}
		return "text/plain", nil
	}
	typ, params := parseParams(v)
	if !strings.Contains(typ, "/") {
		typ = ""
	}
	return typ, params
}

// leaf sends one entity that is not a multipart to the store.
func (w *mimeWalker) leaf(h textproto.Header, typ string, params map[string]string, body io.Reader, parent string) error {
	if err := w.countLeaf(); err != nil {
		return err
	}
	disp, dparams := parseParams(h.Get("Content-Disposition"))
	name := decodeWords(dparams["filename"])
	if name == "" {
		name = decodeWords(params["name"])
	}
	p := securetextd.Part{ContentType: typ, ContentID: contentID(h.Get("Content-Id"))}
	text := false
	switch {
	case typ == "":
		p.Kind, p.ContentType = securetextd.PartAttachment, "application/octet-stream"
	case typ == "message/rfc822" || typ == "message/global":
		p.Kind = securetextd.PartAttachment // kept whole, never descended into
	case disp == "attachment":
		p.Kind = securetextd.PartAttachment
	case (typ == "text/plain" || typ == "text/html") && name == "":
		p.Kind, text = securetextd.PartText, true
		if typ == "text/html" {
			p.Kind = securetextd.PartHTML
		}
	case p.ContentID != "" && (parent == "multipart/related" || disp == "inline"):
		p.Kind = securetextd.PartInline
	default:
		p.Kind = securetextd.PartAttachment
	}

	decoded, known := transferDecoder(h.Get("Content-Transfer-Encoding"), body)
	if !known {
		// An encoding we cannot undo: the bytes as they came, as a file.
		p.Kind, p.ContentType, p.Damaged, text = securetextd.PartAttachment, "application/octet-stream", true, false
		decoded = body
	}
	if !text {
		p.Filename = sanitizeFilename(name)
		if p.Filename == "" {
			p.Filename = defaultFilename(p.ContentType)
		}
		out := &mimePartWriter{w: w, part: p}
		if err := out.open(); err != nil {
			return err
		}
		return w.finish(out, decoded, body, nil)
	}
	utf8Body, known := textDecoder(strings.ToLower(params["charset"]), decoded)
	if !known {
		return w.unknownCharset(p, decoded, body)
	}
	return w.finish(&mimePartWriter{w: w, part: p, lazy: true}, utf8Body, body, nil)
}

// unknownCharset sends a text body in a charset that we cannot convert.
// If it is short and valid UTF-8 all the same (mislabelled, or plain ASCII),
// it is still the body. Otherwise its bytes are kept unconverted, as a file
// named body.txt or body.html: Damaged is false, as nothing was lost.
func (w *mimeWalker) unknownCharset(p securetextd.Part, decoded, raw io.Reader) error {
	if w.sniff == nil {
		w.sniff = make([]byte, sniffSize)
	}
	n, err := readUpTo(decoded, w.sniff)
	start := w.sniff[:n]
	if err == io.EOF && utf8.Valid(start) {
		return w.finish(&mimePartWriter{w: w, part: p, lazy: true}, bytes.NewReader(start), raw, nil)
	}
	p.Kind, p.Filename = securetextd.PartAttachment, "body.txt"
	if p.ContentType == "text/html" {
		p.Filename = "body.html"
	}
	out := &mimePartWriter{w: w, part: p}
	if err := out.open(); err != nil {
		return err
	}
	if err := out.write(start); err != nil {
		return err
	}
	switch {
	case err == nil:
		return w.finish(out, decoded, raw, nil) // more than sniffSize
	case err == io.EOF:
		return w.finish(out, eofReader{}, raw, nil)
	default:
		return w.finish(out, eofReader{}, raw, err)
	}
}

// finish copies the decoded content of a part into out, reads the rest of
// its raw body (raw) so that the walk can go on with the next part, and
// closes out. A decoding error (here, or readErr found before) marks the
// part Damaged; an error of the message reader ends the walk.
func (w *mimeWalker) finish(out *mimePartWriter, decoded, raw io.Reader, readErr error) error {
	for readErr == nil {
		n, err := decoded.Read(w.buf)
		if n > 0 {
			if err := out.write(w.buf[:n]); err != nil {
				return err
			}
		}
		readErr = err
	}
	if w.src.err != nil {
		return w.src.err
	}
	if readErr != io.EOF {
		if err := out.markDamaged(errors.Is(readErr, errTruncated)); err != nil {
			return err
		}
	}
	if _, err := io.Copy(io.Discard, raw); err != nil && w.src.err != nil {
		return w.src.err
	}
	return out.close()
}

func (w *mimeWalker) countLeaf() error {
	w.leaves++
	if w.leaves > w.lim.MaxParts {
		return mimeTooLarge("more than %d MIME parts", w.lim.MaxParts)
	}
	return nil
}

// mimePartWriter writes one part through the partCreator. A lazy part (a
// body text) is created at its first byte that is not white space, so an
// empty or blank body makes no part.
type mimePartWriter struct {
	w     *mimeWalker
	part  securetextd.Part
	wc    io.WriteCloser
	lazy  bool
	blank []byte // white space written before the part was created
}

// maxBlank bounds the white space a lazy part holds back.
const maxBlank = 4 << 10

func (o *mimePartWriter) open() error {
	if o.wc != nil {
		return nil
	}
	wc, err := o.w.pc.CreatePart(o.part)
	if err != nil {
		return fmt.Errorf("smtp: create part %d (%s): %w", o.w.created, o.part.Kind, err)
	}
	o.w.created++
	o.wc = wc
	return nil
}

func (o *mimePartWriter) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if o.wc == nil && o.lazy {
		if len(o.blank)+len(b) <= maxBlank && len(bytes.Trim(b, " \t\r\n")) == 0 {
			o.blank = append(o.blank, b...)
			return nil
		}
		if err := o.open(); err != nil {
			return err
		}
		blank := o.blank
		o.blank = nil
		if err := o.write(blank); err != nil {
			return err
		}
	}
	if err := o.open(); err != nil {
		return err
	}
	if _, err := o.wc.Write(b); err != nil {
		return fmt.Errorf("smtp: write part %d (%s): %w", o.w.created-1, o.part.Kind, err)
	}
	return nil
}

// markDamaged records that the part could not be decoded completely. A
// damaged body text is created even if nothing of it could be decoded, so
// that the recipient learns there was one; but not when it was merely cut
// short (truncated) before anything but white space: nothing was lost.
func (o *mimePartWriter) markDamaged(truncated bool) error {
	if o.part.Damaged {
		return nil
	}
	if o.wc == nil {
		if truncated {
			return nil
		}
		o.part.Damaged = true
		return o.open()
	}
	o.part.Damaged = true
	if dm, ok := o.wc.(damageMarker); ok {
		dm.MarkDamaged()
	}
	return nil
}

func (o *mimePartWriter) close() error {
	if o.wc == nil {
		return nil
	}
	if err := o.wc.Close(); err != nil {
		return fmt.Errorf("smtp: close part %d (%s): %w", o.w.created-1, o.part.Kind, err)
	}
	return nil
}

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

// transferDecoder returns a reader of body decoded from the
// Content-Transfer-Encoding cte, and false for an encoding it does not know.
func transferDecoder(cte string, body io.Reader) (io.Reader, bool) {
	cte, _, _ = strings.Cut(cte, ";")
	switch strings.ToLower(strings.Trim(cte, " \t\"")) {
	case "", "7bit", "8bit", "binary":
		return body, true
	case "quoted-printable":
		return transform.NewReader(body, qpDecoder{}), true
	case "base64":
		return newBase64Reader(body), true
	}
	return body, false
}

// qpDecoder decodes quoted-printable (RFC 2045) leniently, as mail readers
// do: an "=" not followed by two hex digits or a line end is itself, and
// raw 8-bit and control bytes pass through. (mime/quotedprintable fails on
// both, and on lines over 4 KiB.)
type qpDecoder struct{ transform.NopResetter }

func (qpDecoder) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		if nDst >= len(dst) {
			return nDst, nSrc, transform.ErrShortDst
		}
		c := src[nSrc]
		if c != '=' {
			dst[nDst] = c
			nDst++
			nSrc++
			continue
		}
		rest := src[nSrc+1:]
		if len(rest) >= 2 && isHexDigit(rest[0]) && isHexDigit(rest[1]) {
			dst[nDst] = unhexDigit(rest[0])<<4 | unhexDigit(rest[1])
			nDst++
			nSrc += 3
			continue
		}
		// A soft line break: "=", maybe white space, a line end.
		i := 0
		for i < len(rest) && i < 80 && (rest[i] == ' ' || rest[i] == '\t') {
			i++
		}
		switch {
		case i < len(rest) && rest[i] == '\n':
			nSrc += 1 + i + 1
			continue
		case i+1 < len(rest) && rest[i] == '\r' && rest[i+1] == '\n':
			nSrc += 1 + i + 2
			continue
		case atEOF && (i == len(rest) || i+1 == len(rest) && rest[i] == '\r'):
			nSrc = len(src) // a soft line break at the very end
			continue
		case !atEOF && i < 80 && (i == len(rest) || i+1 == len(rest) && rest[i] == '\r' ||
			i == 0 && len(rest) == 1 && isHexDigit(rest[0])):
			return nDst, nSrc, transform.ErrShortSrc // cannot tell yet
		}
		dst[nDst] = '='
		nDst++
		nSrc++
	}
	return nDst, nSrc, nil
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhexDigit(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// textDecoder returns a reader of r converted from charset cs to UTF-8,
// and false for a charset it does not know. UTF-8, US-ASCII and an absent
// charset all read as UTF-8, repaired by utf8Repair.
func textDecoder(cs string, r io.Reader) (io.Reader, bool) {
	switch cs = strings.TrimSpace(cs); cs {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return transform.NewReader(r, utf8Repair{}), true
	}
	cr, err := charset.Reader(cs, r)
	if err != nil {
		return nil, false
	}
	return cr, true
}

// utf8Repair passes valid UTF-8 through and reads every other byte as
// Windows-1252: text that claims to be UTF-8 or ASCII (or claims nothing)
// but has stray 8-bit bytes was nearly always written in it.
type utf8Repair struct{ transform.NopResetter }

func (utf8Repair) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		c := src[nSrc]
		if c < utf8.RuneSelf {
			if nDst >= len(dst) {
				return nDst, nSrc, transform.ErrShortDst
			}
			dst[nDst] = c
			nDst++
			nSrc++
			continue
		}
		r, size := utf8.DecodeRune(src[nSrc:])
		if r == utf8.RuneError && size == 1 {
			if !atEOF && !utf8.FullRune(src[nSrc:]) {
				return nDst, nSrc, transform.ErrShortSrc
			}
			r = charmap.Windows1252.DecodeByte(c)
		}
		if nDst+utf8.RuneLen(r) > len(dst) {
			return nDst, nSrc, transform.ErrShortDst
		}
		nDst += utf8.EncodeRune(dst[nDst:], r)
		nSrc += size
	}
	return nDst, nSrc, nil
}

// parseParams parses a Content-Type or Content-Disposition value into its
// lowercase value ("text/plain", "attachment") and parameters. Where
// mime.ParseMediaType gives up on mail found in the wild, it keeps what it
// can: a parameter that does not parse is skipped rather than losing them
// all, a missing ";" before the parameters is tolerated, an unquoted value
// with 8-bit or special characters is taken as it is, and an RFC 2231 value
// in a charset other than UTF-8 is decoded.
func parseParams(v string) (string, map[string]string) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	typ, params, err := mime.ParseMediaType(v)
	if err != nil {
		typ, params = salvageParams(v)
	}
	for _, key := range []string{"filename", "name"} {
		if s, isUTF8 := rfc2231(v, key); s != "" && (params[key] == "" || !isUTF8) {
			params[key] = s
		}
	}
	return typ, params
}

func salvageParams(v string) (string, map[string]string) {
	base, rest, _ := strings.Cut(v, ";")
	base = strings.TrimSpace(base)
	if i := strings.IndexAny(base, " \t"); i >= 0 {
		rest = base[i:] + ";" + rest
		base = base[:i]
	}
	typ, _, err := mime.ParseMediaType(base)
	if err != nil {
		typ = ""
	}
	params := make(map[string]string)
	for _, piece := range splitParams(rest) {
		if _, p, err := mime.ParseMediaType("x/x; " + piece); err == nil {
			for k, val := range p {
				if _, dup := params[k]; !dup {
					params[k] = val
				}
			}
			continue
		}
		k, val, ok := strings.Cut(piece, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" || strings.ContainsAny(k, "*\" \t") {
			continue
		}
		if _, dup := params[k]; !dup {
			params[k] = strings.Trim(strings.TrimSpace(val), `"`)
		}
	}
	return typ, params
}

// splitParams splits s at the semicolons outside quoted strings.
func splitParams(s string) []string {
	var out []string
	quoted, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case c == '\\' && quoted:
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == ';' && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	out = append(out, s[start:])
	pieces := out[:0]
	for _, p := range out {
		if p = strings.TrimSpace(p); p != "" {
			pieces = append(pieces, p)
		}
	}
	return pieces
}

// rfc2231 decodes the parameter key from its RFC 2231 form in the raw value
// v: key*=charset'language'value, or continued as key*0*, key*1, …, and
// reports whether its charset is UTF-8 or ASCII. It decodes what
// mime.ParseMediaType drops or mangles: other charsets.
func rfc2231(v, key string) (value string, isUTF8 bool) {
	lower := strings.ToLower(v)
	if !strings.Contains(lower, key+"*") {
		return "", true
	}
	type section struct {
		value    string
		extended bool
	}
	sections := make(map[int]section)
	for _, piece := range splitParams(v) {
		k, val, ok := strings.Cut(piece, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || !strings.HasPrefix(k, key+"*") {
			continue
		}
		rest := k[len(key)+1:]
		ext := rest == "" || strings.HasSuffix(rest, "*")
		idx := 0
		if n := strings.TrimSuffix(rest, "*"); n != "" {
			i, err := strconv.Atoi(n)
			if err != nil || i < 0 || i > 1000 {
				continue
			}
			idx = i
		}
		sections[idx] = section{strings.Trim(strings.TrimSpace(val), `"`), ext}
	}
	var raw []byte
	cs := ""
	for i := 0; ; i++ {
		s, ok := sections[i]
		if !ok {
			break
		}
		if !s.extended {
			raw = append(raw, s.value...)
			continue
		}
		val := s.value
		if i == 0 {
			parts := strings.SplitN(val, "'", 3)
			if len(parts) != 3 {
				return "", true
			}
			cs, val = strings.ToLower(parts[0]), parts[2]
		}
		for j := 0; j < len(val); j++ {
			if val[j] == '%' && j+2 < len(val) && isHexDigit(val[j+1]) && isHexDigit(val[j+2]) {
				raw = append(raw, unhexDigit(val[j+1])<<4|unhexDigit(val[j+2]))
				j += 2
				continue
			}
			raw = append(raw, val[j])
		}
	}
	if len(raw) == 0 {
		return "", true
	}
	switch cs {
	case "", "utf-8", "utf8", "us-ascii":
		return string(raw), true
	}
	r, err := charset.Reader(cs, bytes.NewReader(raw))
	if err != nil {
		return string(raw), false // repaired by sanitizeFilename
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return string(raw), false
	}
	return string(out), false
}

// decodeWords decodes the RFC 2047 encoded-words in s, as Outlook writes
// filenames (name="=?iso-8859-1?Q?...?="), or returns s.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	dec := mime.WordDecoder{CharsetReader: charset.Reader}
	out, err := dec.DecodeHeader(s)
	if err != nil {
		return s
	}
	return out
}

// contentID returns a Content-ID without its angle brackets.
func contentID(v string) string {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "<")
	v = strings.TrimSuffix(v, ">")
	v = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return -1
		}
		return r
	}, v)
	return truncateUTF8(v, 998)
}

// sanitizeFilename makes the name a sender gave a file safe to show and to
// offer for download: valid UTF-8 (stray 8-bit bytes read as
// Windows-1252), without path components, control characters or the
// bidirectional overrides that disguise an extension, at most 255 bytes
// (the extension kept). HTML is not escaped here: that is the page's job.
func sanitizeFilename(s string) string {
	if !utf8.ValidString(s) {
		s = decodeWindows1252(s)
	}
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case unicode.IsControl(r) || isBidiControl(r):
			return -1
		}
		return r
	}, s)
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSpace(s)
	if strings.Trim(s, ".") == "" {
		return ""
	}
	if len(s) > 255 {
		ext := path.Ext(s)
		if len(ext) > 32 {
			ext = ""
		}
		s = truncateUTF8(strings.TrimSuffix(s, ext), 255-len(ext)) + ext
	}
	return s
}

func isBidiControl(r rune) bool {
	return r == '\u061c' || r == '\u200e' || r == '\u200f' ||
		'\u202a' <= r && r <= '\u202e' || '\u2066' <= r && r <= '\u2069'
}

func decodeWindows1252(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			r = charmap.Windows1252.DecodeByte(s[i])
		}
		b.WriteRune(r)
		i += size
	}
	return b.String()
}

// truncateUTF8 cuts s to at most n bytes, at a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// defaultFilename names a file that came without a name, after its type.
func defaultFilename(mediaType string) string {
	if mediaType == "message/rfc822" || mediaType == "message/global" {
		return "forwarded.eml"
	}
	return "attachment" + fileExtension(mediaType)
}

// fileExtension returns the usual file extension of common media types. It
// does not ask mime.ExtensionsByType, whose answer depends on the host's
// mime.types (text/plain → ".conf" on Debian).
func fileExtension(mediaType string) string {
	switch mediaType {
	case "text/plain", "message/delivery-status", "message/disposition-notification", "text/rfc822-headers":
		return ".txt"
	case "text/html":
		return ".html"
	case "text/csv":
		return ".csv"
	case "text/calendar":
		return ".ics"
	case "text/vcard", "text/x-vcard":
		return ".vcf"
	case "application/pdf":
		return ".pdf"
	case "application/zip", "application/x-zip-compressed":
		return ".zip"
	case "application/msword":
		return ".doc"
	case "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
		return ".docx"
	case "application/vnd.ms-excel":
		return ".xls"
	case "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
		return ".xlsx"
	case "application/vnd.openxmlformats-officedocument.presentationml.presentation":
		return ".pptx"
	case "application/rtf", "text/rtf":
		return ".rtf"
	case "application/json":
		return ".json"
	case "application/xml", "text/xml":
		return ".xml"
	case "application/pgp-signature":
		return ".asc"
	case "application/pkcs7-signature", "application/x-pkcs7-signature":
		return ".p7s"
	case "application/pkcs7-mime", "application/x-pkcs7-mime":
		return ".p7m"
	case "application/octet-stream":
		return ".bin"
	case "image/jpeg":
		return ".jpg"
	case "image/png":
		return ".png"
	case "image/gif":
		return ".gif"
	case "image/webp":
		return ".webp"
	case "image/heic":
		return ".heic"
	case "image/tiff":
		return ".tif"
	case "image/bmp":
		return ".bmp"
	case "image/svg+xml":
		return ".svg"
	case "audio/mpeg":
		return ".mp3"
	case "video/mp4":
		return ".mp4"
	case "video/quicktime":
		return ".mov"
	}
	return ""
}

// newHeaderInfo reads the top-level header fields the gateway uses. None of
// them makes the message fail: a field that does not parse is left empty
// (or raw, for the subject) for the session to judge.
func newHeaderInfo(h textproto.Header) *headerInfo {
	mh := mail.Header{Header: message.Header{Header: h}}
	info := &headerInfo{FromFields: h.FieldsByKey("From").Len()}
	subject, _ := mh.Subject() // the raw field when it cannot be decoded
	info.Subject = cleanHeaderText(subject)
	info.Language, _ = securetextd.ParseLanguage(h.Get("Content-Language"))
	if from, err := mh.AddressList("From"); err == nil {
		// A name may come from a comment ("a@b (name)") or an encoded
		// word, and hold control characters either way: it is shown to
		// the recipient and written into reply headers.
		for _, a := range from {
			a.Name = cleanHeaderText(a.Name)
		}
		info.From = from
	}
	if ids := msgIDs(h.Get("Message-Id")); len(ids) > 0 {
		info.MessageID = ids[0]
	}
	info.InReplyTo = msgIDs(h.Get("In-Reply-To"))
	info.References = msgIDs(h.Get("References"))
	if to, err := mh.AddressList("Disposition-Notification-To"); err == nil && len(to) > 0 {
		info.DispositionNotificationTo = to[0].Address
	}
	return info
}

// cleanHeaderText makes a decoded header text valid UTF-8 on one line: a
// decoded encoded-word may hold CR and LF, which must not reach the header
// of a reply.
func cleanHeaderText(s string) string {
	if !utf8.ValidString(s) {
		s = decodeWindows1252(s)
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// msgIDs returns the message identifiers in a Message-ID, In-Reply-To or
// References field, without angle brackets. It is lenient, as threading
// should be: identifiers that are not strictly RFC 5322 are kept, and a
// field without angle brackets is read as identifiers separated by spaces.
func msgIDs(v string) []string {
	valid := func(id string) bool {
		return id != "" && len(id) <= 998 && !strings.ContainsFunc(id, func(r rune) bool {
			return unicode.IsSpace(r) || unicode.IsControl(r) || r == '<' || r == '>'
		})
	}
	var ids []string
	if !strings.Contains(v, "<") {
		for _, id := range strings.Fields(v) {
			if valid(id) {
				ids = append(ids, id)
			}
		}
		return ids
	}
	for {
		_, after, ok := strings.Cut(v, "<")
		if !ok {
			return ids
		}
		id, rest, ok := strings.Cut(after, ">")
		if !ok {
			return ids
		}
		if id = strings.TrimSpace(id); valid(id) {
			ids = append(ids, id)
		}
		v = rest
	}
}

// formatByteSize writes a byte count as a mail administrator would: "1 MiB".
func formatByteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// readUpTo reads into buf until it is full or r fails, and returns r's
// error: nil when buf is full, io.EOF when r ended.
func readUpTo(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
