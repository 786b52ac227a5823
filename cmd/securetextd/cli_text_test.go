package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// runBinary runs this test binary as securetextd itself (TestMain runs
// main() under SECURETEXTD_RUN_MAIN=1): the real command line, its
// output and its exit code.
func runBinary(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runBinaryIn(t, t.TempDir(), args...)
}

// runBinaryIn is runBinary in the working directory dir.
func runBinaryIn(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SECURETEXTD_RUN_MAIN=1")
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%q: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// TestUsageErrorText: a command line that cannot be understood prints the
// error and one line naming the manual to read, not the whole usage, which
// would bury the error; it exits 2.
func TestUsageErrorText(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{nil, "securetextd: no command given\n" +
			"run 'securetextd help' for the list of commands\n"},
		{[]string{"frobnicate"}, "securetextd: unknown command \"frobnicate\"\n" +
			"run 'securetextd help' for the list of commands\n"},
		{[]string{"help", "frobnicate"}, "securetextd: no manual for \"frobnicate\"\n" +
			"run 'securetextd help' for the list of commands\n"},
		{[]string{"user"}, "securetextd: user needs a command: add, list, remove or passwd\n" +
			"run 'securetextd help user' for usage\n"},
		{[]string{"user", "add", "a@b.example", "--no-such-flag"}, "securetextd: flag provided but not defined: -no-such-flag\n" +
			"run 'securetextd help user' for usage\n"},
		{[]string{"keygen"}, "securetextd: keygen needs --out FILE and nothing else\n" +
			"run 'securetextd help keygen' for usage\n"},
		{[]string{"apikey", "create"}, "securetextd: apikey create needs --sender ADDRESS and nothing else\n" +
			"run 'securetextd help apikey' for usage\n"},
		{[]string{"store", "move"}, "securetextd: store needs a command: copy\n" +
			"run 'securetextd help store' for usage\n"},
		{[]string{"mail", "show"}, "securetextd: mail show needs one FILE, as mail list names it\n" +
			"run 'securetextd help mail' for usage\n"},
		{[]string{"audit"}, "securetextd: audit needs a command: verify or export\n" +
			"run 'securetextd help audit' for usage\n"},
	} {
		stdout, stderr, code := runBinary(t, tc.args...)
		if code != 2 || stdout != "" || stderr != tc.stderr {
			t.Errorf("securetextd %s: exit %d, stdout %q, stderr:\n%s\nwant exit 2 and stderr:\n%s", strings.Join(tc.args, " "), code, stdout, stderr, tc.stderr)
		}
	}
}

// TestHelpPrintsWholeUsage: asking for help still prints it all, on
// standard output, and exits 0.
func TestHelpPrintsWholeUsage(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		stdout, stderr, code := runBinary(t, args...)
		if code != 0 || stdout != usage || stderr != "" {
			t.Errorf("securetextd %s: exit %d, stderr %q, stdout:\n%s", args[0], code, stderr, stdout)
		}
	}
	for _, args := range [][]string{{"help", "user"}, {"user", "-h"}, {"user", "add", "--help"}} {
		stdout, stderr, code := runBinary(t, args...)
		if code != 0 || stdout != manuals["user"] || stderr != "" {
			t.Errorf("securetextd %s: exit %d, stderr %q, stdout:\n%s", strings.Join(args, " "), code, stderr, stdout)
		}
	}
}
