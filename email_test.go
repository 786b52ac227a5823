package securetextd

import (
	"strings"
	"testing"
)

// TestParseEmail: an email recipient is keyed by the bare address in
// lowercase; what is not one is refused in words; logs see it masked.
func TestParseEmail(t *testing.T) {
	for in, want := range map[string]Phone{
		"jane@example.net":        "jane@example.net",
		" Jane.Doe@Example.NET ":  "jane.doe@example.net",
		"jane+clinic@example.net": "jane+clinic@example.net",
	} {
		if got, err := ParseEmail(in); err != nil || got != want || !got.IsEmail() {
			t.Errorf("ParseEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, why := range map[string]string{
		"jane":                                    "not an email address",
		"jane@localhost":                          "not an email address",
		"Jane <jane@example.net>":                 "plain ASCII, no spaces",
		"jane@example.net,x@y.z":                  "not an email address",
		"jané@example.net":                        "plain ASCII",
		`"jane"@example.net`:                      "not an email address",
		strings.Repeat("a", 250) + "@example.net": "too long",
	} {
		if _, err := ParseEmail(in); ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), why) {
			t.Errorf("ParseEmail(%q) = %v, want EINVALID saying %q", in, err, why)
		}
	}
	if m := Phone("jane@example.net").Masked(); m != "j***@example.net" {
		t.Errorf("masked %q", m)
	}
	if Phone("+12125550123").IsEmail() {
		t.Error("a number is not an address")
	}
}
