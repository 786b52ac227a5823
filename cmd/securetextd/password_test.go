package main

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUserPasswordStrength runs `user add` and `user passwd` with weak and
// strong passwords: a weak one is refused, saying why in words and
// suggesting a passphrase, and nothing is saved; a strong one is saved.
func TestUserPasswordStrength(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "securetextd.toml")
	cfgText := "[smtp]\ndemo_account = \"\"\n[brand]\norg = \"Riverside Clinic\"\n"
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	user := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		err := run(append([]string{"user"}, append(args, "--config", cfgPath, "--password-stdin")...),
			strings.NewReader(stdin+"\n"), &out, &out)
		return out.String(), err
	}

	weak := []struct {
		password, why string
	}{
		{"short pass", "at least 12 characters"},
		{"qwertyuiop12", "common password"},
		{"Password2026", "a date or a year"},
		{"Jennifer1985!", "common word or name"},
		{"Summer20262026", "easy to guess"},
		{"aaaaaaaaaaaaaaaa", "repeat"},
		{"dr.who@clinic.example", "address"},
		{"riversideclinic1", "address or the organization"},
		{"Riverside Clinic 1", "address or the organization"},
	}
	for _, tc := range weak {
		t.Run(tc.password, func(t *testing.T) {
			out, err := user(tc.password, "add", "dr.who@clinic.example")
			if err == nil {
				t.Fatalf("user add accepted %q: %s", tc.password, out)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.why) || !strings.Contains(msg, "passphrase") {
				t.Errorf("refusal of %q does not say why (%q) and what to do: %s", tc.password, tc.why, msg)
			}
			if strings.Contains(msg, tc.password) {
				t.Errorf("the refusal repeats the password: %s", msg)
			}
		})
	}
	if out, _ := user("", "list"); strings.Contains(out, "dr.who") {
		t.Fatalf("a refused account was saved: %s", out)
	}

	if out, err := user("correct horse battery staple", "add", "dr.who@clinic.example"); err != nil {
		t.Fatalf("user add with a passphrase: %v %s", err, out)
	}
	if _, err := user("Summer2026", "passwd", "dr.who@clinic.example"); err == nil {
		t.Error("user passwd accepted Summer2026")
	}
	if out, err := user("lantern orbit cactus ribbon", "passwd", "dr.who@clinic.example"); err != nil {
		t.Fatalf("user passwd with a passphrase: %v %s", err, out)
	}
}

// TestGeneratedPasswordsPass holds the demo account's generated password
// (rand.Text) to the same rule as every other sender's.
func TestGeneratedPasswordsPass(t *testing.T) {
	for range 200 {
		if err := checkSenderPassword(rand.Text(), "demo@example.org", "Example Clinic"); err != nil {
			t.Fatal(err)
		}
	}
}
