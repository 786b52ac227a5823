package locale

import (
	"io/fs"
	"testing"

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
