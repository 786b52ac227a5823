package main

import (
	"regexp"
	"strings"
	"testing"
)

// operatorNameRE is the rule operatorName writes out, kept here as its
// reference.
var operatorNameRE = regexp.MustCompile(`^[\pL\pN._@+-]{1,64}$`)

// TestOperatorName holds operatorName to the regular expression it
// replaces, on names that pass, fail, and sit at the edges.
func TestOperatorName(t *testing.T) {
	for _, s := range []string{
		"", "ana", "ana.ruiz@clinic.example", "dr_who+2", "Zoë", "山田", "٣٤", "Ⅻ", "½",
		"ana ruiz", "ana\n", "a/b", "a;b", "a\x00", "\xff", "ana\xffb", "é\u0301",
		strings.Repeat("a", 64), strings.Repeat("a", 65), strings.Repeat("é", 64), strings.Repeat("é", 65),
	} {
		if got, want := operatorName(s), operatorNameRE.MatchString(s); got != want {
			t.Errorf("operatorName(%q) = %v, the regular expression says %v", s, got, want)
		}
	}
}

// FuzzOperatorName is TestOperatorName on any input.
func FuzzOperatorName(f *testing.F) {
	f.Add("ana.ruiz@clinic.example")
	f.Add("é\u0301")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := operatorName(s), operatorNameRE.MatchString(s); got != want {
			t.Errorf("operatorName(%q) = %v, the regular expression says %v", s, got, want)
		}
	})
}
