package smtp

// Header blocks and header information: reading a header block with its
// bound (readHeader), parsing it as mail readers do (parseHeaderBlock), and
// what the gateway needs from the top-level header (headerInfo: subject,
// From, threading identifiers, a read receipt's address).

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/securetextd/securetextd"
)

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
	br := headerReaders.Get().(*bufio.Reader)
	br.Reset(bytes.NewReader(fixed))
	h, err := textproto.ReadHeader(br) // copies what it keeps
	br.Reset(nil)
	headerReaders.Put(br)
	if err != nil {
		if top {
			return h, 0, false, 1
		}
		return textproto.Header{}, 0, true, 0
	}
	return h, n, true, 0
}

// headerReaders recycles the 4 KiB readers that parseHeaderBlock reads
// a header block through: one per part of every message.
var headerReaders = sync.Pool{New: func() any { return bufio.NewReader(nil) }}

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
