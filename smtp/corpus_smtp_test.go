package smtp

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// corpusDir holds real-world mail written by other projects, shared beside
// the repository (../shared/corpus). It must be there: a missing corpus
// fails the test rather than skipping it.
var corpusDir = filepath.Join("..", "..", "shared", "corpus")

// toCRLF normalises line endings as a sending MTA does before DATA.
func toCRLF(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	b = bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// asAccount replaces the From header fields with the logged-in account, as
// the clinician's own mail program would have written it, so that the
// gateway's sender check does not hide what the MIME walk makes of the rest.
func asAccount(msg []byte) []byte {
	head, body, found := bytes.Cut(msg, []byte("\r\n\r\n"))
	if !found {
		head, body = msg, nil
	}
	var out bytes.Buffer
	out.WriteString("From: " + testAccount + "\r\n")
	skipping := false
	for _, line := range bytes.SplitAfter(head, []byte("\r\n")) {
		if skipping && len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			continue
		}
		skipping = len(line) >= 5 && strings.EqualFold(string(line[:5]), "from:")
		if !skipping {
			out.Write(line)
		}
	}
	if !bytes.HasSuffix(out.Bytes(), []byte("\r\n")) {
		out.WriteString("\r\n")
	}
	if found {
		out.WriteString("\r\n")
		out.Write(body)
	}
	return out.Bytes()
}

// dotStuff prepares data for the DATA command.
func dotStuff(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n."), []byte("\r\n.."))
	if bytes.HasPrefix(b, []byte(".")) {
		b = append([]byte("."), b...)
	}
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		b = append(b, "\r\n"...)
	}
	return append(b, ".\r\n"...)
}

var replyRE = regexp.MustCompile(`^(\d{3}) (\d\.\d{1,3}\.\d{1,3}) (.+)$`)

// TestCorpusOverSMTP submits every message of the shared corpus over SMTP
// and requires a 250, or a 5xx whose text explains itself: never a crash,
// a hang, or a 4xx that would make the sender retry forever.
func TestCorpusOverSMTP(t *testing.T) {
	var files []string
	err := filepath.WalkDir(corpusDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasPrefix(d.Name(), "LICENSE") && d.Name() != "README.md" && !strings.HasPrefix(d.Name(), ".") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("corpus: %v (it lives at ../shared/corpus beside the repository)", err)
	}
	if len(files) < 100 {
		t.Fatalf("corpus has %d files, expected the full set", len(files))
	}
	ts := newTestServer(t, func(c *Config) { c.AllowInsecureAuth = true; c.MaxMessageBytes = 10 << 20 })
	s := newRawSession(t, ts)
	accepted, refused := 0, 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(corpusDir, f)
		s.cmd("MAIL FROM:<"+testAccount+">", "250")
		s.cmd("RCPT TO:<2125550123@secure.text>", "250")
		s.cmd("DATA", "354")
		s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := s.conn.Write(dotStuff(asAccount(toCRLF(raw)))); err != nil {
			t.Fatalf("%s: write: %v", name, err)
		}
		reply := s.reply()
		m := replyRE.FindStringSubmatch(reply)
		switch {
		case m == nil:
			t.Errorf("%s: malformed reply %q", name, reply)
		case m[1] == "250":
			accepted++
		case m[1][0] == '5' && len(m[3]) > 20:
			refused++
			t.Logf("%s: %s", name, reply)
		default:
			t.Errorf("%s: %q: want 250 or a 5xx that explains itself", name, reply)
		}
	}
	t.Logf("corpus: %d messages, %d accepted, %d refused with a reason", len(files), accepted, refused)
	if n := countMessages(t, ts.db); n != accepted {
		t.Errorf("%d messages stored, %d accepted", n, accepted)
	}
}
