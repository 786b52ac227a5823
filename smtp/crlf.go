package smtp

import (
	"bytes"
	"io"

	gosmtp "github.com/emersion/go-smtp"
)

// errBareLineEnding refuses a message with a CR or LF that is not part of a
// CRLF pair. Servers disagree on where such a line ends, and that
// disagreement is what SMTP smuggling exploits (CVE-2023-51766 and kin): a
// message that one server reads as one mail and another as two. Refusing
// them outright is what Postfix's smtpd_forbid_bare_newline does.
var errBareLineEnding = &gosmtp.SMTPError{
	Code:         550,
	EnhancedCode: gosmtp.EnhancedCode{5, 5, 2},
	Message:      "Message refused: bare <CR> or <LF> found; every line must end with <CR><LF>",
}

// crlfReader passes data through and fails with errBareLineEnding at the
// first CR not followed by LF or LF not preceded by CR. It returns the bytes
// before the offending one, so a CR is passed on before the byte after it
// shows it bare. A CRLF split between two reads is a pair; a CR that ends
// the data is bare.
//
// Every byte of every message goes through here, so the check is done on
// whole buffers: a clean buffer is proven clean with bytes.IndexByte and
// bytes.Count, which the runtime runs with vector instructions, and only a
// buffer known to be bad is walked byte by byte, to find where.
type crlfReader struct {
	r      io.Reader
	prevCR bool // the last byte seen was CR
	err    error
}

func (c *crlfReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	if b := p[:n]; len(b) > 0 {
		if !c.clean(b) {
			c.err = errBareLineEnding
			return c.firstBare(b), c.err
		}
		c.prevCR = b[len(b)-1] == '\r'
	}
	if err == io.EOF && c.prevCR {
		c.err = errBareLineEnding
	}
	if c.err != nil {
		return n, c.err
	}
	return n, err
}

// clean reports whether b, read after a CR when c.prevCR, holds only
// CRLF pairs: every LF follows a CR, and every CR is followed by LF or
// ends b (then the next read must start with LF).
//
// It checks each LF's neighbour, one IndexByte per line, and then counts
// the CRs: a CR that is not before an LF and not last is bare. Counting
// suffices because each LF claims the one CR just before it.
func (c *crlfReader) clean(b []byte) bool {
	if c.prevCR && b[0] != '\n' {
		return false
	}
	paired := 0 // CRs of b that precede an LF of b
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			break
		}
		j += i
		switch {
		case j > 0 && b[j-1] == '\r':
			paired++
		case j > 0 || !c.prevCR:
			return false // an LF with no CR before it
		}
		i = j + 1
	}
	if b[len(b)-1] == '\r' {
		paired++ // may yet be followed by LF, in the next read
	}
	return bytes.Count(b, []byte{'\r'}) == paired
}

// firstBare returns the index in b of the first byte that shows a bare
// line ending: an LF with no CR before it, or the byte after a bare CR. It
// is the reference definition, one byte at a time, and runs only on a
// buffer that clean has refused.
func (c *crlfReader) firstBare(b []byte) int {
	prevCR := c.prevCR
	for i, ch := range b {
		if prevCR != (ch == '\n') {
			return i
		}
		prevCR = ch == '\r'
	}
	return len(b) // not reached for a buffer that clean refused
}
