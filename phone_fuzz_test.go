package securetextd

import (
	"strings"
	"testing"
)

// FuzzPhoneRulesParse checks that any input either parses to an E.164
// number in an allowed country that parses again to itself, or is refused
// with an EINVALID error that says why.
func FuzzPhoneRulesParse(f *testing.F) {
	for _, s := range []string{"2125550123", "+447911123456", "00447911123456", "212-555-0123", "(212) 555-0123", "+", "00", "1;DROP", "+4915123456789"} {
		f.Add(s)
	}
	rules := PhoneRules{DefaultRegion: "US", AllowedCountries: []string{"US", "CA", "GB"}}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := rules.Parse(s)
		if err != nil {
			if ErrorCode(err) != EINVALID || ErrorMessage(err) == "" {
				t.Fatalf("Parse(%q): %v", s, err)
			}
			return
		}
		if !strings.HasPrefix(string(p), "+") || len(p) < 8 || len(p) > 16 {
			t.Fatalf("Parse(%q) = %q: not E.164", s, p)
		}
		again, err := rules.Parse(string(p))
		if err != nil || again != p {
			t.Fatalf("Parse(%q) = %q, which parses to %q, %v", s, p, again, err)
		}
	})
}
