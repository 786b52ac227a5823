package clamd

import "testing"

// TestParseVerdict reads clamd's answers, and never takes an answer it
// does not know for a clean verdict.
func TestParseVerdict(t *testing.T) {
	for _, tc := range []struct {
		reply, found string
		err          bool
	}{
		{"stream: OK", "", false},
		{"stream: Eicar-Signature FOUND", "Eicar-Signature", false},
		{"stream: Win.Test.EICAR_HDB-1 FOUND", "Win.Test.EICAR_HDB-1", false},
		{"stream: Bad\r\nName\x01 FOUND", "Bad__Name_", false}, // made safe for a reply line
		{"INSTREAM size limit exceeded. ERROR", "", true},
		{"stream: Can't allocate memory ERROR", "", true},
		{"stream:  FOUND", "", true},
		{"stream: OK FOUND", "OK", false},
		{"", "", true},
		{"PONG", "", true},
		{"stream: ok", "", true},
	} {
		found, err := parseVerdict(tc.reply)
		if found != tc.found || (err != nil) != tc.err {
			t.Errorf("parseVerdict(%q) = %q, %v", tc.reply, found, err)
		}
	}
	if n := len(signature(string(make([]byte, 1000)))); n != maxSignature {
		t.Errorf("a long name kept %d bytes", n)
	}
}
