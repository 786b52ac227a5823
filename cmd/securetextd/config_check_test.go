package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestConfigErrorAsInREADME writes the README's example of a bad
// configuration to a file, runs the command the README shows on it as a
// separate process (the real main), and compares everything it prints
// with the README, whole: five problems (an unknown key, a value error,
// two type errors and a bare number for a duration), one a line, in the
// file's order, and exit status 1.
func TestConfigErrorAsInREADME(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```toml\n([^`]*)```\n\nis refused with:\n\n```console\n\\$ securetextd ([^\n]*)\n([^`]*)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("the README shows no bad configuration followed by what `securetextd serve` prints for it")
	}
	file, command, want := m[1], strings.Fields(string(m[2])), string(m[3])
	if !slices.Equal(command, []string{"serve", "--config", "securetextd.toml"}) {
		t.Fatalf("the README runs securetextd %q, want serve --config securetextd.toml", command)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "securetextd.toml"), file, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], command...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SECURETEXTD_RUN_MAIN=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("securetextd serve: %v, want exit status 1", err)
	}
	if got := out.String(); got != want {
		t.Errorf("securetextd serve printed:\n%s\nthe README says:\n%s", got, want)
	}
}

// problemsOf parses a configuration that must be refused and returns its
// problems.
func problemsOf(t *testing.T, text string) []string {
	t.Helper()
	_, err := ParseConfig([]byte(text), t.TempDir())
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("ParseConfig(%q) = %v, want a *ConfigError", text, err)
	}
	return ce.Problems
}

// TestConfigTypeErrorsWithTheRest: every value of the wrong type is
// reported, with the value errors, each saying what was given and what is
// wanted; a secret's value is not repeated.
func TestConfigTypeErrorsWithTheRest(t *testing.T) {
	got := problemsOf(t, `
[smtp]
domain = 42
max_message_bytes = 1.5
allow_insecure_auth = "yes"
max_connections = "1000"
[relay]
trusted_networks = "10.0.0.0/8"
sender_domains = ["clinic.example", 7]
[sms]
rate = "fast"
org = ""
[sms.vonage]
api_secret = 12345678
[mail]
require_tls = "true"
[portal]
lockout_failures = 0
[log]
level = true
[brand]
color = ["#ffffff"]
`)
	want := []string{
		`smtp.domain: a string in quotes, like "secure.text", not the number 42`,
		`smtp.max_message_bytes: a whole number of bytes, like 104857600, not the number 1.5`,
		`smtp.allow_insecure_auth: true or false, not the string "yes"`,
		`smtp.max_connections: a whole number, like 1000, not the string "1000" (leave out the quotes)`,
		`relay.trusted_networks: a list of CIDRs, like ["127.0.0.1/32"], not the string "10.0.0.0/8"`,
		`relay.sender_domains: a list of domains, like ["clinic.example"], not a list holding the number 7`,
		`sms.rate: a number, like 1, not the string "fast"`,
		`sms.org: must be 1 to 40 characters: it starts every text`,
		`sms.vonage.api_secret: a string in quotes, not a number`,
		`mail.require_tls: true or false, not the string "true" (leave out the quotes)`,
		`portal.lockout_failures: 0 is out of range (1 to 100)`,
		`log.level: a string in quotes, like "info", not the boolean true`,
		`brand.color: a string in quotes, like "#1d4e89", not a list`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	if got := problemsOf(t, "[api]\nrate = nan\n"); !slices.Equal(got, []string{"api.rate: a number, like 5, not the number NaN"}) {
		t.Errorf("rate = nan: %q", got)
	}

	// A table given as a value, and a value given as a table.
	got = problemsOf(t, "smtp = 5\n[sms.org]\nname = \"x\"\n")
	want = []string{
		`smtp: a table, [smtp], not the number 5`,
		`sms.org: a string in quotes, like "securetextd", not a table`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestConfigDurations: a duration is a string with a unit, d meaning 24
// hours; a bare number is refused, saying what to write.
func TestConfigDurations(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  time.Duration
	}{
		{`"30d"`, 30 * 24 * time.Hour},
		{`"1d12h"`, 36 * time.Hour},
		{`"1.5d"`, 36 * time.Hour},
		{`"2d30m"`, 48*time.Hour + 30*time.Minute},
		{`"720h"`, 720 * time.Hour},
		{`"0s"`, 0},
		{`"0d"`, 0},
	} {
		cfg, err := ParseConfig([]byte("[portal]\naccess_expiry = \"1h\"\n[store]\nretention = "+tc.value+"\n"), ".")
		if err != nil {
			t.Errorf("retention = %s: %v", tc.value, err)
		} else if cfg.Store.Retention != tc.want {
			t.Errorf("retention = %s: %v, want %v", tc.value, cfg.Store.Retention, tc.want)
		}
	}

	unit := `a duration in quotes, with its unit, like "15s" or "15m", not the bare number 15`
	notDuration := `is not a duration: write a number and a unit, like "90s", "15m", "12h", "30d" or "1d12h"`
	for _, tc := range []struct{ text, want string }{
		{"[smtp]\nidle_timeout = 15\n", "smtp.idle_timeout: " + unit},
		{"[portal]\nidle_timeout = 15\n", "portal.idle_timeout: " + unit},
		{"[portal]\nlockout_window = 2.5\n", `portal.lockout_window: a duration in quotes, with its unit, like "2.5s" or "2.5m", not the bare number 2.5`},
		{"[store]\nretention = \"30 days\"\n", `store.retention: "30 days" ` + notDuration},
		{"[store]\nretention = \"1d-5h\"\n", `store.retention: "1d-5h" ` + notDuration},
		{"[store]\nretention = \"d\"\n", `store.retention: "d" ` + notDuration},
		{"[store]\nretention = \"200000d\"\n", `store.retention: "200000d" ` + notDuration},
		{"[store]\nretention = false\n", `store.retention: a duration in quotes, like "30d", not the boolean false`},
		{"[portal]\nsession_lifetime = []\n", `portal.session_lifetime: a duration in quotes, like "12h", not a list`},
	} {
		if got := problemsOf(t, tc.text); !slices.Equal(got, []string{tc.want}) {
			t.Errorf("%q:\n got %q\nwant %q", tc.text, got, tc.want)
		}
	}
}

// TestConfigUnknownKeySuggests: an unknown key is refused, naming the
// nearest known key of its table, or the same key in another table;
// nothing is suggested when nothing is close.
func TestConfigUnknownKeySuggests(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[smtp]\ndomian = \"clinic.example\"\n", "smtp.domian: unknown key (did you mean smtp.domain?)"},
		{"[smtp]\nidle_timout = \"1m\"\n", "smtp.idle_timout: unknown key (did you mean smtp.idle_timeout?)"},
		{"[sms]\nallowed_country = [\"US\"]\n", "sms.allowed_country: unknown key (did you mean sms.allowed_countries?)"},
		{"[smtp]\nDomian = \"clinic.example\"\n", "smtp.Domian: unknown key (did you mean smtp.domain?)"},
		{"[smtp]\nxyzzy = 1\n", "smtp.xyzzy: unknown key"},
		{"[smtp]\nretention = \"30d\"\n", "smtp.retention: unknown key (did you mean store.retention?)"},
		{"domain = \"clinic.example\"\n", "domain: unknown key (did you mean smtp.domain?)"},
		{"[sms]\nfrom = \"Clinic\"\n", "sms.from: unknown key (did you mean sms.vonage.from or mail.from?)"},
		{"[portal]\nlisten = \"127.0.0.1:8080\"\nlistn = \"x\"\n", "portal.listn: unknown key (did you mean portal.listen?)"},
		{"[smpt]\ndomain = \"clinic.example\"\n", "smpt: unknown table (did you mean smtp?)"},
		{"[vonage]\nfrom = \"Clinic\"\n", "vonage: unknown table (did you mean sms.vonage?)"},
		{"[nothing]\nat_all = 1\n", "nothing: unknown table"},
	} {
		if got := problemsOf(t, tc.text); !slices.Equal(got, []string{tc.want}) {
			t.Errorf("%q:\n got %q\nwant %q", tc.text, got, tc.want)
		}
	}
}

// TestConfigSyntaxError: a file that is not TOML is refused at its first
// error, with the line.
func TestConfigSyntaxError(t *testing.T) {
	_, err := ParseConfig([]byte("[smtp]\ndomain = \"secure.text\"\nmax_message_bytes = \n"), ".")
	if err == nil || !strings.HasPrefix(err.Error(), "config: smtp.max_message_bytes: line 3: ") {
		t.Errorf("err = %v, want it to name the key and line 3", err)
	}
}

func TestParseDuration(t *testing.T) {
	for _, s := range []string{"1h", "90m", "1h30m", "1.5h", "-5m", "300ms", "0"} {
		want, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := parseDuration(s); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v as time.ParseDuration", s, got, err, want)
		}
	}
	for s, want := range map[string]time.Duration{"1d": 24 * time.Hour, "-1d2h": -26 * time.Hour, "+2d": 48 * time.Hour, "0.5d": 12 * time.Hour} {
		if got, err := parseDuration(s); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "d", "1d1d", "1h1d", "1d-1h", "1d+1h", ".d", "1e3d", "106752d", "106751d24h", "1 d"} {
		if d, err := parseDuration(s); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", s, d)
		}
	}
}
