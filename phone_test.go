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
		{"555", `"555" has too few digits for a phone number in United States (+1): write the whole number, as in +12015550123`},
		{"555-0199", `"555-0199" has too few digits for a phone number in United States (+1)`},
		// 07911 1xxxxx is a Guernsey block (Sure), not a GB one.
		{"+447911123456", "+447911123456 is a number in Guernsey (+44), where this gateway does not send texts; it sends to: United States (+1), Canada (+1)"},
		{"+4915123456789", "is a number in Germany (+49)"},
		{"+881612345678", "+881612345678 is a number of an international network (+881), not of a country: this gateway does not send texts there"},
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

// TestAllowedSharedCallingCode holds what config.example.toml says of
// sms.allowed_countries where regions share a calling code: the code's
// main region allows them all, any other region only itself.
func TestAllowedSharedCallingCode(t *testing.T) {
	for _, tc := range []struct {
		allowed []string
		phone   string
		ok      bool
	}{
		{[]string{"GB"}, "+447911123456", true},  // Guernsey
		{[]string{"GB"}, "+447797712345", true},  // Jersey
		{[]string{"GB"}, "+447924123456", true},  // Isle of Man
		{[]string{"GG"}, "+447400123456", false}, // United Kingdom
		{[]string{"GG"}, "+447911123456", true},
		{[]string{"US"}, "+15062345678", true}, // Canada
		{[]string{"US"}, "+17872345678", true}, // Puerto Rico
		{[]string{"US"}, "+18762101234", true}, // Jamaica
		{[]string{"CA"}, "+12015550123", false},
		{[]string{"CA"}, "+18762101234", false},
	} {
		_, err := PhoneRules{DefaultRegion: "US", AllowedCountries: tc.allowed}.Parse(tc.phone)
		if (err == nil) != tc.ok {
			t.Errorf("allowed %v, %s: err = %v, want allowed %v", tc.allowed, tc.phone, err, tc.ok)
		}
	}
}

// TestRefusalNamesFewRegions: a long sms.allowed_countries is cut short in
// a refusal, which must stay one short SMTP reply line.
func TestRefusalNamesFewRegions(t *testing.T) {
	rules := PhoneRules{DefaultRegion: "US", AllowedCountries: []string{"US", "CA", "GB", "IE", "FR", "DE", "ES", "IT", "NL"}}
	_, err := rules.Parse("+48512345678")
	want := "+48512345678 is a number in Poland (+48), where this gateway does not send texts; it sends to: " +
		"United States (+1), Canada (+1), United Kingdom (+44), Ireland (+353), France (+33), Germany (+49), and 3 more"
	if ErrorMessage(err) != want {
		t.Errorf("got  %q\nwant %q", ErrorMessage(err), want)
	}
}
