package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServeRaisesFileLimit starts the daemon with a soft open-file limit
// of 256 and sees it raised to the hard limit, and logged once.
func TestServeRaisesFileLimit(t *testing.T) {
	vonage := newFakeVonage(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "securetextd.toml")
	if err := os.WriteFile(cfgPath, []byte(testConfigText(t, vonage.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The shell lowers the soft limit and execs the daemon in its place.
	cmd := exec.Command("/bin/sh", "-c", `ulimit -Sn 256 && exec "$0" serve --config "$1"`, os.Args[0], cfgPath)
	cmd.Env = append(os.Environ(), "SECURETEXTD_RUN_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	started := make(chan []string, 1)
	go func() {
		var limitLines []string
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log("daemon: " + sc.Text())
			if strings.Contains(sc.Text(), "open-file limit") {
				limitLines = append(limitLines, sc.Text())
			}
			if startedRE.MatchString(sc.Text()) {
				started <- limitLines
			}
		}
	}()
	var logged []string
	select {
	case logged = <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not start")
	}

	limits, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/limits")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Max open files\s+(\d+)\s+(\d+)`).FindStringSubmatch(string(limits))
	if m == nil {
		t.Fatalf("no open-file limit in /proc/PID/limits:\n%s", limits)
	}
	if m[1] != m[2] {
		t.Errorf("soft open-file limit %s, hard %s: not raised to the hard limit", m[1], m[2])
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "nofile="+m[2]) {
		t.Errorf("want one log line with nofile=%s, got %q", m[2], logged)
	}
}
