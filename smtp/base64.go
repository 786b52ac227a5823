package smtp

import (
	"bytes"
	"encoding/base64"
	"io"
)

// base64Reader decodes a base64 body (RFC 2045) as it is read, skipping
// the line breaks every base64 body has and the spaces and tabs that some
// mailers indent it with.
//
// It does what base64.NewDecoder over a filter that turns spaces into line
// breaks did, a whole buffer at a time: that decoder drops CR and LF one
// byte at a time (and the filter looked at every byte again), which was a
// tenth of the CPU the gateway spent receiving a large attachment. Here a
// block of up to 32 KiB is read, its line breaks are cut out with a copy
// per line found by bytes.IndexByte, and the characters are decoded by
// base64.StdEncoding.Decode in one call. Spaces and tabs cost nothing
// unless they are there: Decode refuses them, and only then are they cut
// out too and the block decoded again.
//
// The output is what the old decoder gave for any valid body, and for a
// corrupt one, everything before the first bad 4-character group and then
// an error: a base64.CorruptInputError for a character outside the
// alphabet or anything after the padding, io.ErrUnexpectedEOF for a body
// that stops inside a group, and the underlying reader's own error (such
// as errTruncated) as it is. The offset of a CorruptInputError counts
// base64 characters from the start of the body, white space not counted.
// The old decoder accepted data after padding when the padding happened to
// end one of its 1 KiB reads; this one never does.
type base64Reader struct {
	r       io.Reader
	in      []byte // read buffer; in[:nin] holds characters not yet decoded
	nin     int
	out     []byte // decoded bytes for a Read too small to take them, made on demand
	pending []byte // out's bytes not yet returned
	decoded int64  // characters decoded so far, for CorruptInputError offsets
	padded  bool   // the padding was seen: only white space may follow
	readErr error  // the error of the last read of r
	err     error  // returned once pending is empty
}

// base64BlockSize is how much base64 text is read and decoded at once;
// the reader holds this much and three quarters of it for output.
const base64BlockSize = 32 << 10

func newBase64Reader(r io.Reader) *base64Reader {
	return &base64Reader{r: r, in: make([]byte, base64BlockSize)}
}

func (d *base64Reader) Read(p []byte) (int, error) {
	for {
		if len(d.pending) > 0 {
			n := copy(p, d.pending)
			d.pending = d.pending[n:]
			return n, nil
		}
		if d.err != nil {
			return 0, d.err
		}
		if len(p) == 0 {
			return 0, nil
		}
		if d.readErr != nil {
			d.err = d.end()
			continue
		}
		// Fewer than 4 characters are held back; read after them.
		n, err := d.r.Read(d.in[d.nin:])
		d.nin += len(cutLineEnds(d.in[d.nin : d.nin+n]))
		d.readErr = err
		if n := d.decode(p); n > 0 {
			return n, nil
		}
	}
}

// decode decodes the whole 4-character groups held in d.in, into p if it
// is large enough and otherwise into d.out, and keeps the rest for the
// next read. It returns how many bytes it put in p.
func (d *base64Reader) decode(p []byte) int {
	b := d.in[:d.nin]
	if d.padded {
		if len(cutByte(cutByte(b, ' '), '\t')) > 0 {
			d.err = base64.CorruptInputError(d.decoded)
		}
		d.nin = 0
		return 0
	}
	k := len(b) &^ 3
	if k == 0 {
		return 0
	}
	dst, direct := p, len(p) >= k/4*3
	if !direct {
		if d.out == nil {
			d.out = make([]byte, base64BlockSize/4*3)
		}
		dst = d.out
	}
	n, err := base64.StdEncoding.Decode(dst, b[:k])
	if err != nil && (bytes.IndexByte(b, ' ') >= 0 || bytes.IndexByte(b, '\t') >= 0) {
		b = cutByte(cutByte(b, ' '), '\t')
		k = len(b) &^ 3
		n, err = base64.StdEncoding.Decode(dst, b[:k])
	}
	// A type assertion, not errors.As: As's target escapes, which would be
	// an allocation per block. Decode returns the error unwrapped.
	corrupt, isCorrupt := err.(base64.CorruptInputError)
	switch {
	case isCorrupt:
		d.err = base64.CorruptInputError(d.decoded + int64(corrupt))
	case err != nil:
		d.err = err // Decode returns no other error today
	case k > 0 && b[k-1] == '=':
		d.padded = true // the last group; the rest must be white space
	}
	d.decoded += int64(k)
	d.nin = copy(d.in, b[k:])
	if direct {
		return n
	}
	d.pending = dst[:n]
	n = copy(p, d.pending)
	d.pending = d.pending[n:]
	return n
}

// end returns the error that ends the body once r has returned readErr.
// Fewer than 4 characters are held: if any are left once spaces and tabs
// are cut, the body stopped inside a group.
func (d *base64Reader) end() error {
	rest := cutByte(cutByte(d.in[:d.nin], ' '), '\t')
	d.nin = 0
	switch {
	case d.readErr != io.EOF:
		return d.readErr
	case len(rest) == 0:
		return io.EOF
	case d.padded:
		return base64.CorruptInputError(d.decoded)
	}
	return io.ErrUnexpectedEOF
}

// cutLineEnds removes every CR and LF from b in place and returns what is
// left. Base64 lines are 76 characters, so it moves a line at a time: the
// LFs are found with bytes.IndexByte, and the CR before each goes with it.
// A CR elsewhere (crlfReader refuses them in SMTP, but not every body comes
// from there) is found by a second scan and cut too.
func cutLineEnds(b []byte) []byte {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return cutByte(b, '\r')
	}
	w := i
	if w > 0 && b[w-1] == '\r' {
		w--
	}
	for r := i + 1; ; {
		i := bytes.IndexByte(b[r:], '\n')
		if i < 0 {
			w += copy(b[w:], b[r:])
			break
		}
		line := b[r : r+i]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		w += copy(b[w:], line)
		r += i + 1
	}
	return cutByte(b[:w], '\r')
}

// cutByte removes every c from b in place and returns what is left,
// moving the bytes between one c and the next with one copy.
func cutByte(b []byte, c byte) []byte {
	w := bytes.IndexByte(b, c)
	if w < 0 {
		return b
	}
	for r := w + 1; ; {
		i := bytes.IndexByte(b[r:], c)
		if i < 0 {
			w += copy(b[w:], b[r:])
			return b[:w]
		}
		w += copy(b[w:], b[r:r+i])
		r += i + 1
	}
}
