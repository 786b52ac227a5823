package portal

import "testing"

// TestSafeBack: the language switch goes back only to a path of this
// site, whatever a crafted form says; browsers drop tabs and line breaks
// in a Location and read a backslash as a slash, so those are refused too.
func TestSafeBack(t *testing.T) {
	for back, want := range map[string]string{
		"/inbox":                        "/inbox",
		"/m/abc?x=1":                    "/m/abc?x=1",
		"/account?done=language#top":    "/account?done=language#top",
		"":                              "/",
		"inbox":                         "/",
		"https://evil.example/":         "/",
		"//evil.example/":               "/",
		"/\t/evil.example":              "/",
		"/\n/evil.example":              "/",
		"/\r/evil.example":              "/",
		"/\\evil.example":               "/",
		"/ /evil.example":               "/",
		"/\x00":                         "/",
		"/caf\u00e9":                    "/",
		"/" + string(make([]byte, 600)): "/",
	} {
		if got := safeBack(back); got != want {
			t.Errorf("safeBack(%q) = %q, want %q", back, got, want)
		}
	}
}
