package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/securetextd/securetextd"
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
		{[]string{"user"}, "securetextd: user needs a command: add, list, remove, passwd, admin or totp\n" +
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

// TestCLIMessagesStartLowercase: what the commands print starts in
// lowercase, as their errors do (Go's convention): one style throughout.
// Each output is compared whole; random parts (keys, tokens, hashes) are
// matched by pattern.
func TestCLIMessagesStartLowercase(t *testing.T) {
	cfgPath, cfg := writeTestConfig(t, "http://127.0.0.1:9", "")
	dir := filepath.Dir(cfgPath)
	run1 := func(stdin string, args ...string) string {
		t.Helper()
		return runCLI(t, stdin, append(args, "--config", cfgPath)...)
	}
	for _, tc := range []struct {
		name string
		out  func() string
		want string // a regular expression for the whole output
	}{
		{"keygen", func() string { return runCLI(t, "", "keygen", "--out", filepath.Join(dir, "new.key")) },
			`created ` + regexp.QuoteMeta(filepath.Join(dir, "new.key")) + ` \(public key age1\S+\)\n`},
		{"user add", func() string {
			return run1("correct horse battery staple\n", "user", "add", "dr.who@clinic.example", "--password-stdin")
		}, `saved dr\.who@clinic\.example\n`},
		{"apikey create", func() string { return run1("", "apikey", "create", "--sender", "dr.who@clinic.example") },
			`created API key 1 for dr\.who@clinic\.example; it is shown only this once:\n\n    stx_\S{43}\n\n` +
				`send it as "Authorization: Bearer stx_\S{8}…"; revoke it with: securetextd apikey revoke 1\n`},
		{"apikey revoke", func() string { return run1("", "apikey", "revoke", "1") },
			`revoked API key 1: the next request with it is refused\n`},
		{"apikey revoke --sender", func() string { return run1("", "apikey", "revoke", "--sender", "dr.who@clinic.example") },
			`revoked 0 key\(s\) of dr\.who@clinic\.example\n`},
		{"report", func() string { return run1("", "report") }, `no messages\.\n`},
		{"mail list", func() string { return run1("", "mail", "list") },
			`no mail in ` + regexp.QuoteMeta(cfg.Path(cfg.Mail.Dir)) + `\.\n`},
		{"purge", func() string { return run1("", "purge") },
			"conversations expired: 0\nmessages purged: 0\nfinished jobs deleted: 0\nsealed emails deleted from mail.dir: 0\n"},
		{"audit verify", func() string { return run1("", "audit", "verify") },
			`the audit trail verifies: \d+ rows\.\nhead: \d+:[0-9a-f]{64} \(record it to check later runs with --anchor\)\n`},
		{"user remove", func() string { return run1("", "user", "remove", "dr.who@clinic.example") },
			`removed dr\.who@clinic\.example\n`},
	} {
		if got := tc.out(); !regexp.MustCompile(`\A` + tc.want + `\z`).MatchString(got) {
			t.Errorf("%s printed:\n%s\nwant (a pattern):\n%s", tc.name, got, tc.want)
		}
	}

	// A domain error, as the command line shows it.
	run1("correct horse battery staple\n", "user", "add", "dr.who@clinic.example", "--password-stdin")
	err := run([]string{"user", "add", "dr.who@clinic.example", "--password-stdin", "--config", cfgPath}, strings.NewReader("correct horse battery staple\n"), io.Discard, io.Discard)
	if want := "the sender dr.who@clinic.example exists already."; err == nil || err.Error() != want {
		t.Errorf("user add twice: %v, want %q", err, want)
	}
}

// TestFirstStartTextLowercase: what serve prints at the first start of the
// embedded default, whole.
func TestFirstStartTextLowercase(t *testing.T) {
	example := strings.NewReplacer(
		`submission_listen = "127.0.0.1:2587"`, `submission_listen = "127.0.0.1:0"`,
		`listen = "127.0.0.1:8080"`, `listen = "127.0.0.1:0"`,
	).Replace(string(securetextd.ExampleConfig))
	cfgPath, cfg := writeConfigText(t, withTestEngine(t, example))
	var out bytes.Buffer
	m := &Main{Config: cfg, Logger: testLogger(t), Stdout: &out}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer m.Close(t.Context())
	password := regexp.MustCompile(`(?m)^    (\S+)$`).FindStringSubmatch(out.String())
	if password == nil {
		t.Fatalf("no password in:\n%s", out.String())
	}
	want := "\nsecuretextd is running.\n" +
		"  SMTP submission (STARTTLS + AUTH): " + m.SubmissionAddr + "\n" +
		"  recipient portal:                   " + cfg.Portal.PublicURL + "\n" +
		"\ncreated the demo sender account demo@example.org with the password:\n\n    " + password[1] + "\n\n" +
		"it is shown only this once; send a first message with:\n\n" +
		"    curl -sS --url smtp://" + m.SubmissionAddr + " --ssl-reqd --insecure --crlf --user 'demo@example.org:" + password[1] + "' \\\n" +
		"      --mail-from demo@example.org --mail-rcpt 2125550123@secure.text --upload-file examples/first-message.eml\n\n" +
		"texts are not sent: each appears below, as a JSON line, with its link.\n\n" +
		"mail to senders is not sent: it is kept sealed in " + filepath.Join(filepath.Dir(cfgPath), "data/mail-out") + " (securetextd mail list shows it).\n\n"
	if out.String() != want {
		t.Errorf("first start printed:\n%s\nwant:\n%s", out.String(), want)
	}
}
