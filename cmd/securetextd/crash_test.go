package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/securetextd/securetextd/internal/clamdtest"
	"github.com/securetextd/securetextd/internal/pgtest"
)

// TestMain lets a test start this very binary as the daemon: with
// SECURETEXTD_RUN_MAIN=1 it runs main() instead of the tests. That is the
// real command line, flags, signals and all, in a process a test can kill.
func TestMain(m *testing.M) {
	if os.Getenv("SECURETEXTD_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	findPWCheck = buildPWCheck // password_test.go
	code := m.Run()
	removePWCheck()
	removeDaemonBinary() // scan_memory_test.go
	pgtest.StopShared()
	clamdtest.StopShared()
	os.Exit(code)
}

// daemon is the gateway running as a child process.
type daemon struct {
	cmd        *exec.Cmd
	submission string
	portal     string
}

var startedRE = regexp.MustCompile(`securetextd started.*submission=(\S+) portal=(\S+)`)

func startDaemon(t testing.TB, cfgPath string) *daemon {
	t.Helper()
	return startDaemonBinary(t, os.Args[0], cfgPath)
}

// startDaemonBinary is startDaemon with another binary: bin is this test
// binary (which runs main when SECURETEXTD_RUN_MAIN=1) or a securetextd
// built on its own, as the memory tests use one built without -race.
func startDaemonBinary(t testing.TB, bin, cfgPath string) *daemon {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "SECURETEXTD_RUN_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd}
	t.Cleanup(func() { d.cmd.Process.Kill(); d.cmd.Wait() })
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			t.Log("daemon: " + line)
			if m := startedRE.FindStringSubmatch(line); m != nil {
				found <- m
			}
		}
	}()
	select {
	case m := <-found:
		d.submission, d.portal = m[1], m[2]
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not start")
	}
	return d
}

// TestKillAfterAcceptBeforeText kills the daemon with SIGKILL after it
// answered 250 but before the text went out, restarts it, and sees the
// text sent, once.
func TestKillAfterAcceptBeforeText(t *testing.T) {
	vonage := newFakeVonage(t)
	vonage.setHang(true) // the first attempt never gets an answer
	dir := t.TempDir()
	cfg := testConfig(t, dir, vonage.URL)
	cfgPath := filepath.Join(dir, "securetextd.toml")
	if err := os.WriteFile(cfgPath, []byte(testConfigText(t, vonage.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"user", "add", "dr.who@clinic.example", "--config", cfgPath, "--password-stdin"},
		strings.NewReader("correct horse battery\n"), os.Stdout, os.Stderr); err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t, cfgPath)
	msg := "From: dr.who@clinic.example\r\nSubject: Results\r\n\r\nAll normal.\r\n"
	if err := send(t, d.submission, tlsConfigFor(t, cfg), sasl.NewPlainClient("", "dr.who@clinic.example", "correct horse battery"),
		"dr.who@clinic.example", []string{"2125550123@secure.text"}, msg); err != nil {
		t.Fatalf("send: %v", err)
	}
	// 250 received. Wait for the worker to be mid-request, then kill.
	deadline := time.Now().Add(10 * time.Second)
	for vonage.attemptCount() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if vonage.attemptCount() == 0 {
		t.Fatal("the worker never tried to send")
	}
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.cmd.Wait()
	if n := len(vonage.sent()); n != 0 {
		t.Fatalf("%d texts sent before the kill", n)
	}

	vonage.setHang(false)
	startDaemon(t, cfgPath)
	vonage.waitTexts(t, 1, 20*time.Second)
	time.Sleep(200 * time.Millisecond)
	texts := vonage.sent()
	if len(texts) != 1 || texts[0].To != "12125550123" || !linkRE.MatchString(texts[0].Text) {
		t.Fatalf("after restart: %+v", texts)
	}
}

// TestSignalShutdown checks that SIGTERM stops the daemon cleanly (exit 0).
func TestSignalShutdown(t *testing.T) {
	vonage := newFakeVonage(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "securetextd.toml")
	text := withTestEngine(t, fmt.Sprintf("[smtp]\nsubmission_listen = \"127.0.0.1:0\"\n[portal]\nlisten = \"127.0.0.1:0\"\n[sms]\nprovider = \"vonage\"\n[sms.vonage]\napi_key = \"abcd1234\"\napi_secret = \"x\"\nfrom = \"X\"\nbase_url = %q\n", vonage.URL))
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfgPath)
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}
