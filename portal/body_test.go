package portal

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// urlRE is what findURLs does, as the regular expression it replaced.
var urlRE = regexp.MustCompile(`(?i)\bhttps?://[^\s<>"]+`)

// agreesWithRegexp fails t unless findURLs finds in text what urlRE does.
func agreesWithRegexp(t *testing.T, text string) {
	t.Helper()
	want := urlRE.FindAllStringIndex(text, -1)
	got := findURLs(text)
	if len(got) != len(want) {
		t.Fatalf("findURLs(%q) = %v, the regexp finds %v", text, got, want)
	}
	for i := range got {
		if got[i][0] != want[i][0] || got[i][1] != want[i][1] {
			t.Fatalf("findURLs(%q) = %v, the regexp finds %v", text, got, want)
		}
	}
}

// TestFindURLsAgreesWithRegexp compares findURLs with the regular
// expression on texts made of the pieces that matter: schemes in both
// cases, word characters before them, separators, punctuation and
// non-ASCII.
func TestFindURLsAgreesWithRegexp(t *testing.T) {
	pieces := []string{"http", "HTTPS", "hTtP", "s", "://", ":/", "//", "x", "_", "9", " ", "\t", "\n", "\f", "\r", "\v",
		"<", ">", `"`, "'", ".", ",", ")", "(", "é", "\xff", "www.", "example.org", "/path?q=1#f", "://://"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		text := b.String()
		agreesWithRegexp(t, text)
	}
}

// FuzzFindURLs holds findURLs to the regular expression on any text.
func FuzzFindURLs(f *testing.F) {
	for _, s := range []string{"see https://example.org.", "xhttp://a", "HTTP://A<b>", "https://", "http://a http://b", "_http://x", "ahttps://x https://y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		agreesWithRegexp(t, text)
	})
}

// BenchmarkLinkify is a typical text body, with one address, through
// findURLs and through the regular expression it replaced.
func BenchmarkLinkify(b *testing.B) {
	text := strings.Repeat("Your results are in and everything looks normal. See you soon.\n", 15) +
		"Directions: https://clinic.example/directions?floor=2.\n"
	b.SetBytes(int64(len(text)))
	b.Run("regexp", func(b *testing.B) {
		for b.Loop() {
			urlRE.FindAllStringIndex(text, -1)
		}
	})
	b.Run("findURLs", func(b *testing.B) {
		for b.Loop() {
			findURLs(text)
		}
	})
}
