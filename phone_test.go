package securetextd

import (
	"strings"
	"testing"
)

func TestPhoneRulesParse(t *testing.T) {
	rules := PhoneRules{DefaultRegion: "US", AllowedCountries: []string{"US", "CA", "GB"}}
	for _, tc := range []struct {
		in   string
		want Phone
	}{
		{"2125550123", "+12125550123"},
		{"12125550123", "+12125550123"},
		{"+12125550123", "+12125550123"},
		{"212-555-0123", "+12125550123"},
		{"(212) 555-0123", "+12125550123"},
		{"212.555.0123", "+12125550123"},
		{"+447911123456", "+447911123456"},
		{"00447911123456", "+447911123456"},
		{"+1 416 555 0143", "+14165550143"}, // Canada
	} {
		got, err := rules.Parse(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestPhoneRulesRefuse(t *testing.T) {
	rules := PhoneRules{DefaultRegion: "US", AllowedCountries: []string{"US", "CA"}}
	for _, tc := range []struct{ in, why string }{
		{"2114367789", "cannot be a real phone number"}, // 211 is an N11 service code
		{"555", "cannot be a real phone number"},
		{"+447911123456", "country (GG) this gateway does not text"},
		{"+4915123456789", "country (DE)"},
		{"+442079460000", "landline"},
		{"+18005550199", "toll-free"},
		{"+19005550199", "premium"},
		{"hello", "not a phone number"},
		{"212555O123", "not a phone number"}, // a letter O
		{"", "not a phone number"},
		{"+" + strings.Repeat("1", 60), "too long"},
		{"1;DROP TABLE", "not a phone number"},
	} {
		got, err := rules.Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) = %q, want an error", tc.in, got)
			continue
		}
		if ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), tc.why) {
			t.Errorf("Parse(%q): %v; want EINVALID saying %q", tc.in, err, tc.why)
		}
	}
}

func TestPhoneMasked(t *testing.T) {
	for in, want := range map[Phone]string{
		"+12125550123":  "+1212*****23",
		"+447911123456": "+4479******56",
		"+1234":         "*****",
	} {
		if got := in.Masked(); got != want {
			t.Errorf("%s.Masked() = %q, want %q", in, got, want)
		}
	}
	if d := Phone("+12125550123").Digits(); d != "12125550123" {
		t.Errorf("Digits = %q", d)
	}
}

func TestErrorHelpers(t *testing.T) {
	err := Errorf(ENOTFOUND, "no such %s", "link")
	if ErrorCode(err) != ENOTFOUND || ErrorMessage(err) != "no such link" {
		t.Errorf("%v", err)
	}
	other := errorString("disk on fire")
	if ErrorCode(other) != EINTERNAL || ErrorMessage(other) != "Internal error." {
		t.Error("internal errors must not leak their text")
	}
	if ErrorCode(nil) != "" {
		t.Error("nil has a code")
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
