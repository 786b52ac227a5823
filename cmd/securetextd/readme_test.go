package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securetextd/securetextd/internal/need"
)

// syncBuffer is a bytes.Buffer safe for the daemon's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFirstMessageAsInREADME follows the README: start on the example
// configuration, run the curl command that start-up prints (as the README
// says to), find the console text with a link that opens, reply as the
// recipient, and read the reply with the README's `mail list` and `mail
// show` commands.
func TestFirstMessageAsInREADME(t *testing.T) {
	need.Program(t, "curl", "curl")
	example, err := os.ReadFile(filepath.Join("..", "..", "config.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// The example as shipped, on free ports.
	text := strings.NewReplacer(
		`submission_listen = "127.0.0.1:2587"`, `submission_listen = "127.0.0.1:0"`,
		`listen = "127.0.0.1:8080"`, `listen = "127.0.0.1:0"`,
		`listen = "127.0.0.1:8081"`, `listen = "127.0.0.1:0"`,
	).Replace(string(example))
	// Written to a file, for the README's commands to name.
	cfgPath := filepath.Join(t.TempDir(), "config.example.toml")
	if err := os.WriteFile(cfgPath, []byte(withTestEngine(t, text)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), Stdout: out}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer m.Close(t.Context())

	// The printed command, continuation lines joined.
	printed := strings.ReplaceAll(out.String(), "\\\n", " ")
	cmdLine := regexp.MustCompile(`(?m)^\s*(curl .*)$`).FindStringSubmatch(printed)
	if cmdLine == nil {
		t.Fatalf("no curl command printed:\n%s", out)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "--upload-file examples/first-message.eml") {
		t.Error("README does not show the command that start-up prints")
	}
	cmd := exec.Command("sh", "-c", cmdLine[1])
	cmd.Dir = filepath.Join("..", "..") // the README's commands run at the top of the repository
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmdLine[1], err, b)
	}

	// The text appears on the console as a JSON line with the link.
	var sms struct{ To, From, Text string }
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && sms.To == "" {
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(line, `{"to":`) {
				if err := json.Unmarshal([]byte(line), &sms); err != nil {
					t.Fatalf("console line %q: %v", line, err)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if sms.To != "+12125550123" || sms.From != "Example Clinic" {
		t.Fatalf("console text: %+v\n%s", sms, out)
	}
	link := regexp.MustCompile(`http://127\.0\.0\.1:8080(/m/[A-Za-z0-9_-]{22,})`).FindStringSubmatch(sms.Text)
	if link == nil {
		t.Fatalf("no link in %q", sms.Text)
	}
	get(t, http.DefaultClient, "http://"+m.PortalAddr+link[1], http.StatusOK)

	// The example asks a new browser for a code first (second_factor =
	// "sms-code"): texted when asked for, it too appears on the console.
	p := newPhone(t, m)
	if path := p.post(link[1]+"/code", nil); path != link[1]+"/code" {
		t.Fatalf("asking for a code went to %s", path)
	}
	code := consoleCode(t, out)
	if path := p.post(link[1]+"/verify", url.Values{"code": {code}}); path != link[1] {
		t.Fatalf("the code went to %s, want the link's page", path)
	}

	// The recipient replies; the reply is kept sealed in mail.dir, and the
	// README's commands read it.
	conv := p.post(link[1]+"/setup", url.Values{
		"password": {"maple syrup on pancakes"}, "confirm": {"maple syrup on pancakes"}, "email": {"ana@example.org"},
	})
	p.reply(conv, "Thank you, doctor", "photo.jpg", []byte("\xff\xd8\xff\xe0 not much of a photo"))
	mailCmds := regexp.MustCompile(`(?m)^\./bin/securetextd (mail (?:list|show) .*)$`).FindAllStringSubmatch(string(readme), -1)
	if len(mailCmds) != 2 || !strings.HasPrefix(mailCmds[0][1], "mail list ") || !strings.HasPrefix(mailCmds[1][1], "mail show FILE ") {
		t.Fatalf("the README does not show mail list, then mail show FILE: %q", mailCmds)
	}
	cli := func(line, file string) string {
		t.Helper()
		var args []string
		for _, a := range strings.Fields(line) {
			switch a {
			case "config.example.toml":
				a = cfgPath
			case "FILE":
				a = file
			}
			args = append(args, a)
		}
		var out bytes.Buffer
		if err := run(args, nil, &out, io.Discard); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return out.String()
	}
	var replyFile string
	deadline = time.Now().Add(10 * time.Second)
	for replyFile == "" {
		if row := regexp.MustCompile(`(?m)^.* reply +demo@example\.org +.* (\S+\.eml\.age)$`).
			FindStringSubmatch(cli(mailCmds[0][1], "")); row != nil {
			replyFile = row[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("mail list shows no reply:\n%s", cli(mailCmds[0][1], ""))
		}
		time.Sleep(20 * time.Millisecond)
	}
	shown := cli(mailCmds[1][1], replyFile)
	// The reply stays sealed in the store (mail.reply_mode = "notice"):
	// the email says who replied and links to the console, no more.
	if !strings.Contains(shown, "\r\nSubject: Re: Your lab results\r\n") || !strings.Contains(shown, " replied at ") ||
		!strings.Contains(shown, "/r/") || strings.Contains(shown, "Thank you, doctor") || strings.Contains(shown, "photo.jpg") {
		t.Errorf("mail show:\n%s", shown)
	}
}

// consoleCode waits for a one-time code on the console provider's output,
// as a developer running make run reads it, and returns it.
func consoleCode(t *testing.T, out *syncBuffer) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^\{"to":"\+12125550123","from":"[^"]*","text":"([0-9]{6}) is your `)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no code on the console:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
