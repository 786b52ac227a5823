package portal

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/securetextd/securetextd"
)

// TestDatabaseDownPage: while the database is down (the store's
// EUNAVAILABLE), a page answers 503 with Retry-After, so that a browser,
// a proxy or a load balancer knows to come back; it is the portal's
// try-again page, telling nothing of the cause.
func TestDatabaseDownPage(t *testing.T) {
	f := newFixture(t, nil)
	f.st.failLinks = fmt.Errorf("store: conversation by token: %w: dial tcp 10.0.0.5:5432: connect: connection refused",
		securetextd.Errorf(securetextd.EUNAVAILABLE, "The gateway's database is unreachable; try again later."))
	w := f.get("/m/" + tokenA)
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", w.Code)
	}
	if w.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	mustContain(t, "503", w.Body.String(), "Please try again in a few minutes")
	mustNotContain(t, "503", w.Body.String(), "10.0.0.5", "dial", "database")
}
