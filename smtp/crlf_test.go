package smtp

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// refCRLFReader is the line-ending guard as it was before it scanned whole
// buffers: one byte at a time, obviously right. It is the reference the
// tests hold crlfReader to, and the "old" of BenchmarkCRLFReader.
type refCRLFReader struct {
	r      io.Reader
	prevCR bool
	err    error
}

func (c *refCRLFReader) Read(p []byte) (int, error) {
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

// splitReader returns data in reads of 1 to max bytes, the sizes drawn
// from rng, and the last bytes together with io.EOF when eofWithData.
type splitReader struct {
	data        []byte
	rng         *rand.Rand
	max         int
	eofWithData bool
}

func (s *splitReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1+s.rng.IntN(s.max))], s.data)
	s.data = s.data[n:]
	if s.eofWithData && len(s.data) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// readPatterns are the ways the tests feed data to a reader: whole, a byte
// at a time, halves, data with io.EOF, and random splits from seed.
func readPatterns(data []byte, seed uint64) map[string]func() io.Reader {
	return map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(data) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
		"random": func() io.Reader {
			return &splitReader{data: data, rng: rand.New(rand.NewPCG(seed, 1)), max: 1 + int(seed%200), eofWithData: seed&1 == 0}
		},
	}
}

// sameReads reads got and want in step, with the same buffer sizes (drawn
// from seed), and returns a description of the first read on which they
// differ in count, bytes or error, or "" if none does.
func sameReads(got, want io.Reader, seed uint64) string {
	rng := rand.New(rand.NewPCG(seed, 2))
	for call := 0; call < 1<<20; call++ {
		size := 1 + rng.IntN(300)
		p, q := make([]byte, size), make([]byte, size)
		n, err := got.Read(p)
		m, werr := want.Read(q)
		if n != m || !bytes.Equal(p[:n], q[:m]) || err != werr {
			return fmt.Sprintf("read %d (%d bytes): got %d %q %v, want %d %q %v", call, size, n, p[:n], err, m, q[:m], werr)
		}
		if err != nil && werr != nil {
			return ""
		}
	}
	return "no end after 1<<20 reads"
}

// crlfOutcome is what the guard must do with data: pass the bytes before
// the first bare line ending (a bare CR itself passes; the byte after it
// does not), and fail if there is one.
func crlfOutcome(data []byte) (pass []byte, bare bool) {
	for i, c := range data {
		switch {
		case c == '\n' && (i == 0 || data[i-1] != '\r'):
			return data[:i], true
		case c == '\r' && i+1 == len(data):
			return data, true
		case c == '\r' && data[i+1] != '\n':
			return data[:i+1], true
		}
	}
	return data, false
}

func TestCRLFReader(t *testing.T) {
	for _, tc := range []struct {
		in, pass string
		bare     bool
	}{
		{"", "", false},
		{"a\r\nb\r\n", "a\r\nb\r\n", false},
		{"no line end", "no line end", false},
		{"\r\n\r\n", "\r\n\r\n", false},
		{"a\nb", "a", true},
		{"\n", "", true},
		{"a\rb\r\n", "a\r", true},
		{"a\r\r\n", "a\r", true},
		{"a\r\n\n", "a\r\n", true},
		{"a\r", "a\r", true},
		{"\r", "\r", true},
		{"a\n\r", "a", true},
	} {
		for name, r := range readPatterns([]byte(tc.in), 7) {
			var out bytes.Buffer
			_, err := out.ReadFrom(&crlfReader{r: r()})
			if out.String() != tc.pass || (err == errBareLineEnding) != tc.bare || (err != nil && err != errBareLineEnding) {
				t.Errorf("%q read %s: passed %q, %v; want %q, bare %v", tc.in, name, out.String(), err, tc.pass, tc.bare)
			}
		}
	}
}

// TestCRLFReaderMatchesReference holds the whole-buffer guard to the
// byte-at-a-time one, read by read, over random mail-like data in which
// CRLF is common and a bare CR or LF rare, so that about half the inputs
// are clean and the rest go bad anywhere, split at random places
// (a CRLF split between reads included).
func TestCRLFReaderMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"x", "xxxxxxxx", "\r\n", "\r\n", "\r\n", "\r\n\r\n", "\r", "\n", "\n\r"}
	clean := 0
	for i := 0; i < 3000; i++ {
		var b strings.Builder
		bad := rng.IntN(2) == 0
		for n := rng.IntN(60); n > 0; n-- {
			p := pieces[rng.IntN(len(pieces))]
			if !bad && (p == "\r" || p == "\n" || p == "\n\r") {
				p = "\r\n"
			}
			b.WriteString(p)
		}
		data := []byte(b.String())
		if _, bare := crlfOutcome(data); !bare {
			clean++
		}
		seed := rng.Uint64()
		for name, r := range readPatterns(data, seed) {
			if diff := sameReads(&crlfReader{r: r()}, &refCRLFReader{r: r()}, seed); diff != "" {
				t.Fatalf("%q read %s (seed %d): %s", data, name, seed, diff)
			}
		}
		// A read error other than EOF is passed on as it is.
		timeout := func() io.Reader { return iotest.TimeoutReader(bytes.NewReader(data)) }
		if diff := sameReads(&crlfReader{r: timeout()}, &refCRLFReader{r: timeout()}, seed); diff != "" {
			t.Fatalf("%q after a timeout (seed %d): %s", data, seed, diff)
		}
	}
	if clean < 1000 || clean > 2000 {
		t.Errorf("%d of 3000 inputs clean; the generator should make about half", clean)
	}
}

// randomBytes returns n bytes from rng.
func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// crlfBenchData is 1 MiB of what the guard mostly sees: the base64 of
// random bytes, in 76-character lines ending in CRLF (as many whole lines
// as fit).
func crlfBenchData() []byte {
	lines := 1 << 20 / 78
	enc := base64.StdEncoding.EncodeToString(randomBytes(rand.New(rand.NewPCG(3, 4)), lines*57))
	b := make([]byte, 0, lines*78)
	for i := 0; i < len(enc); i += 76 {
		b = append(append(b, enc[i:i+76]...), "\r\n"...)
	}
	return b
}

// BenchmarkCRLFReader measures the line-ending guard on 1 MiB of base64
// lines, read with the walk's 32 KiB buffer: "old" is the byte-at-a-time
// reference, "new" crlfReader.
func BenchmarkCRLFReader(b *testing.B) {
	data := crlfBenchData()
	for _, impl := range []struct {
		name string
		new  func(io.Reader) io.Reader
	}{
		{"old", func(r io.Reader) io.Reader { return &refCRLFReader{r: r} }},
		{"new", func(r io.Reader) io.Reader { return &crlfReader{r: r} }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			buf := make([]byte, copyBufferSize)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				r := impl.new(bytes.NewReader(data))
				for {
					_, err := r.Read(buf)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
