package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigPartial(t *testing.T) {
	cfg, err := ParseConfig([]byte("[sms]\norg = \"North Clinic\"\n"), "/etc/securetextd")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SMS.Org != "North Clinic" || cfg.SMTP.Domain != "secure.text" || cfg.SMTP.MaxMessageBytes != 100<<20 || cfg.SMS.Rate != 1 {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if got := cfg.Path(cfg.Store.Path); got != "/etc/securetextd/data/securetextd.db" {
		t.Errorf("relative path resolved to %q", got)
	}
}

// TestConfigErrors checks that every problem is reported at once, each
// naming its key.
func TestConfigErrors(t *testing.T) {
	_, err := ParseConfig([]byte(`
[smtp]
domain = "not a domain"
submission_listen = "0.0.0.0:587"
allow_insecure_auth = true
default_region = "XX"
bogus = 1
[sms]
provider = "carrier-pigeon"
rate = 0
template = "{org} {lnk}"
allowed_countries = ["US", "ZZ"]
[portal]
public_url = "ftp://x"
`), ".")
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *ConfigError", err)
	}
	want := []string{
		"smtp.bogus: unknown key",
		"smtp.domain:",
		"smtp.allow_insecure_auth: only allowed when smtp.submission_listen is a loopback address",
		"smtp.default_region:",
		"sms.provider:",
		"sms.rate:",
		"sms.template:",
		`sms.allowed_countries: "ZZ"`,
		"portal.public_url:",
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not mention %q:\n%s", w, msg)
		}
	}
}

func TestConfigVonageKeys(t *testing.T) {
	_, err := ParseConfig([]byte("[sms]\nprovider = \"vonage\"\n[sms.vonage]\napi_key = \"short\"\n"), ".")
	for _, w := range []string{"sms.vonage.api_key", "sms.vonage.api_secret", "sms.vonage.from"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not name %s", err, w)
		}
	}
}

func TestConfigTypeError(t *testing.T) {
	_, err := ParseConfig([]byte("[sms]\nrate = \"fast\"\n"), ".")
	if err == nil || !strings.Contains(err.Error(), "rate") {
		t.Errorf("err = %v, want it to name the key", err)
	}
}

// TestCommandLine runs the command line as an operator would, in-process.
func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "securetextd.toml")
	if err := os.WriteFile(cfgPath, []byte(withTestEngine(t, "[smtp]\ndemo_account = \"\"\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	runOK := func(stdin string, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(args, strings.NewReader(stdin), &out, &errb); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out.String()
	}
	// Flags before and after the address.
	runOK("a long enough password\n", "user", "add", "--config", cfgPath, "--password-stdin", "Alice@Clinic.example")
	runOK("another long password\n", "user", "add", "bob@clinic.example", "--password-stdin", "--config", cfgPath)
	if out := runOK("", "user", "list", "--config", cfgPath); !strings.Contains(out, "alice@clinic.example") || !strings.Contains(out, "bob@clinic.example") {
		t.Errorf("list: %q", out)
	}
	runOK("a brand new password\n", "user", "passwd", "alice@clinic.example", "--config", cfgPath, "--password-stdin")
	runOK("", "user", "remove", "bob@clinic.example", "--config", cfgPath)
	if out := runOK("", "user", "list", "--config", cfgPath); strings.Contains(out, "bob@") {
		t.Errorf("bob still listed: %q", out)
	}
	if err := run([]string{"user", "add", "alice@clinic.example", "--config", cfgPath, "--password-stdin"}, strings.NewReader("yet another password\n"), &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("adding an existing account succeeded")
	}
	if err := run([]string{"user", "add", "carol@clinic.example", "--config", cfgPath, "--password-stdin"}, strings.NewReader("short\n"), &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("a 5-character password was accepted")
	}

	keyPath := filepath.Join(dir, "new.key")
	if out := runOK("", "keygen", "--out", keyPath); !strings.Contains(out, "age1pq1") {
		t.Errorf("keygen: %q", out)
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", fi, err)
	}
	if out := runOK("", "version"); !strings.HasPrefix(out, "securetextd ") {
		t.Errorf("version: %q", out)
	}

	// Usage errors are errUsage (exit 2).
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"user"},
		{"user", "add"},
		{"user", "add", "a@b.example", "c@d.example"},
		{"user", "add", "a@b.example", "--no-such-flag"},
		{"keygen"},
		{"serve", "extra"},
	} {
		err := run(args, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
		var ue errUsage
		if !errors.As(err, &ue) {
			t.Errorf("%q: err = %v, want a usage error", args, err)
		}
	}
}
