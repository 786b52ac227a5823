package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
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
// says to), and find the console text with a link that opens.
func TestFirstMessageAsInREADME(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed (make test installs it): ", err)
	}
	example, err := os.ReadFile(filepath.Join("..", "..", "config.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// The example as shipped, on free ports.
	text := strings.NewReplacer(
		`submission_listen = "127.0.0.1:2587"`, `submission_listen = "127.0.0.1:0"`,
		`listen = "127.0.0.1:8080"`, `listen = "127.0.0.1:0"`,
	).Replace(string(example))
	cfg, err := ParseConfig([]byte(text), t.TempDir())
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
}
