package export

import (
	"bytes"
	"io"
)

// mboxrd turns a message with CRLF line endings into its form in an mboxrd
// file: lines end in LF, and a line that starts with any number of ">"
// followed by "From " gets one more ">" in front, so that no line of a
// message can pass for the "From " line that starts the next, and a
// reader that removes one ">" from such lines gets every line back.
//
// It streams: a line is written as it comes, except its first few bytes
// while they could still be the start of ">*From ", and a CR until the
// byte after it says whether it ends a line. Whole runs between line
// starts are found with bytes.IndexByte; referenceMboxrd in the tests is
// the plain line-by-line form that it must equal.
type mboxrd struct {
	w io.Writer
	// atStart is true at the start of a line, until what follows decides
	// whether the line is escaped; head holds the bytes read meanwhile
	// (">"s, then a prefix of "From "), gts how many of them are ">".
	atStart bool
	head    []byte
	gts     int
	cr      bool // a CR was held back
	err     error
}

func newMboxrd(w io.Writer) *mboxrd { return &mboxrd{w: w, atStart: true} }

const fromLine = "From "

func (q *mboxrd) write(b []byte) {
	if q.err == nil && len(b) > 0 {
		_, q.err = q.w.Write(b)
	}
}

// Write implements io.Writer.
func (q *mboxrd) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && q.err == nil {
		if q.atStart {
			p = q.start(p)
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			q.flushCR(false)
			if p[len(p)-1] == '\r' {
				q.write(p[:len(p)-1])
				q.cr = true
			} else {
				q.write(p)
			}
			break
		}
		line := p[:i]
		q.flushCR(len(line) == 0)
		line = bytes.TrimSuffix(line, []byte{'\r'})
		q.write(line)
		q.write([]byte{'\n'})
		p = p[i+1:]
		q.atStart = true
	}
	if q.err != nil {
		return 0, q.err
	}
	return n, nil
}

// start reads the first bytes of a line from p until it is decided
// whether the line is escaped, and returns the rest of p.
func (q *mboxrd) start(p []byte) []byte {
	for len(p) > 0 {
		c := p[0]
		k := len(q.head) - q.gts // bytes of "From " matched
		switch {
		case c == '>' && k == 0:
			q.gts++
		case c == fromLine[k]:
			if k+1 == len(fromLine) {
				q.write([]byte{'>'})
				q.decide()
				return p // the space is written as the line's text
			}
		default:
			q.decide()
			return p
		}
		q.head = append(q.head, c)
		p = p[1:]
	}
	return p
}

// decide ends a line's start: the bytes held are written as they were.
func (q *mboxrd) decide() {
	q.write(q.head)
	q.head, q.gts, q.atStart = q.head[:0], 0, false
}

// flushCR writes a CR held back, unless it ends a line (crlf).
func (q *mboxrd) flushCR(crlf bool) {
	if q.cr && !crlf {
		q.write([]byte{'\r'})
	}
	q.cr = false
}

// Close writes what is held back: the start of a last line without its
// end, or a CR.
func (q *mboxrd) Close() error {
	if q.atStart {
		q.write(q.head)
		q.head, q.gts = q.head[:0], 0
	}
	q.flushCR(false)
	return q.err
}
