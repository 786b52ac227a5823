package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMDuringStartup sends SIGTERM to the daemon at random moments
// of its start-up, 50 times: every run exits 0, and none hangs.
// Submission, relay, portal and ops listeners all run, so that every
// server's shutdown may race its Serve. (A signal that comes before serve
// has installed its handler, when nothing is open yet and nothing logged,
// ends the process by the default action: that is allowed too.)
func TestSIGTERMDuringStartup(t *testing.T) {
	vonage := newFakeVonage(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "securetextd.toml")
	text := testConfigText(t, vonage.URL) + `
[relay]
listen = "127.0.0.1:0"
sender_domains = ["clinic.example"]
[ops]
listen = "127.0.0.1:0"
`
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	// One full start first: it creates the key and the database, and
	// tells how long start-up takes here from serve's first log line (its
	// signal handler is installed by then) to "securetextd started".
	c := startChild(t, cfgPath)
	<-c.first
	firstAt := time.Now()
	<-c.started
	startup := time.Since(firstAt)
	if err := c.term(); err != nil {
		t.Fatalf("after a full start: %v", err)
	}
	t.Logf("start-up after the first log line: %v", startup)

	for i := range 50 {
		// Two runs in three aim after serve's first log line, across the
		// rest of start-up and a little past it; one in three at any
		// moment from the exec on.
		c := startChild(t, cfgPath)
		from := "the exec"
		var at time.Duration
		if i%3 == 0 {
			at = rand.N(20*time.Millisecond + 2*startup)
		} else {
			<-c.first
			from = "the first log line"
			at = rand.N(startup*5/4 + 1)
		}
		time.Sleep(at) // a random moment of start-up
		if err := c.term(); err != nil {
			t.Fatalf("run %d, SIGTERM %v after %s: %v", i, at, from, err)
		}
	}
}

// TestCloseRightAfterRun closes the gateway the moment Run returns, as a
// SIGTERM during start-up does, 50 times: its servers' goroutines have
// barely started, and Close must still end every Serve (it closes the
// listeners itself) within the grace period.
func TestCloseRightAfterRun(t *testing.T) {
	vonage := newFakeVonage(t)
	cfg, err := ParseConfig([]byte(testConfigText(t, vonage.URL)+`
[relay]
listen = "127.0.0.1:0"
sender_domains = ["clinic.example"]
[ops]
listen = "127.0.0.1:0"
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		m := &Main{Config: cfg, Logger: slog.New(slog.DiscardHandler)}
		if err := m.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		closed := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			closed <- m.Close(ctx)
		}()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("run %d: close: %v", i, err)
			}
		case <-time.After(30 * time.Second): // a hang detector
			t.Fatalf("run %d: Close did not return", i)
		}
	}
}

// child is one run of the daemon as a child process.
type child struct {
	cmd     *exec.Cmd
	first   chan struct{} // closed at its first line of output
	started chan struct{} // closed at "securetextd started"
	exited  chan error
	mu      sync.Mutex
	out     strings.Builder
}

func startChild(t *testing.T, cfgPath string) *child {
	t.Helper()
	c := &child{first: make(chan struct{}), started: make(chan struct{}), exited: make(chan error, 1)}
	c.cmd = exec.Command(os.Args[0], "serve", "--config", cfgPath)
	// Under -race a child reports races at exit (status 66) but need not
	// wait its default second for late reports: 50 of them add up.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	c.cmd.Env = append(os.Environ(), "SECURETEXTD_RUN_MAIN=1", "GORACE="+gorace)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout, c.cmd.Stderr = pw, pw
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(pr)
		for n := 0; sc.Scan(); n++ {
			c.mu.Lock()
			c.out.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			if n == 0 {
				close(c.first)
			}
			if startedRE.MatchString(sc.Text()) {
				close(c.started)
			}
		}
	}()
	go func() {
		err := c.cmd.Wait()
		<-read
		pr.Close()
		c.exited <- err
	}()
	t.Cleanup(func() { c.cmd.Process.Kill() })
	return c
}

func (c *child) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// term sends SIGTERM and waits for the exit: nil for status 0, or for the
// default action of the signal before anything was logged.
func (c *child) term() error {
	// The hang detector: the grace period (30 s, main.go) and a margin.
	const hang = 45 * time.Second
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.exited:
		var ee *exec.ExitError
		if err == nil {
			return nil
		}
		if errors.As(err, &ee) {
			ws, ok := ee.Sys().(syscall.WaitStatus)
			if ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM && c.output() == "" {
				return nil // before the handler: nothing was open
			}
		}
		return fmt.Errorf("%v\n%s", err, c.output())
	case <-time.After(hang):
		c.cmd.Process.Signal(syscall.SIGQUIT) // the goroutines' stacks, for the log
		<-c.exited
		return fmt.Errorf("no exit within %v\n%s", hang, c.output())
	}
}
