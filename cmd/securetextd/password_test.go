package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The tests' securetextd-pwcheck, built once, when a test first sets a
// password: the test binary does not sit beside one.
var (
	pwcheckOnce sync.Once
	pwcheckDir  string
	pwcheckPath string
	pwcheckErr  error
)

func buildPWCheck() (string, error) {
	pwcheckOnce.Do(func() {
		if pwcheckDir, pwcheckErr = os.MkdirTemp("", "pwcheck"); pwcheckErr != nil {
			return
		}
		pwcheckPath = filepath.Join(pwcheckDir, pwcheckName)
		out, err := exec.Command("go", "build", "-o", pwcheckPath, "../securetextd-pwcheck").CombinedOutput()
		if err != nil {
			pwcheckErr = fmt.Errorf("building %s: %v\n%s", pwcheckName, err, out)
		}
	})
	return pwcheckPath, pwcheckErr
}

func removePWCheck() {
	if pwcheckDir != "" {
		os.RemoveAll(pwcheckDir)
	}
}

// TestUserPasswordStrength runs `user add` and `user passwd` with weak and
// strong passwords, judged by the real securetextd-pwcheck: a weak one is
// refused, saying why in words and suggesting a passphrase, and nothing is
// saved; a strong one is saved.
func TestUserPasswordStrength(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "securetextd.toml")
	cfgText := "[smtp]\ndemo_account = \"\"\n[brand]\norg = \"Riverside Clinic\"\n"
	if err := os.WriteFile(cfgPath, []byte(withTestEngine(t, cfgText)), 0o600); err != nil {
		t.Fatal(err)
	}
	user := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		err := run(append([]string{"user"}, append(args, "--config", cfgPath, "--password-stdin")...),
			strings.NewReader(stdin+"\n"), &out, &out)
		return out.String(), err
	}

	for _, tc := range []struct{ password, why string }{
		{"short pass", "at least 12 characters"},
		{"qwertyuiop12", "common password"},
		{"riversideclinic1", "address or the organization"},
	} {
		out, err := user(tc.password, "add", "dr.who@clinic.example")
		if err == nil {
			t.Fatalf("user add accepted %q: %s", tc.password, out)
		}
		if msg := err.Error(); !strings.Contains(msg, tc.why) || !strings.Contains(msg, "passphrase") || strings.Contains(msg, tc.password) {
			t.Errorf("refusal of %q: %s", tc.password, msg)
		}
	}
	if out, _ := user("", "list"); strings.Contains(out, "dr.who") {
		t.Fatalf("a refused account was saved: %s", out)
	}
	if out, err := user("correct horse battery staple", "add", "dr.who@clinic.example"); err != nil {
		t.Fatalf("user add with a passphrase: %v %s", err, out)
	}
	if _, err := user("Password2026", "passwd", "dr.who@clinic.example"); err == nil {
		t.Error("user passwd accepted Password2026")
	}
	if out, err := user("lantern orbit cactus ribbon", "passwd", "dr.who@clinic.example"); err != nil {
		t.Fatalf("user passwd with a passphrase: %v %s", err, out)
	}

	// Without its judge, no password is set, and the operator is told
	// what is missing and where it was looked for.
	saved := findPWCheck
	t.Cleanup(func() { findPWCheck = saved })
	findPWCheck = func() (string, error) {
		return "", fmt.Errorf("%s, which judges the strength of new passwords, is not installed beside /usr/local/bin/securetextd", pwcheckName)
	}
	if _, err := user("lantern orbit cactus ribbon", "add", "dr.no@clinic.example"); err == nil || !strings.Contains(err.Error(), "not installed beside") {
		t.Errorf("user add without securetextd-pwcheck: %v", err)
	}
	if out, _ := user("", "list"); strings.Contains(out, "dr.no") {
		t.Fatalf("an account was saved unjudged: %s", out)
	}
}

// TestFindPWCheck looks for securetextd-pwcheck beside the program and
// nowhere else, and says so when it is missing.
func TestFindPWCheck(t *testing.T) {
	saved := findPWCheck
	t.Cleanup(func() { findPWCheck = saved })
	// The test binary's directory holds no securetextd-pwcheck, and PATH
	// is not searched even when it holds one.
	bin, err := buildPWCheck()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	findPWCheck = defaultFindPWCheck
	if _, err := findPWCheck(); err == nil || !strings.Contains(err.Error(), "not installed beside") || !strings.Contains(err.Error(), "make build") {
		t.Errorf("missing securetextd-pwcheck: %v", err)
	}
}

// TestDaemonLeavesEstimatorOut keeps zxcvbn out of securetextd: its
// dictionaries would cost every gateway process 6.5 MiB of heap (about
// 12 MiB of peak memory under load, with the garbage collector's headroom)
// for passwords only the command line sets.
func TestDaemonLeavesEstimatorOut(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "zxcvbn") {
			t.Fatalf("securetextd links %s: the estimator belongs in securetextd-pwcheck only", pkg)
		}
	}
}
