package locale

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/BurntSushi/toml"
)

// messageIDs returns the ids of catalogue tag's file.
func messageIDs(t *testing.T, c *Catalogue, tag string) map[string]bool {
	t.Helper()
	b, err := fs.ReadFile(files, "catalogue/"+tag+".toml")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := toml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	ids := make(map[string]bool, len(m))
	for id := range m {
		ids[id] = true
	}
	return ids
}

// messageWords returns, by message id, the words of catalogue tag's
// messages (their {{fields}}, {placeholders} and markup left out),
// lowercase; the names of days and months and the other data-like
// messages are left out.
func messageWords(t *testing.T, tag string) map[string][]string {
	t.Helper()
	b, err := fs.ReadFile(files, "catalogue/"+tag+".toml")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := toml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	strip := regexp.MustCompile(`\{\{[^}]*\}\}|\{[a-z]+\}|<[^>]*>|[a-z]+@[a-z.]+`)
	out := make(map[string][]string)
	for id, v := range m {
		switch id {
		case "LanguageName", "Weekdays", "Months", "DateTime", "DecimalPoint":
			continue
		}
		var texts []string
		switch v := v.(type) {
		case string:
			texts = append(texts, v)
		case map[string]any:
			for _, f := range v {
				if s, ok := f.(string); ok {
					texts = append(texts, s)
				}
			}
		}
		for _, s := range texts {
			for _, w := range strings.FieldsFunc(strip.ReplaceAllString(s, " "), func(r rune) bool { return !unicode.IsLetter(r) }) {
				out[id] = append(out[id], strings.ToLower(w))
			}
		}
	}
	return out
}
