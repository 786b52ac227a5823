package notify

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseTemplateErrors(t *testing.T) {
	tests := []struct {
		name, template, want string
	}{
		{"no link", "{org}: you have a message", "{link} is missing"},
		{"empty", "", "{link} is missing"},
		{"unknown", "Hi {name}, open {link}", `"{name}"`},
		{"wrong case", "Open {Link}", `"{Link}"`},
		{"empty braces", "Open {link} {}", `"{}"`},
		{"unclosed", "Open {link} {org", "no closing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTemplate(tt.template)
			if err == nil {
				t.Fatalf("ParseTemplate(%q) = nil error", tt.template)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseTemplate(%q) = %q, want it to mention %s", tt.template, err, tt.want)
			}
		})
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		template, org, link, want string
	}{
		{DefaultTemplate, "Acme Clinic", "https://s.example/m/abc",
			"Acme Clinic: you have a secure message. Open https://s.example/m/abc"},
		{"{link}", "Acme", "https://s.example/m/abc", "https://s.example/m/abc"},
		{"{link} {link} (from {org})", "Acme", "L", "L L (from Acme)"},
		// Values are not read as placeholders, and a lone '}' is literal.
		{"{org} } {link}", "{link}", "L", "{link} } L"},
	}
	for _, tt := range tests {
		tpl, err := ParseTemplate(tt.template)
		if err != nil {
			t.Fatalf("ParseTemplate(%q): %v", tt.template, err)
		}
		if got := tpl.Render(tt.org, tt.link); got != tt.want {
			t.Errorf("Render(%q) = %q, want %q", tt.template, got, tt.want)
		}
	}
}

func TestGSMTables(t *testing.T) {
	if n := utf8.RuneCountInString(gsmBasic); n != 127 {
		t.Errorf("basic table has %d characters, want 127 (128 less escape)", n)
	}
	if n := utf8.RuneCountInString(gsmExtension); n != 10 {
		t.Errorf("extension table has %d characters, want 10", n)
	}
}

func TestSegments(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		segments int
		gsm7     bool
	}{
		{"short", "Hello", 1, true},
		{"160 ascii", strings.Repeat("a", 160), 1, true},
		{"161 ascii", strings.Repeat("a", 161), 2, true},
		{"306 ascii", strings.Repeat("a", 306), 2, true},
		{"307 ascii", strings.Repeat("a", 307), 3, true},
		{"gsm accents", "Grüße aus Köln, ¿qué tal? £5 @ café", 1, true},
		{"80 extension chars", strings.Repeat("€", 80), 1, true},
		{"81 extension chars", strings.Repeat("{", 81), 2, true},
		{"form feed", strings.Repeat("a", 158) + "\f", 1, true},
		// 152 septets, then an escape pair that must not be split: the
		// second part begins with it.
		{"escape pair not split", strings.Repeat("a", 152) + "^" + strings.Repeat("a", 10), 2, true},
		{"70 ucs2", strings.Repeat("ж", 70), 1, false},
		{"71 ucs2", strings.Repeat("ж", 71), 2, false},
		{"emoji", "Hi 😀", 1, false},
		{"emoji counts two", strings.Repeat("a", 68) + "😀", 1, false},
		{"emoji over 70", strings.Repeat("a", 69) + "😀", 2, false},
		{"ç is not gsm", "Ça va? ça va", 1, false},
		{"one non-gsm char", strings.Repeat("a", 100) + "ô", 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			segments, gsm7 := Segments(tt.text)
			if segments != tt.segments || gsm7 != tt.gsm7 {
				t.Errorf("Segments = %d, %v; want %d, %v", segments, gsm7, tt.segments, tt.gsm7)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	def, err := ParseTemplate(DefaultTemplate)
	if err != nil {
		t.Fatal(err)
	}
	if w := def.Check("Acme Clinic", "https://secure.acme.example/"); w != nil {
		t.Errorf("default template: warnings %q, want none", w)
	}

	w := def.Check("Clinique Sainte-Thérèse", "https://st.example")
	if len(w) != 0 {
		t.Errorf("è and é are GSM-7: warnings %q, want none", w)
	}

	w = def.Check("Hôpital Nord", "https://hn.example")
	if len(w) != 2 || !strings.Contains(w[0], `"ô"`) || !strings.Contains(w[0], "UCS-2") ||
		!strings.Contains(w[1], "2 segments") {
		t.Errorf("warnings %q, want one naming \"ô\" and UCS-2, then 2 segments", w)
	}

	w = def.Check("St Mary 😀", "https://sm.example")
	if len(w) != 2 || !strings.Contains(w[0], "U+1F600") {
		t.Errorf("warnings %q, want one naming U+1F600, then segments", w)
	}

	long, err := ParseTemplate("{org}: you have a new secure message waiting for you. " +
		"Please open the link below on your phone and set a password to read it. {link}")
	if err != nil {
		t.Fatal(err)
	}
	w = long.Check("Springfield General Hospital, Department of Cardiology", "https://securetext.springfield-general.example")
	if len(w) != 1 || !strings.Contains(w[0], "2 segments") {
		t.Errorf("warnings %q, want one saying 2 segments", w)
	}

	w = long.Check("Hôpital Nord", "https://hn.example")
	if len(w) != 2 || !strings.Contains(w[0], `"ô"`) || !strings.Contains(w[1], "3 segments") {
		t.Errorf("warnings %q, want non-GSM \"ô\", then 3 segments", w)
	}
}
