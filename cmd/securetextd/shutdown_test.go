package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// daemonWithUser writes the test configuration with extra TOML appended,
// adds the sender dr.who, and starts the daemon as a child process.
func daemonWithUser(t *testing.T, vonageURL, extra string) (*daemon, Config, string) {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "securetextd.toml")
	if err := os.WriteFile(cfgPath, []byte(testConfigText(t, vonageURL)+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"user", "add", "dr.who@clinic.example", "--config", cfgPath, "--password-stdin"},
		strings.NewReader("correct horse battery\n"), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	return startDaemon(t, cfgPath), cfg, cfgPath
}

// openData logs in, and starts a transaction whose DATA is under way.
func openData(t *testing.T, addr string, cfg Config) (*gosmtp.Client, io.WriteCloser) {
	t.Helper()
	c, err := gosmtp.DialStartTLS(addr, tlsConfigFor(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "dr.who@clinic.example", "correct horse battery")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("dr.who@clinic.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("2125550123@secure.text", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

// TestSIGTERMDuringData sends SIGTERM while a message's DATA is half
// transferred: the listener closes, an idle connection is told 421, the
// transfer completes with 250, the process exits 0, and the message is
// texted (before the exit or after a restart), once.
func TestSIGTERMDuringData(t *testing.T) {
	vonage := newFakeVonage(t)
	d, cfg, cfgPath := daemonWithUser(t, vonage.URL, "")

	idle, err := gosmtp.DialStartTLS(d.submission, tlsConfigFor(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	c, w := openData(t, d.submission, cfg)
	defer c.Close()
	head := "From: dr.who@clinic.example\r\nSubject: Results\r\nContent-Type: text/plain\r\n\r\n"
	line := strings.Repeat("All normal, nothing to worry about. ", 2) + "\r\n"
	io.WriteString(w, head+strings.Repeat(line, 3000)) // about 220 KB: past any buffer

	exited := make(chan error, 1)
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() { exited <- d.cmd.Wait() }()

	// New connections are refused once the listener is closed.
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", d.submission, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The idle connection is closed with a 4xx.
	if err := idle.Noop(); err == nil {
		t.Error("the idle connection still answers after SIGTERM")
	} else {
		var se *gosmtp.SMTPError
		if errors.As(err, &se) && se.Code/100 != 4 {
			t.Errorf("idle connection: %v", err)
		}
	}
	// The transfer in progress completes.
	time.Sleep(200 * time.Millisecond)
	io.WriteString(w, strings.Repeat(line, 3000))
	if err := w.Close(); err != nil {
		t.Fatalf("DATA in progress at SIGTERM: %v", err)
	}
	c.Quit()

	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	// The acknowledged message is not lost: texted now or after a restart.
	if len(vonage.sent()) == 0 {
		startDaemon(t, cfgPath)
	}
	vonage.waitTexts(t, 1, 20*time.Second)
	time.Sleep(300 * time.Millisecond)
	if texts := vonage.sent(); len(texts) != 1 || texts[0].To != "12125550123" {
		t.Fatalf("texts: %+v", texts)
	}
}

// TestSecondSignal: a second signal ends the process at once, even with a
// transfer stalled in progress.
func TestSecondSignal(t *testing.T) {
	vonage := newFakeVonage(t)
	d, cfg, _ := daemonWithUser(t, vonage.URL, "")
	c, w := openData(t, d.submission, cfg)
	defer c.Close()
	io.WriteString(w, "From: dr.who@clinic.example\r\n\r\nHalf a message")

	exited := make(chan error, 1)
	d.cmd.Process.Signal(syscall.SIGTERM)
	go func() { exited <- d.cmd.Wait() }()
	time.Sleep(500 * time.Millisecond)
	select {
	case err := <-exited:
		t.Fatalf("exited before the second signal, with a transfer in progress: %v", err)
	default:
	}
	start := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("exit after the second signal: %v", err)
		}
		if time.Since(start) > 3*time.Second {
			t.Errorf("took %v to exit", time.Since(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no exit after a second signal")
	}
}

// TestReadyzReadOnly runs the daemon as an unprivileged user (root
// ignores file modes) and makes its database file read-only: /readyz
// fails, naming the database, and recovers when the mode is restored.
// It is about SQLite's file, so it runs on SQLite whatever the tests'
// engine (TestFailover is PostgreSQL's counterpart).
func TestReadyzReadOnly(t *testing.T) {
	vonage := newFakeVonage(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "securetextd.toml")
	if err := os.WriteFile(cfgPath, []byte(sqliteConfigText(vonage.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := os.Args[0]
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// The test binary may sit in a directory only root can enter.
		bin = filepath.Join(dir, "securetextd.test")
		if b, err := os.ReadFile(os.Args[0]); err != nil || os.WriteFile(bin, b, 0o755) != nil {
			t.Fatal("copy test binary: ", err)
		}
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		for p := dir; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
			os.Chmod(p, 0o755)
		}
		filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, 65534, 65534) })
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "SECURETEXTD_RUN_MAIN=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	portal := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log("daemon: " + sc.Text())
			if m := startedRE.FindStringSubmatch(sc.Text()); m != nil {
				portal <- m[2]
			}
		}
	}()
	var addr string
	select {
	case addr = <-portal:
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not start")
	}
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz before: %d\n%s", code, body)
	}
	dbFile := filepath.Join(dir, "data", "db.sqlite")
	if err := os.Chmod(dbFile, 0o400); err != nil {
		t.Fatal(err)
	}
	code, body := readyz()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "fail database writable") || !strings.Contains(body, "read-only") {
		t.Errorf("/readyz with a read-only database: %d\n%s", code, body)
	}
	if h := get(t, http.DefaultClient, "http://"+addr+"/healthz", http.StatusOK); strings.TrimSpace(h) != "ok" {
		t.Errorf("/healthz: %q", h)
	}
	os.Chmod(dbFile, 0o600)
	if code, body := readyz(); code != http.StatusOK {
		t.Errorf("/readyz after: %d\n%s", code, body)
	}
}
