package need

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	t.Setenv(HideEnv, "")
	if p, err := Lookup("sh", "dash"); err != nil || !filepath.IsAbs(p) {
		t.Errorf("Lookup(sh) = %q, %v", p, err)
	}
	dir := t.TempDir()
	for _, v := range []string{"9", "15", "13"} {
		bin := filepath.Join(dir, v, "bin")
		os.MkdirAll(bin, 0o755)
		os.WriteFile(filepath.Join(bin, "initdb"), []byte("#!/bin/sh\n"), 0o755)
	}
	if p, err := Lookup(filepath.Join(dir, "*", "bin", "initdb"), "postgresql"); err != nil || p != filepath.Join(dir, "15", "bin", "initdb") {
		t.Errorf("Lookup(glob) = %q, %v; want the newest version, 15", p, err)
	}
	for _, c := range []struct{ program, pkg string }{
		{"securetextd-no-such-program", "no-such-package"},
		{filepath.Join(dir, "missing", "initdb"), "postgresql"},
		{filepath.Join(dir, "*", "bin", "postgres"), "postgresql"},
	} {
		_, err := Lookup(c.program, c.pkg)
		if err == nil || !strings.Contains(err.Error(), c.program+" is missing") || !strings.Contains(err.Error(), "Debian package "+c.pkg) {
			t.Errorf("Lookup(%s) = %v; want an error naming the program and the package", c.program, err)
		}
	}
	t.Setenv(HideEnv, "chromium, dash")
	if _, err := Lookup("sh", "dash"); err == nil || !strings.Contains(err.Error(), HideEnv) {
		t.Errorf("Lookup(sh) with dash hidden = %v", err)
	}
}

// TestMissingProgram runs helperMissing in a child test process: under
// -short a missing program skips the test, saying what to install;
// without -short it fails it, with the same words.
func TestMissingProgram(t *testing.T) {
	for _, short := range []bool{true, false} {
		args := []string{"-test.run=^TestHelperMissing$", "-test.v"}
		if short {
			args = append(args, "-test.short")
		}
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "NEED_HELPER=1")
		out, err := cmd.CombinedOutput()
		text := string(out)
		if !strings.Contains(text, "securetextd-no-such-program is missing: install the Debian package no-such-package") {
			t.Errorf("short=%v: the output does not name what is missing:\n%s", short, text)
		}
		if strings.Contains(text, "reached") {
			t.Errorf("short=%v: the test went on without the program:\n%s", short, text)
		}
		switch {
		case short && (err != nil || !strings.Contains(text, "--- SKIP: TestHelperMissing")):
			t.Errorf("-short: want a skip, got %v:\n%s", err, text)
		case !short && (err == nil || !strings.Contains(text, "--- FAIL: TestHelperMissing")):
			t.Errorf("without -short: want a failure, got %v:\n%s", err, text)
		}
	}
}

func TestHelperMissing(t *testing.T) {
	if os.Getenv("NEED_HELPER") != "1" {
		t.Skip("run by TestMissingProgram")
	}
	Program(t, "securetextd-no-such-program", "no-such-package")
	t.Log("reached")
}
