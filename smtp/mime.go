package smtp

// The MIME walk: a message arrives as a stream, and each body and file in it
// goes to the store as it is decoded. Nothing holds a whole part in memory;
// what the walk keeps is bounded by mimeLimits and a few fixed buffers.
//
// go-message parses the header blocks (textproto.ReadHeader on a block the
// walk has already read and bounded) and their fields; the multipart bodies
// are split by the walk rather than with go-message's MultipartReader, which
// reads part headers without a bound, stops at the first malformed part, and
// hides the error of the underlying reader behind fmt's %v.
//
// This file holds the walk itself: its limits, its pooled buffers, the
// descent through entities and the writing of each part. Beside it:
// mime_header.go (header blocks and the header information),
// mime_multipart.go (splitting a multipart), mime_decode.go (transfer
// encodings and charsets), mime_params.go (parameters, RFC 2231, RFC 2047
// words) and mime_filename.go (file names).

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"
	gosmtp "github.com/emersion/go-smtp"
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
	w := &mimeWalker{pc: pc, lim: lim.orDefaults(), src: &mimeSource{r: r}, br: bufs.br, buf: bufs.buf, head: bufs.head}
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
	br   *bufio.Reader
	buf  []byte
	head []byte // the start of a text body (utf8Text)
}

var walkBuffers = sync.Pool{New: func() any {
	return &walkBufs{br: bufio.NewReaderSize(nil, copyBufferSize), buf: make([]byte, copyBufferSize), head: make([]byte, textHeadSize)}
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
	// textHeadSize is how much of a UTF-8 text body the walk reads
	// before it decides whether it needs repair (utf8Text).
	textHeadSize = 16 << 10
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
	head    []byte        // start of a UTF-8 text body (utf8Text)
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
	cs := strings.ToLower(params["charset"])
	if isUTF8(cs) {
		return w.utf8Text(p, decoded, body)
	}
	utf8Body, known := textDecoder(cs, decoded)
	if !known {
		return w.unknownCharset(p, decoded, body)
	}
	return w.finish(&mimePartWriter{w: w, part: p, lazy: true}, utf8Body, body, nil)
}

// utf8Text sends a text body that is UTF-8 or ASCII, or says no charset,
// repaired by utf8Repair. Most such bodies are short and valid UTF-8 as
// they are: read whole into the walk's head buffer, they pass unchanged,
// without a repairing reader and its two 4 KiB buffers for each part.
func (w *mimeWalker) utf8Text(p securetextd.Part, decoded, raw io.Reader) error {
	n, err := readUpTo(decoded, w.head)
	start := w.head[:n]
	out := &mimePartWriter{w: w, part: p, lazy: true}
	if err == io.EOF && utf8.Valid(start) {
		return w.finish(out, bytes.NewReader(start), raw, nil)
	}
	rest := decoded
	switch {
	case err == io.EOF:
		rest = eofReader{}
	case err != nil:
		rest = failedReader{err}
	}
	return w.finish(out, transform.NewReader(io.MultiReader(bytes.NewReader(start), rest), utf8Repair{}), raw, nil)
}

// failedReader fails with err.
type failedReader struct{ err error }

func (f failedReader) Read([]byte) (int, error) { return 0, f.err }

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
