package portal

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/securetextd/securetextd"
)

// fakeLinks knows one token.
type fakeLinks struct{ fail bool }

func (f fakeLinks) ConversationByToken(_ context.Context, token string) (*securetextd.Conversation, error) {
	if f.fail {
		return nil, errors.New("database is locked")
	}
	if token == "good-token-good-token-1" {
		return &securetextd.Conversation{ID: 1, Phone: "+12125550123"}, nil
	}
	return nil, securetextd.Errorf(securetextd.ENOTFOUND, "no such link")
}

func newTestPortal(t *testing.T, links Links) *httptest.Server {
	t.Helper()
	s, err := New(Config{Org: "North <Clinic>"}, links, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

func fetch(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestLinkPage(t *testing.T) {
	ts := newTestPortal(t, fakeLinks{})
	resp, body := fetch(t, ts.URL+"/m/good-token-good-token-1")
	if resp.StatusCode != 200 || !strings.Contains(body, "You have a secure message") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	// The organization's name is escaped, and shown.
	if !strings.Contains(body, "North &lt;Clinic&gt;") {
		t.Errorf("org not shown escaped: %s", body)
	}
	for h, want := range map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"Content-Security-Policy": "default-src 'none'",
	} {
		if got := resp.Header.Get(h); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS over plain HTTP")
	}
}

// TestUnknownLinksLookAlike checks that unknown, altered, overlong and
// malformed tokens all get the very same 404 page.
func TestUnknownLinksLookAlike(t *testing.T) {
	ts := newTestPortal(t, fakeLinks{})
	_, first := fetch(t, ts.URL+"/m/nope")
	for _, path := range []string{
		"/m/good-token-good-token-2",
		"/m/" + strings.Repeat("a", 5000),
		"/m/%00%ff",
		"/m/",
		"/no/such/page",
	} {
		resp, body := fetch(t, ts.URL+path)
		if resp.StatusCode != http.StatusNotFound || body != first {
			t.Errorf("%s: %d, same page: %v", path, resp.StatusCode, body == first)
		}
	}
}

func TestLinkNeverChangesOnPost(t *testing.T) {
	ts := newTestPortal(t, fakeLinks{})
	resp, err := http.Post(ts.URL+"/m/good-token-good-token-1", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Error("POST to a link answered 200")
	}
}

func TestStoreFailureIsGeneric(t *testing.T) {
	ts := newTestPortal(t, fakeLinks{fail: true})
	resp, body := fetch(t, ts.URL+"/m/good-token-good-token-1")
	if resp.StatusCode != http.StatusInternalServerError || strings.Contains(body, "locked") {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
}

func TestStylesheet(t *testing.T) {
	ts := newTestPortal(t, fakeLinks{})
	resp, body := fetch(t, ts.URL+"/static/style.css")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !strings.Contains(body, "body") {
		t.Errorf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
