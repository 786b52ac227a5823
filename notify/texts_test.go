package notify

import (
	"strings"
	"testing"
)

// TestTextsPerLanguage: the link's text is the catalogue's in each
// language while sms.template is the default; an operator's sms.template
// is sent as written in every language, unless sms.templates gives that
// language its own; an unknown language is the default one.
func TestTextsPerLanguage(t *testing.T) {
	link := "https://p.example/m/T"
	texts, err := NewTexts(DefaultTemplate, nil, "en")
	if err != nil {
		t.Fatal(err)
	}
	for tag, want := range map[string]string{
		"en": "Clinic: you have a secure message. Open " + link,
		"es": "Clinic: tiene un mensaje seguro. Para leerlo, abra " + link,
		"":   "Clinic: you have a secure message. Open " + link,
		"fr": "Clinic: you have a secure message. Open " + link,
	} {
		if got := texts.For(tag).Render("Clinic", link); got != want {
			t.Errorf("%q: %q, want %q", tag, got, want)
		}
	}
	texts, err = NewTexts("{org}: new message, call 555-0100. {link}", map[string]string{"es": "{org}: mensaje nuevo, llame al 555-0100. {link}"}, "es")
	if err != nil {
		t.Fatal(err)
	}
	if got := texts.For("en").Render("C", "L"); got != "C: new message, call 555-0100. L" {
		t.Errorf("operator's en: %q", got)
	}
	if got := texts.For("").Render("C", "L"); got != "C: mensaje nuevo, llame al 555-0100. L" {
		t.Errorf("default es: %q", got)
	}
	texts, _ = NewTexts("{org} {link} (custom)", nil, "en")
	if got := texts.For("es").Render("C", "L"); got != "C L (custom)" {
		t.Errorf("operator's text in Spanish: %q", got)
	}
	if _, err := NewTexts(DefaultTemplate, map[string]string{"es": "sin enlace"}, "en"); err == nil || !strings.Contains(err.Error(), "sms.templates.es") {
		t.Errorf("bad sms.templates.es: %v", err)
	}
	if _, err := NewTexts(DefaultTemplate, map[string]string{"fr": "{link}"}, "en"); err == nil {
		t.Error("sms.templates.fr accepted without a catalogue")
	}
}

// TestTextsSegments: the GSM-7 segment check covers every language's
// text. The default texts avoid letters GSM-7 lacks, so each fits one
// GSM-7 segment with a 30-character organization name and a typical
// portal address; an accent GSM-7 lacks (á) makes a text UCS-2, which
// Check says, with the segments of each language.
func TestTextsSegments(t *testing.T) {
	org, url := strings.Repeat("O", 30), "https://portal.clinic.example"
	texts, err := NewTexts(DefaultTemplate, nil, "en")
	if err != nil {
		t.Fatal(err)
	}
	segments, warnings := texts.Check(org, url)
	t.Logf("default texts: %s", strings.Join(segments, "; "))
	if strings.Join(segments, "; ") != "en: 1 segment, GSM-7; es: 1 segment, GSM-7" || len(warnings) > 0 {
		t.Errorf("default texts: %v, warnings %v", segments, warnings)
	}
	texts, err = NewTexts(DefaultTemplate, map[string]string{"es": "{org}: tiene un mensaje seguro. Ábralo aquí: {link}"}, "en")
	if err != nil {
		t.Fatal(err)
	}
	segments, warnings = texts.Check(org, url)
	t.Logf("with an accented Spanish text: %s; %s", strings.Join(segments, "; "), strings.Join(warnings, "; "))
	if segments[1] != "es: 2 segments, UCS-2" {
		t.Errorf("accented es: %v", segments)
	}
	if len(warnings) != 2 || !strings.HasPrefix(warnings[0], `es: the text contains "Á"`) {
		t.Errorf("warnings: %q", warnings)
	}
}
