package smtp

import (
	"bytes"
	"fmt"
	"strings"
)

// headerGuard reads a relayed message's top-level header as it streams
// past (beside the MIME walk and the DKIM verifier), strictly: every line
// a "Name: value" field or the continuation of one, up to the empty line.
// The MIME walk reads headers leniently, as mail programs do (an mbox
// "From " line, an indented first line, a missing empty line), and DKIM
// reads them its own way; on the relay, where the From address is the
// identity that is checked and shown, any header on which two readers
// could disagree is refused instead ("Composition Kills", USENIX Security
// 2020). It also keeps the From field's raw value, so that the address the
// walk parsed can be checked against it.
type headerGuard struct {
	line    []byte // the line being read
	lineNo  int
	done    bool   // the empty line was seen
	fault   string // the first thing wrong, or ""
	from    int    // From fields, named as DKIM names them (case and spaces aside)
	fromVal []byte // the first From field's value, unfolded
	inFrom  bool   // the field being read is a From field
	fields  fieldCounts
}

// shownFields are the header fields that must be what the sender's check
// vouches for: what the recipient is shown (From, Sender, Reply-To, To,
// Cc, Subject, Date, Message-ID) and what decides how the body reads
// (Content-Type, Content-Transfer-Encoding, MIME-Version). RFC 5322 3.6
// and RFC 2045 allow each at most once in a message's header.
var shownFields = [...]string{
	"From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID",
	"Content-Type", "Content-Transfer-Encoding", "MIME-Version",
}

// fieldCounts counts the instances of each of shownFields in a header, by
// name as DKIM matches names: case aside, and the spaces before the colon.
type fieldCounts [len(shownFields)]int

func (f *fieldCounts) add(name []byte) {
	for i, s := range shownFields {
		if bytes.EqualFold(name, []byte(s)) {
			f[i]++
			return
		}
	}
}

// duplicate returns the first of shownFields that the header holds more
// than once, and how many times; "" when there is none.
func (f *fieldCounts) duplicate() (string, int) {
	for i, n := range f {
		if n > 1 {
			return shownFields[i], n
		}
	}
	return "", 0
}

// uncovered returns what a DKIM signature that lists the header fields
// signed leaves unsigned of shownFields, or "" when it covers them all.
// A field listed n times in h= signs its bottom n instances (RFC 6376
// 5.4.2), and listing it more times than it appears ("oversigning") is
// how a signer keeps more from being added on top: so each field must be
// listed at least as many times as the header holds it.
func (f *fieldCounts) uncovered(signed []string) string {
	for i, n := range f {
		if n == 0 {
			continue
		}
		k := 0
		for _, s := range signed {
			if strings.EqualFold(s, shownFields[i]) {
				k++
			}
		}
		if k < n {
			return fmt.Sprintf("the %s: field (the header has %d, the signature signs %d)", shownFields[i], n, k)
		}
	}
	return ""
}

const (
	maxGuardLine = 1 << 20  // go-smtp bounds lines far below this already
	maxFromValue = 16 << 10 // a From field longer than this is refused
)

func (g *headerGuard) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && !g.done {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			g.add(p)
			break
		}
		g.add(p[:i+1])
		p = p[i+1:]
		g.endLine()
	}
	return n, nil
}

func (g *headerGuard) add(b []byte) {
	if len(g.line)+len(b) > maxGuardLine {
		g.fail("line %d is too long", g.lineNo+1)
		return
	}
	g.line = append(g.line, b...)
}

func (g *headerGuard) fail(format string, args ...any) {
	if g.fault == "" {
		g.fault = fmt.Sprintf(format, args...)
	}
	g.done = true
}

func (g *headerGuard) endLine() {
	if g.done {
		return
	}
	g.lineNo++
	l := bytes.TrimSuffix(g.line, []byte("\r\n"))
	g.line = g.line[:0]
	switch {
	case len(l) == 0:
		g.done = true
	case l[0] == ' ' || l[0] == '\t':
		if g.lineNo == 1 {
			g.fail("its first line is indented")
			return
		}
		if g.inFrom {
			g.addFrom(l)
		}
	default:
		i := bytes.IndexByte(l, ':')
		name := bytes.TrimRight(l[:max(i, 0)], " \t")
		if i < 0 || len(name) == 0 || bytes.ContainsFunc(name, func(r rune) bool { return r < 33 || r > 126 }) {
			g.fail("line %d is not a header field", g.lineNo)
			return
		}
		g.fields.add(name)
		g.inFrom = string(bytes.ToLower(name)) == "from"
		if g.inFrom {
			g.from++
			if g.from == 1 {
				g.addFrom(l[i+1:])
			}
		}
	}
}

func (g *headerGuard) addFrom(b []byte) {
	if g.from > 1 {
		return
	}
	if len(g.fromVal)+len(b) > maxFromValue {
		g.fail("its From: field is longer than %d bytes", maxFromValue)
		return
	}
	g.fromVal = append(g.fromVal, b...)
}
