package portal

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/securetextd/securetextd"
)

func newTestAPI(t *testing.T) *API {
	t.Helper()
	a, err := NewAPI(APIConfig{ParsePhone: securetextd.PhoneRules{DefaultRegion: "US", AllowedCountries: []string{"US"}}.Parse},
		nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestOpenAPIRoutes holds the OpenAPI document to the routes: every route
// registered under /api/v1 is described, and every operation described is
// a route.
func TestOpenAPIRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPIDocument(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if slices.Contains([]string{"get", "put", "post", "delete", "patch", "head", "options"}, method) {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	routes := newTestAPI(t).Routes()
	slices.Sort(documented)
	slices.Sort(routes)
	if !slices.Equal(documented, routes) {
		t.Errorf("the OpenAPI document and the routes differ:\ndocumented: %q\nroutes:     %q", documented, routes)
	}
	for _, r := range routes {
		if !strings.Contains(r, " /api/v1/") {
			t.Errorf("route %q is not under /api/v1", r)
		}
	}
}

// TestAPIWithoutKey: every route but the document needs a key, and says
// so in a problem document; unknown paths and methods are problems too.
func TestAPIWithoutKey(t *testing.T) {
	a := newTestAPI(t)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/api/v1/messages", 401},
		{"GET", "/api/v1/messages/1", 401},
		{"POST", "/api/v1/conversations/1/revoke", 401},
		{"GET", "/api/v1/nothing", 404},
		{"DELETE", "/api/v1/messages/1", 405},
	} {
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/openapi.json", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusOK || !json.Valid(body) || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("openapi.json: %d", rec.Code)
	}
}

// TestFingerprint: the fingerprint of a message does not depend on how it
// was encoded, and does on what it asks for.
func TestFingerprint(t *testing.T) {
	a := &submission{to: []securetextd.Phone{"+12125550123"}, subject: "s"}
	b := &submission{to: []securetextd.Phone{"+12125550123"}, subject: "s"}
	if a.fingerprint() != b.fingerprint() {
		t.Error("same message, different fingerprints")
	}
	b.subject = "t"
	if a.fingerprint() == b.fingerprint() {
		t.Error("different subjects, same fingerprint")
	}
	b.subject, b.files = "s", []fileDigest{{name: "x"}}
	if a.fingerprint() == b.fingerprint() {
		t.Error("a file more, same fingerprint")
	}
}
