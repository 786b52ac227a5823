package smtp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// refBase64Reader is the base64 decoder as it was before base64Reader: the
// standard library's streaming decoder, which skips CR and LF one byte at a
// time, over spacesToNewlines. It is the reference the tests hold
// base64Reader to, and the "old" of BenchmarkBase64Reader.
func refBase64Reader(r io.Reader) io.Reader {
	return base64.NewDecoder(base64.StdEncoding, spacesToNewlines{r})
}

// spacesToNewlines lets the base64 decoder, which skips CR and LF, also skip
// the spaces and tabs that some mailers indent base64 lines with.
type spacesToNewlines struct{ r io.Reader }

func (s spacesToNewlines) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	for i, c := range p[:n] {
		if c == ' ' || c == '\t' {
			p[i] = '\n'
		}
	}
	return n, err
}

// readWith reads r to its end with a buffer of size bytes, as the MIME
// walk does, and returns what it read and the error that ended it (nil for
// io.EOF).
func readWith(r io.Reader, size int) ([]byte, error) {
	var out []byte
	buf := make([]byte, size)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// readSplit reads r to its end with buffers of random sizes drawn from seed,
// now and then larger than a whole decoded block.
func readSplit(r io.Reader, seed uint64) ([]byte, error) {
	rng := rand.New(rand.NewPCG(seed, 3))
	var out, buf []byte
	for {
		size := 1 + rng.IntN(100)
		if rng.IntN(8) == 0 {
			size = 1 + rng.IntN(40<<10)
		}
		if size > len(buf) {
			buf = make([]byte, size)
		}
		n, err := r.Read(buf[:size])
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// errKind names the class of a decoding error; the tests compare classes,
// as the old decoder's CorruptInputError offsets counted from the start of
// its 1 KiB chunk and meant nothing.
func errKind(err error) string {
	var corrupt base64.CorruptInputError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &corrupt):
		return "corrupt"
	case err == io.ErrUnexpectedEOF:
		return "unexpected EOF"
	}
	return err.Error()
}

// base64Chars returns data without the white space a decoder skips.
func base64Chars(data []byte) []byte {
	return bytes.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, data)
}

// afterPadding reports whether base64 characters follow the group that
// holds the first "=": data the old decoder accepted when the padding
// happened to end one of its chunks, and base64Reader always refuses.
func afterPadding(chars []byte) bool {
	i := bytes.IndexByte(chars, '=')
	return i >= 0 && len(chars) > (i/4+1)*4
}

// randomBase64Body encodes payload as a mailer might: lines of a random
// length ending in CRLF, LF or a lone CR, perhaps indented with spaces or
// tabs, perhaps with white space strewn between characters and after the
// end.
func randomBase64Body(rng *rand.Rand, payload []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(payload)
	lineLen := []int{76, 76, 64, 4, 1 + rng.IntN(120)}[rng.IntN(5)]
	eol := []string{"\r\n", "\r\n", "\n", "\r", " \r\n"}[rng.IntN(5)]
	indent := []string{"", "", " ", "\t", "  \t"}[rng.IntN(5)]
	strew := rng.IntN(4) == 0
	var b bytes.Buffer
	for i := 0; i < len(enc); i += lineLen {
		b.WriteString(indent)
		for _, c := range []byte(enc[i:min(i+lineLen, len(enc))]) {
			if strew && rng.IntN(10) == 0 {
				b.WriteString([]string{" ", "\t", "\r\n", "\n"}[rng.IntN(4)])
			}
			b.WriteByte(c)
		}
		if i+lineLen < len(enc) || rng.IntN(2) == 0 {
			b.WriteString(eol)
		}
	}
	if rng.IntN(4) == 0 {
		b.WriteString([]string{"\r\n", " ", "\t\r\n\r\n", "  "}[rng.IntN(4)])
	}
	return b.Bytes()
}

// TestBase64ReaderMatchesReference decodes random payloads, encoded with
// random line lengths, line ends and white space, fed in every read
// pattern and read with random buffer sizes: the output must be the
// payload, as the old decoder gives it.
func TestBase64ReaderMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 400; i++ {
		size := rng.IntN(300)
		switch rng.IntN(8) {
		case 0:
			size = rng.IntN(100 << 10) // several 32 KiB blocks
		case 1:
			size = base64BlockSize/4*3 + rng.IntN(9) - 4 // around one block
		}
		payload := randomBytes(rng, size)
		body := randomBase64Body(rng, payload)
		seed := rng.Uint64()

		old, err := readWith(refBase64Reader(bytes.NewReader(body)), copyBufferSize)
		if err != nil || !bytes.Equal(old, payload) {
			t.Fatalf("the reference decoder fails %q: %v", body, err)
		}
		for name, r := range readPatterns(body, seed) {
			got, err := readSplit(newBase64Reader(r()), seed)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("body %d read %s (seed %d): %v, %d bytes, want %d\n%q", i, name, seed, err, len(got), len(payload), body)
			}
		}
		got, err := readWith(iotest.OneByteReader(newBase64Reader(iotest.HalfReader(bytes.NewReader(body)))), 100)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("body %d read a byte at a time: %v", i, err)
		}
		if i%20 == 0 {
			if err := iotest.TestReader(newBase64Reader(bytes.NewReader(body)), payload); err != nil {
				t.Fatalf("body %d: %v", i, err)
			}
		}
	}
}

// TestBase64ReaderErrors pins what a broken body gives: the bytes of every
// whole group before the damage, then an error. The old decoder is held to
// the same table, so each difference from it is written down here.
func TestBase64ReaderErrors(t *testing.T) {
	corrupt := func(off int64) error { return base64.CorruptInputError(off) }
	for _, tc := range []struct {
		name, in, out string
		err           error // base64Reader's error
		oldErr        string
		oldOut        *string // when the old decoder gave other bytes
	}{
		{"truncated group", "QUJ", "", io.ErrUnexpectedEOF, "unexpected EOF", nil},
		{"truncated after a group", "QUJDRA\r\n", "ABC", io.ErrUnexpectedEOF, "unexpected EOF", nil},
		{"one character", "Q", "", io.ErrUnexpectedEOF, "unexpected EOF", nil},
		{"half the padding", "QQ=\r\n", "", io.ErrUnexpectedEOF, "unexpected EOF", nil},
		{"not base64", "!!!!\r\n", "", corrupt(0), "corrupt", nil},
		{"bad line after a good one", "QUJD\r\nQU!D\r\nQUJD\r\n", "ABC", corrupt(6), "corrupt", nil},
		{"URL alphabet", "QUJ-", "", corrupt(3), "corrupt", nil},
		{"a group after the padding", "QQ==QUJD", "A", corrupt(4), "corrupt", nil},
		{"a group after the padding, next line", "QUI=\r\nQUJD\r\n", "AB", corrupt(4), "corrupt", nil},
		{"padding in the wrong place", "QQ=A", "", corrupt(2), "corrupt", nil},
		{"only padding", "====", "", corrupt(0), "corrupt", nil},
		{"padding too long", "QQ===\r\n", "A", corrupt(4), "unexpected EOF", nil},
		{"a character after the padding", "QQ==\r\nQ\r\n", "A", corrupt(4), "unexpected EOF", nil},
		{"white space after the padding", "QQ==\r\n \t\r\n\r\n", "A", nil, "ok", nil},
		{"padding split by a line break", "QQ=\r\n=", "A", nil, "ok", nil},
		{"padding split by a space", "QUJDQQ= =", "ABCA", nil, "ok", nil},
		{"indented and trailing white space", "  QUJD\r\n\tRA==  ", "ABCD", nil, "ok", nil},
		{"no padding", "QUJDRA", "ABC", io.ErrUnexpectedEOF, "unexpected EOF", nil},
		{"padding that ends the old decoder's 1 KiB chunk, then more",
			strings.Repeat("QUJD", 255) + "QQ==QUJD", strings.Repeat("ABC", 255) + "A", corrupt(1024), "ok",
			ptr(strings.Repeat("ABC", 255) + "AABC")},
		{"padding that ends base64Reader's 32 KiB block, then more",
			strings.Repeat("QUJD", base64BlockSize/4-1) + "QQ==QUJD", strings.Repeat("ABC", base64BlockSize/4-1) + "A", corrupt(base64BlockSize), "ok",
			ptr(strings.Repeat("ABC", base64BlockSize/4-1) + "AABC")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for name, r := range readPatterns([]byte(tc.in), 11) {
				got, err := readSplit(newBase64Reader(r()), 11)
				if string(got) != tc.out || err != tc.err {
					t.Errorf("read %s: %q, %v; want %q, %v", name, got, err, tc.out, tc.err)
				}
			}
			old, err := readWith(refBase64Reader(strings.NewReader(tc.in)), copyBufferSize)
			oldOut := tc.out
			if tc.oldOut != nil {
				oldOut = *tc.oldOut
			}
			if string(old) != oldOut || errKind(err) != tc.oldErr {
				t.Errorf("old decoder: %q, %v; want %q, %s", old, err, oldOut, tc.oldErr)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestBase64ReaderPassesReadErrors checks that an error of the body, such as
// errTruncated for a part whose boundary never came, comes out as it is,
// after the bytes decoded before it, as it did from the old decoder: the
// walk tells a cut-off part from a corrupt one by it.
func TestBase64ReaderPassesReadErrors(t *testing.T) {
	for _, in := range []string{"", "QUJD", "QUJDRA", "QUJD\r\nRA==", "QUJD!"} {
		body := func() io.Reader { return io.MultiReader(strings.NewReader(in), iotest.ErrReader(errTruncated)) }
		got, err := readWith(newBase64Reader(body()), 100)
		old, oldErr := readWith(refBase64Reader(body()), 100)
		want := errKind(oldErr)
		if !bytes.Equal(got, old) || errKind(err) != want {
			t.Errorf("%q: %q, %v; the old decoder gave %q, %v", in, got, err, old, oldErr)
		}
		if in != "QUJD!" && !errors.Is(err, errTruncated) {
			t.Errorf("%q: %v, want errTruncated", in, err)
		}
	}
}

// TestBase64ReaderMemory decodes 32 MiB and checks that the reader's
// memory is its fixed buffers, whatever the size of the body or of the
// reads it is given.
func TestBase64ReaderMemory(t *testing.T) {
	line := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("0123456789abcdefghi"), 3)) + "\r\n"
	for _, size := range []int{copyBufferSize, 1000} {
		buf := make([]byte, size)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r := newBase64Reader(&mimeLineRepeater{line: line, n: 32 << 20 / 57})
		n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{r}, buf) // reads of len(buf)
		runtime.ReadMemStats(&after)
		if err != nil || n != 32<<20/57*57 {
			t.Fatalf("read %d bytes, %v", n, err)
		}
		if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 128<<10 {
			t.Errorf("reads of %d bytes: decoding 32 MiB allocated %d KiB; want < 128 KiB", size, allocated>>10)
		}
	}
}

// FuzzBase64Reader holds base64Reader to the old decoder on any input. The
// output and the error class must be the same, except where base64
// characters follow the padding: the old decoder sometimes accepted those,
// base64Reader always fails, after a prefix of the old output. And
// base64Reader must give the same bytes and the same error however it is
// read.
func FuzzBase64Reader(f *testing.F) {
	f.Add([]byte("QUJD\r\nRA==\r\n"), uint64(0))
	f.Add([]byte("  QUJD\r\n\tRA = = "), uint64(1))
	f.Add([]byte("QUJ"), uint64(2))
	f.Add([]byte("QQ==QUJD"), uint64(3))
	f.Add([]byte("QUJD\r\nQU!D\r\n"), uint64(4))
	f.Add([]byte(strings.Repeat("QUJD", 255)+"QQ==QUJD"), uint64(5))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		want, wantErr := readWith(refBase64Reader(bytes.NewReader(data)), copyBufferSize)
		got, err := readWith(newBase64Reader(bytes.NewReader(data)), copyBufferSize)
		for name, r := range readPatterns(data, seed) {
			g, e := readSplit(newBase64Reader(r()), seed)
			if !bytes.Equal(g, got) || e != err {
				t.Fatalf("read %s: %q, %v; read whole: %q, %v", name, g, e, got, err)
			}
		}
		if k := errKind(err); k != "ok" && k != "corrupt" && k != "unexpected EOF" {
			t.Fatalf("error %v (%T)", err, err)
		}
		chars := base64Chars(data)
		if afterPadding(chars) {
			if err == nil || !bytes.HasPrefix(want, got) {
				t.Fatalf("data after padding: %q, %v; old decoder %q, %v", got, err, want, wantErr)
			}
			return
		}
		if !bytes.Equal(got, want) || errKind(err) != errKind(wantErr) {
			t.Fatalf("got %q, %v; old decoder %q, %v", got, err, want, wantErr)
		}
		if err == nil {
			if whole, err := base64.StdEncoding.DecodeString(string(chars)); err != nil || !bytes.Equal(whole, got) {
				t.Fatalf("decoded %q; DecodeString gives %q, %v", got, whole, err)
			}
		}
	})
}

// BenchmarkBase64Reader measures decoding a base64 body of 1 MiB (76
// characters and CRLF a line), read with the walk's 32 KiB buffer: "old" is
// the standard library's decoder over spacesToNewlines, "new"
// base64Reader. The MB/s are of base64 text read.
func BenchmarkBase64Reader(b *testing.B) {
	data := crlfBenchData()
	want, err := base64.StdEncoding.DecodeString(string(base64Chars(data)))
	if err != nil {
		b.Fatal(err)
	}
	for _, impl := range []struct {
		name string
		new  func(io.Reader) io.Reader
	}{
		{"old", refBase64Reader},
		{"new", func(r io.Reader) io.Reader { return newBase64Reader(r) }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			buf := make([]byte, copyBufferSize)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				r := impl.new(bytes.NewReader(data))
				n := 0
				for {
					m, err := r.Read(buf)
					n += m
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if n != len(want) {
					b.Fatalf("decoded %d bytes, want %d", n, len(want))
				}
			}
		})
	}
}
