package export

import (
	"bytes"
	"math/rand/v2"
	"regexp"
	"testing"
)

// referenceMboxrd is the plain form of mboxrd: the whole input, line by
// line.
func referenceMboxrd(in []byte) []byte {
	escape := regexp.MustCompile(`^>*From `)
	var out []byte
	lines := bytes.Split(in, []byte("\n"))
	for i, line := range lines {
		last := i == len(lines)-1
		if !last {
			line = bytes.TrimSuffix(line, []byte("\r"))
		}
		if escape.Match(line) {
			out = append(out, '>')
		}
		out = append(out, line...)
		if !last {
			out = append(out, '\n')
		}
	}
	return out
}

// TestMboxrd holds the streaming writer to the reference on inputs made of
// the bytes that matter, written in pieces of every size.
func TestMboxrd(t *testing.T) {
	alphabet := []byte(">>From \r\n\nxF")
	r := rand.New(rand.NewPCG(1, 2))
	cases := []string{"", "From ", "From", ">From x\r\n", "\r\n\r\nFrom me\r\n>>From you\r\nFromage\r\n", "a\rb\r\n\r", "x\r"}
	for range 3000 {
		b := make([]byte, r.IntN(60))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, in := range cases {
		want := referenceMboxrd([]byte(in))
		for _, piece := range []int{1, 2, 3, 7, 1 << 10} {
			var out bytes.Buffer
			q := newMboxrd(&out)
			for p := []byte(in); len(p) > 0; {
				n := min(piece, len(p))
				q.Write(p[:n])
				p = p[n:]
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("%q in pieces of %d: %q, want %q", in, piece, out.Bytes(), want)
			}
		}
	}
}

// FuzzMboxrd holds the streaming writer to the reference on any input,
// written in pieces of any size.
func FuzzMboxrd(f *testing.F) {
	for _, s := range []string{"From x\r\n", ">>From y\r\nz\r", "a\rb\nFrom"} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, piece uint8) {
		n := int(piece)%17 + 1
		var out bytes.Buffer
		q := newMboxrd(&out)
		for p := in; len(p) > 0; {
			k := min(n, len(p))
			q.Write(p[:k])
			p = p[k:]
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		if want := referenceMboxrd(in); !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("%q in pieces of %d: %q, want %q", in, n, out.Bytes(), want)
		}
	})
}
