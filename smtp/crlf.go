package smtp

import (
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
// first CR not followed by LF or LF not preceded by CR.
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
	for i := 0; i < n; i++ {
		switch b := p[i]; {
		case c.prevCR && b != '\n':
			c.err = errBareLineEnding
		case !c.prevCR && b == '\n':
			c.err = errBareLineEnding
		default:
			c.prevCR = b == '\r'
			continue
		}
		return i, c.err
	}
	if err == io.EOF && c.prevCR {
		c.err = errBareLineEnding
		return n, c.err
	}
	return n, err
}
