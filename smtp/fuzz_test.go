package smtp

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	gosmtp "github.com/emersion/go-smtp"
)

// FuzzWalkMessage feeds arbitrary bytes to the MIME walk. Whatever arrives,
// the walk must end (no hang), must not panic, must answer either nil or an
// SMTP reply with a 5xx code and a reason, and every part it hands over
// must be closed, with a filename that is valid UTF-8 and no path.
func FuzzWalkMessage(f *testing.F) {
	for _, dir := range []string{"testdata", filepath.Join("testdata", "fuzz-seeds")} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("Subject: x\r\n\r\nhello\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n--b--\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec := &partRecorder{discardData: true}
		lim := mimeLimits{MaxHeaderBytes: 64 << 10, MaxParts: 50, MaxDepth: 8}
		_, err := walkMessage(bytes.NewReader(data), rec, lim)
		if err != nil {
			var se *gosmtp.SMTPError
			if !errors.As(err, &se) || se.Code/100 != 5 || se.Message == "" {
				t.Fatalf("walk error %v (%T): want nil or a 5xx reply", err, err)
			}
		}
		for i, p := range rec.parts {
			if !p.closed && err == nil {
				t.Errorf("part %d not closed", i)
			}
			if !utf8.ValidString(p.Filename) || bytes.ContainsAny([]byte(p.Filename), "/\\\x00\r\n") {
				t.Errorf("part %d filename %q", i, p.Filename)
			}
		}
	})
}

// FuzzCRLFReader checks the bare line-ending guard against a simple model:
// the data passes whole exactly when every CR is followed by LF and every
// LF follows a CR, and otherwise the guard fails after passing the bytes
// before the first bare one (crlfOutcome). That must hold however the data
// is split into reads, and each read must match the byte-at-a-time
// reference guard's.
func FuzzCRLFReader(f *testing.F) {
	f.Add([]byte("a\r\nb\r\n"))
	f.Add([]byte("a\nb"))
	f.Add([]byte("a\rb\r\n"))
	f.Add([]byte("\r"))
	f.Add([]byte("\r\n\r\n\r\r\n"))
	f.Add([]byte("line\r\nline\r\n\n\r"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		_, err := out.ReadFrom(&crlfReader{r: bytes.NewReader(data)})
		ok := true
		for i, c := range data {
			if c == '\r' && (i+1 >= len(data) || data[i+1] != '\n') {
				ok = false
			}
			if c == '\n' && (i == 0 || data[i-1] != '\r') {
				ok = false
			}
		}
		if ok && (err != nil || !bytes.Equal(out.Bytes(), data)) {
			t.Fatalf("clean data refused or changed: %v", err)
		}
		if !ok && err != errBareLineEnding {
			t.Fatalf("bare line ending passed: err = %v", err)
		}
		pass, _ := crlfOutcome(data)
		seed := uint64(len(data))
		for _, c := range data {
			seed = seed*31 + uint64(c)
		}
		for name, r := range readPatterns(data, seed) {
			var out bytes.Buffer
			_, err := out.ReadFrom(&crlfReader{r: r()})
			if !bytes.Equal(out.Bytes(), pass) || (err != nil) == ok {
				t.Fatalf("read %s: passed %q, %v; want %q", name, out.Bytes(), err, pass)
			}
			if diff := sameReads(&crlfReader{r: r()}, &refCRLFReader{r: r()}, seed); diff != "" {
				t.Fatalf("read %s: %s", name, diff)
			}
		}
	})
}
