package locale

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nicksnyder/go-i18n/v2/i18n"
)

// TestCatalogueComplete checks that every catalogue has every message of
// the source, with the same plural forms it needs, and no message the
// source lacks (a typo in an id).
func TestCatalogueComplete(t *testing.T) {
	c := MustLoad()
	src := c.bundle.LanguageTags()
	if len(src) < 2 {
		t.Fatalf("languages: %v", src)
	}
	en := messageIDs(t, c, Source)
	for _, l := range c.Languages() {
		ids := messageIDs(t, c, l.Tag)
		for id := range en {
			if !ids[id] {
				t.Errorf("%s.toml lacks %s", l.Tag, id)
			}
		}
		for id := range ids {
			if !en[id] {
				t.Errorf("%s.toml has %s, which en.toml has not", l.Tag, id)
			}
		}
	}
}

func TestPlurals(t *testing.T) {
	c := MustLoad()
	for _, tc := range []struct {
		tag  string
		d    time.Duration
		want string
	}{
		{"en", 12 * time.Minute, "12 minutes"},
		{"es", 12 * time.Minute, "12 minutos"},
		{"en", time.Minute, "1 minute"},
		{"es", 30 * time.Second, "1 minuto"},
		{"es", time.Hour, "1 hora"},
		{"es", 3 * time.Hour, "3 horas"},
		{"es", 72 * time.Hour, "3 días"},
	} {
		if got := c.Printer(tc.tag).Duration(tc.d); got != tc.want {
			t.Errorf("%s %v: %q, want %q", tc.tag, tc.d, got, tc.want)
		}
	}
	if got := c.Printer("es").T("TryAgainIn", "Wait", c.Printer("es").Duration(12*time.Minute)); got != "Inténtelo de nuevo en 12 minutos." {
		t.Errorf("try again: %q", got)
	}
	if got := c.Printer("es").N("TriesLeft", 1); got != "Le queda 1 intento antes de que se pause el inicio de sesión." {
		t.Errorf("tries left: %q", got)
	}
}

func TestDateAndSize(t *testing.T) {
	c := MustLoad()
	at := time.Date(2026, time.January, 5, 15, 4, 0, 0, time.UTC)
	if got := c.Printer("en").Date(at, true); got != "Mon 5 Jan 2026, 15:04 UTC" {
		t.Errorf("en: %q", got)
	}
	if got := c.Printer("es").Date(at, false); got != "lun 5 ene 2026, 15:04" {
		t.Errorf("es: %q", got)
	}
	if got := c.Printer("es").Size(2_400_000); got != "2,4 MB" {
		t.Errorf("es size: %q", got)
	}
	if got := c.Printer("en").Size(1); got != "1 byte" {
		t.Errorf("en size: %q", got)
	}
}

func TestMatch(t *testing.T) {
	c := MustLoad()
	for _, tc := range []struct{ header, fallback, want string }{
		{"es-MX,es;q=0.9,en;q=0.8", "en", "es"},
		{"en-US,en;q=0.9", "es", "en"},
		{"ja", "es", "es"},
		{"", "en", "en"},
		{"fr-CA, es;q=0.5", "en", "es"},
	} {
		if got := c.Match(tc.header, tc.fallback); got != tc.want {
			t.Errorf("Match(%q, %q) = %q, want %q", tc.header, tc.fallback, got, tc.want)
		}
	}
}

// sharedWords are words the English and Spanish catalogues both use:
// names of formats and brands, units, and words both languages spell
// alike. portal/language_test.go keeps the same list for its pages.
var sharedWords = map[string]bool{
	"a": true, "no": true, "total": true, "web": true, "internet": true, "com": true, "portal": true,
	"pdf": true, "jpeg": true, "png": true, "gif": true, "webp": true, "heic": true,
	"heif": true, "tiff": true, "csv": true, "rtf": true, "odt": true, "ods": true,
	"zip": true, "dicom": true, "word": true, "excel": true, "powerpoint": true,
	"audio": true, "video": true, "byte": true, "bytes": true, "kb": true, "mb": true, "gb": true,
}

// TestSpanishHasNoEnglish: no Spanish message holds a word of the English
// catalogue, whether or not a page test renders it (an error that
// happens rarely, an email).
func TestSpanishHasNoEnglish(t *testing.T) {
	english := make(map[string]bool)
	for _, words := range messageWords(t, "en") {
		for _, w := range words {
			if !sharedWords[w] {
				english[w] = true
			}
		}
	}
	for id, words := range messageWords(t, "es") {
		for _, w := range words {
			if english[w] {
				t.Errorf("es %s: %q is an English word of the catalogue", id, w)
			}
		}
	}
}

// TestPlainKept: a message written without fields is kept after its first
// writing and written the same from then on, in each language; a message
// with fields and an id the catalogue lacks are not kept, so that what is
// kept stays bounded by the catalogue whatever ids a page asks for.
func TestPlainKept(t *testing.T) {
	c := MustLoad()
	kept := func(p *Printer) int { return entries(&p.plain) }
	for _, tag := range []string{"en", "es"} {
		p := c.Printer(tag)
		first := p.T("NavInbox")
		if first == "" || first == "NavInbox" {
			t.Fatalf("%s: NavInbox is %q", tag, first)
		}
		before := kept(p)
		if again := p.T("NavInbox"); again != first {
			t.Errorf("%s: NavInbox %q, then %q", tag, first, again)
		}
		p.T("NoSuchMessage-x1")
		p.T("TryAgainIn", "Wait", "12 minutes")
		if n := kept(p); n != before {
			t.Errorf("%s: %d messages kept, then %d after an unknown id and a message with fields", tag, before, n)
		}
		if _, ok := p.plain.Load("NavInbox"); !ok {
			t.Errorf("%s: NavInbox not kept", tag)
		}
	}
	if en, es := c.Printer("en").T("NavInbox"), c.Printer("es").T("NavInbox"); en == es {
		t.Errorf("NavInbox is %q in both languages", en)
	}
}

// entries counts what m holds.
func entries(m *sync.Map) int {
	n := 0
	m.Range(func(any, any) bool { n++; return true })
	return n
}

// TestFilledKept: T keeps what it wrote for a message with string fields,
// by id and fields, so that a page's footer and heading are not written
// anew on every view; calls that differ in any field, even by the bytes
// a separator would use, get their own; and it holds at most maxFilled.
func TestFilledKept(t *testing.T) {
	c := MustLoad()
	kept := func(p *Printer) int { return entries(&p.filled) }
	for _, tag := range []string{"en", "es"} {
		p := c.Printer(tag) // shared with the package's other tests
		fresh := &Printer{loc: p.loc}
		before := kept(p)
		first := p.T("TryAgainIn", "Wait", "12 minutes x")
		if !strings.Contains(first, "12 minutes x") {
			t.Fatalf("%s: TryAgainIn is %q", tag, first)
		}
		if again := p.T("TryAgainIn", "Wait", "12 minutes x"); again != first || kept(p) != before+1 {
			t.Errorf("%s: %q, then %q, %d kept after %d", tag, first, again, kept(p), before)
		}
		// Each call is its own, and reads as a printer that keeps
		// nothing writes it.
		for _, kv := range [][]any{
			{"Wait", "3 minutes"},
			{"Wait", "3 minutes\x00"},
			{"Wait", "3", "X", " minutes"},
			{"Wait", "3\x00X\x00 minutes"},
		} {
			for range 2 {
				want, _ := fresh.loc.Localize(&i18n.LocalizeConfig{MessageID: "TryAgainIn", TemplateData: data(kv)})
				if got := p.T("TryAgainIn", kv...); got != want {
					t.Errorf("%s: T(%q) = %q, want %q", tag, kv, got, want)
				}
			}
		}
		// Not kept: a value that is not a string, an unknown id.
		n := kept(p)
		p.T("TryAgainIn", "Wait", 12)
		p.T("NoSuchMessage-x1", "Wait", "1")
		if kept(p) != n {
			t.Errorf("%s: %d kept, then %d after a number and an unknown id", tag, n, kept(p))
		}
		for i := range maxFilled + 10 {
			p.T("TryAgainIn", "Wait", strconv.Itoa(i))
		}
		if n := kept(p); n > maxFilled || n == 0 {
			t.Errorf("%s: %d kept after %d calls, bound %d", tag, n, maxFilled+10, maxFilled)
		}
	}
}
