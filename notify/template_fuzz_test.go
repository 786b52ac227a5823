package notify

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzTemplate checks that any template either parses and renders with the
// link in it, or is refused with a reason; and that Segments never panics
// and counts at least one segment.
func FuzzTemplate(f *testing.F) {
	f.Add(DefaultTemplate, "Clinic")
	f.Add("{org} {link} {link}", "Ünïcödé 🏥")
	f.Add("{link", "x")
	f.Add("}{org}{", "")
	f.Fuzz(func(t *testing.T, tmpl, org string) {
		tp, err := ParseTemplate(tmpl)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		const link = "https://portal.example/m/AAAAAAAAAAAAAAAAAAAAAA"
		text := tp.Render(org, link)
		if !strings.Contains(text, link) {
			t.Fatalf("rendered %q lacks the link", text)
		}
		if n, _ := Segments(text); n < 1 {
			t.Fatalf("Segments(%q) = %d", text, n)
		}
		if utf8.ValidString(tmpl) && utf8.ValidString(org) && !utf8.ValidString(text) {
			t.Fatalf("valid input rendered invalid UTF-8: %q", text)
		}
	})
}
