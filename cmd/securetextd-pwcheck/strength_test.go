package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
)

// TestPasswordStrength judges weak and strong passwords for the sender
// dr.who@clinic.example of Riverside Clinic: a weak one is refused, saying
// why in words and suggesting a passphrase, without repeating it; a
// strong one passes.
func TestPasswordStrength(t *testing.T) {
	weak := []struct {
		password, why string
	}{
		{"short pass", "at least 12 characters"},
		{"qwertyuiop12", "common password"},
		{"Password2026", "a date or a year"},
		{"Jennifer1985!", "common word or name"},
		{"Summer20262026", "easy to guess"},
		{"Summer2026", "at least 12 characters"},
		{"aaaaaaaaaaaaaaaa", "repeat"},
		{"dr.who@clinic.example", "address"},
		{"riversideclinic1", "address or the organization"},
		{"Riverside Clinic 1", "address or the organization"},
	}
	for _, tc := range weak {
		t.Run(tc.password, func(t *testing.T) {
			err := checkSenderPassword(tc.password, "dr.who@clinic.example", "Riverside Clinic")
			if err == nil {
				t.Fatalf("%q passed", tc.password)
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
	for _, pw := range []string{"correct horse battery staple", "lantern orbit cactus ribbon", "lantern orbit cactus ribbon " + strings.Repeat("walnut tide ember quorum ", 6)} {
		if err := checkSenderPassword(pw, "dr.who@clinic.example", "Riverside Clinic"); err != nil {
			t.Errorf("%.30q refused: %v", pw, err)
		}
	}
}

// TestGeneratedPasswordsPass holds the demo account's generated password
// (rand.Text, 26 characters of base32: 130 random bits) to the rule every
// other sender's password meets, though the daemon that makes it does not
// run the estimator.
func TestGeneratedPasswordsPass(t *testing.T) {
	for range 200 {
		if err := checkSenderPassword(rand.Text(), "demo@example.org", "Example Clinic"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestServe speaks the program's exchange: a JSON request in, the exit
// status and one line of reason out.
func TestServe(t *testing.T) {
	ask := func(in string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := serve(strings.NewReader(in), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	req := func(pw string) string {
		b, _ := json.Marshal(request{Password: pw, Address: "dr.who@clinic.example", Org: "Riverside Clinic"})
		return string(b)
	}
	if code, out, _ := ask(req("lantern orbit cactus ribbon")); code != 0 || out != "" {
		t.Errorf("strong: exit %d, %q", code, out)
	}
	if code, out, _ := ask(req("qwertyuiop12")); code != 1 || !strings.Contains(out, "common password") || strings.Count(out, "\n") != 1 {
		t.Errorf("weak: exit %d, %q", code, out)
	}
	for _, bad := range []string{"", "not json", `{"password": 1}`, `{"pass": "x"}`, `{"password": "` + strings.Repeat("a", maxRequest) + `"}`} {
		if code, out, errOut := ask(bad); code != 2 || out != "" || !strings.Contains(errOut, "reading the request") {
			t.Errorf("%.20q: exit %d, %q, %q", bad, code, out, errOut)
		}
	}
}
