package securetextd

import (
	"strings"
	"testing"
)

// TestNewErrorID: ids have one shape (IsErrorID, which refuses what is
// not it), and ten thousand of them are all different.
func TestNewErrorID(t *testing.T) {
	seen := make(map[string]bool)
	for range 10000 {
		id := NewErrorID()
		if !IsErrorID(id) {
			t.Fatalf("NewErrorID() = %q: not the shape of an error id", id)
		}
		if seen[id] {
			t.Fatalf("NewErrorID() gave %q twice", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "ABCDEFGHI", "ABCDEFGHIJK", "abcdefghij", "ABCDEFGH01", "3f2a9c01b7e4", "ABCDE FGHI"} {
		if IsErrorID(bad) {
			t.Errorf("IsErrorID(%q) = true", bad)
		}
	}
	if strings.ToUpper(errorIDAlphabet) != errorIDAlphabet || len(errorIDAlphabet) != 32 {
		t.Errorf("alphabet %q", errorIDAlphabet)
	}
}
