// Package need lets a test ask for a program that the machine must have:
// Chromium, Postfix, nginx, curl, PostgreSQL… scripts/test-deps.sh
// installs them all for make test. A missing program fails the test,
// naming the Debian package to install, so that nothing is skipped
// silently in make test or CI; under go test -short the test is skipped
// instead, with the same message, so that a quick run works on a machine
// that has none of them.
//
// SECURETEXTD_TEST_HIDE lists programs or packages (by either name,
// separated by commas) to treat as missing although they are installed:
// it shows what a machine without them does, without uninstalling
// anything.
package need

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// HideEnv names the environment variable of programs to treat as missing.
const HideEnv = "SECURETEXTD_TEST_HIDE"

// Lookup finds program, from the Debian package pkg: a name looked up in
// PATH, or an absolute path, which may be a glob (the newest match wins,
// as in /usr/lib/postgresql/*/bin/initdb). It returns the program's path,
// or an error that says what is missing and which package brings it.
func Lookup(program, pkg string) (string, error) {
	missing := fmt.Errorf("%s is missing: install the Debian package %s (make test installs it)", program, pkg)
	if hidden(program, pkg) {
		return "", fmt.Errorf("%w (hidden by %s)", missing, HideEnv)
	}
	if !strings.Contains(program, "/") {
		p, err := exec.LookPath(program)
		if err != nil {
			return "", missing
		}
		return p, nil
	}
	matches, _ := filepath.Glob(program)
	slices.SortFunc(matches, compareVersions)
	for i := len(matches) - 1; i >= 0; i-- {
		if fi, err := os.Stat(matches[i]); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return matches[i], nil
		}
	}
	return "", missing
}

// Program returns the path of program (see Lookup). When it is missing, t
// fails, or under go test -short is skipped, saying what to install.
func Program(t testing.TB, program, pkg string) string {
	t.Helper()
	p, err := Lookup(program, pkg)
	if err != nil {
		Missing(t, err)
	}
	return p
}

// Root fails t, or skips it under go test -short, unless the test runs as
// root; why says what the test does that needs it ("to mount a tmpfs").
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, errors.New("root is needed "+why+": run the tests as root (make test in the development container)"))
	}
}

// Missing fails t with err, a missing requirement, or skips t under go
// test -short.
func Missing(t testing.TB, err error) {
	t.Helper()
	if testing.Short() {
		t.Skip(err)
	}
	t.Fatal(err)
}

// hidden reports whether program or pkg is listed in HideEnv.
func hidden(program, pkg string) bool {
	for _, h := range strings.Split(os.Getenv(HideEnv), ",") {
		h = strings.TrimSpace(h)
		if h != "" && (h == pkg || h == program || h == filepath.Base(program)) {
			return true
		}
	}
	return false
}

// compareVersions orders paths so that a number in them compares as a
// number: /usr/lib/postgresql/9/… before /usr/lib/postgresql/15/….
func compareVersions(a, b string) int {
	for a != "" && b != "" {
		na, ra := leadingNumber(a)
		nb, rb := leadingNumber(b)
		switch {
		case na >= 0 && nb >= 0:
			if na != nb {
				return na - nb
			}
			a, b = ra, rb
		case a[0] != b[0]:
			return int(a[0]) - int(b[0])
		default:
			a, b = a[1:], b[1:]
		}
	}
	return len(a) - len(b)
}

// leadingNumber returns the decimal number s starts with and the rest of
// s, or -1 when s does not start with a digit.
func leadingNumber(s string) (int, string) {
	n, i := 0, 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9' && i < 9; i++ {
		n = n*10 + int(s[i]-'0')
	}
	if i == 0 {
		return -1, s
	}
	return n, s[i:]
}
