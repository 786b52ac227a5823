package portal

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/locale"
)

// TestZoneOf: a number's times are shown in its area's zone, and where
// the number spans several zones, in a guess that carries its
// abbreviation: the portal's own zone when it is one of them.
func TestZoneOf(t *testing.T) {
	anchorage, err := time.LoadLocation("America/Anchorage")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		phone    securetextd.Phone
		fallback *time.Location
		want     string
		abbrev   bool
	}{
		{"+12125550123", time.UTC, "America/New_York", false},
		{"+13125550100", time.UTC, "America/Chicago", false},
		{"+34612345678", time.UTC, "Europe/Madrid", false},
		// Alaska's 907 spans America/Adak and America/Anchorage.
		{"+19075550100", time.UTC, "America/Adak", true},
		{"+19075550100", anchorage, "America/Anchorage", true},
		// International freephone names no zone: the portal's.
		{"+80012345678", anchorage, "America/Anchorage", true},
		{"garbage", time.UTC, "UTC", true},
	} {
		z := zoneOf(tc.phone, tc.fallback)
		if z.Name() != tc.want || z.Abbrev != tc.abbrev {
			t.Errorf("%s (portal in %s): %s, abbreviation %v; want %s, %v", tc.phone, tc.fallback, z.Name(), z.Abbrev, tc.want, tc.abbrev)
		}
	}
	at := time.Date(2026, 1, 15, 20, 30, 0, 0, time.UTC)
	if got := when(english, zoneOf("+19075550100", anchorage), at); got != "Thu 15 Jan 2026, 11:30 AKST" {
		t.Errorf("several zones: %q", got)
	}
	if got := when(english, zoneOf("+12125550123", time.UTC), at); got != "Thu 15 Jan 2026, 15:30" {
		t.Errorf("one zone: %q", got)
	}
}

// english writes the English pages' words.
var english = locale.MustLoad().Printer("en")

// TestRelative: every wait the portal shows is a duration from now, in
// words, never shorter than it is.
func TestRelative(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Second:                  "1 minute",
		time.Minute:                  "1 minute",
		11*time.Minute + time.Second: "12 minutes",
		59 * time.Minute:             "59 minutes",
		time.Hour:                    "1 hour",
		90 * time.Minute:             "90 minutes",
		119 * time.Minute:            "119 minutes",
		2 * time.Hour:                "2 hours",
		2*time.Hour + time.Minute:    "3 hours",
		47 * time.Hour:               "47 hours",
		48 * time.Hour:               "2 days",
		30*24*time.Hour - time.Hour:  "30 days",
	} {
		if got := english.Duration(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}

// TestFileKind: a file is named as a patient knows it, from its content
// type or, for application/octet-stream, its name.
func TestFileKind(t *testing.T) {
	for _, tc := range []struct{ typ, name, want string }{
		{"application/pdf", "results.pdf", "PDF"},
		{"application/PDF; name=\"x.pdf\"", "x.pdf", "PDF"},
		{"image/jpeg", "IMG_0001.jpg", "Photo (JPEG)"},
		{"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "letter.docx", "Word document"},
		{"application/octet-stream", "scan.PDF", "PDF"},
		{"application/octet-stream", "blob", "File"},
		{"image/x-portable-bitmap", "a.pbm", "Image"},
		{"video/mp4", "clip.mp4", "Video"},
		{"", "", "File"},
	} {
		if got := english.T(fileKind(tc.typ, tc.name)); got != tc.want {
			t.Errorf("%q %q: %q, want %q", tc.typ, tc.name, got, tc.want)
		}
	}
}

// TestAttachmentsShown: a file is listed by kind and SI size ("PDF, 597
// KB"), and an image that the HTML shows by its cid: is not listed again,
// even when the sender's mail program called it an attachment.
func TestAttachmentsShown(t *testing.T) {
	f := newFixture(t, nil)
	m := f.st.addMessage(f.convA.ID, &securetextd.Message{Sender: "jane@clinic.example", Subject: "Scan", Received: time.Now()},
		testPart{securetextd.Part{Kind: securetextd.PartHTML, ContentType: "text/html"},
			[]byte(`<p>Your scan: <img src="cid:xray@clinic" alt="x-ray"></p>
<table border="1" cellpadding="4"><tr><th>Test</th><th>Value</th></tr><tr><td>HbA1c</td><td>5.4%</td></tr></table>`)},
		testPart{securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "image/png", ContentID: "xray@clinic", Filename: "xray.png"}, f.png},
		testPart{securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/pdf", Filename: "report.pdf"}, make([]byte, 597_000)},
	)
	w := f.get("/c/1", f.login(phoneA))
	if w.Code != http.StatusOK {
		t.Fatalf("%d", w.Code)
	}
	body := w.Body.String()
	img := fmt.Sprintf("/c/1/m/%d/p/1", m.ID)
	mustContain(t, "conversation", body, `src="`+img+`?inline=1"`, "report.pdf", "PDF, 597 KB",
		`<table border="1" cellpadding="4">`)
	if strings.Contains(body, "xray.png") || strings.Contains(body, `href="`+img+`"`) {
		t.Error("the image the HTML shows is listed again as an attachment")
	}
}

// TestTableAttributes: the policy keeps a table's border and padding as
// small numbers, and nothing else in them.
func TestTableAttributes(t *testing.T) {
	p := newPolicy()
	for in, want := range map[string]string{
		`<table border="1" cellpadding="4"><tr><td>x</td></tr></table>`:                              `<table border="1" cellpadding="4">`,
		`<table border="1;background:url(x)" cellpadding="javascript:x"><tr><td>x</td></tr></table>`: `<table>`,
		`<td border="1">x</td>`: `x`,
	} {
		if got := p.Sanitize(in); !strings.Contains(got, want) || strings.Contains(want, "<table>") && strings.Contains(got, "border") {
			t.Errorf("%s: %s", in, got)
		}
	}
}

// TestScripts: the portal serves its two scripts from its own origin,
// and pages allow script from there only.
func TestScripts(t *testing.T) {
	f := newFixture(t, nil)
	for _, name := range []string{"time.js", "reply.js"} {
		w := f.get("/static/" + name)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/javascript; charset=utf-8" || !strings.Contains(w.Body.String(), `"use strict"`) {
			t.Errorf("%s: %d %q", name, w.Code, w.Header().Get("Content-Type"))
		}
	}
	if w := f.get("/static/other.js"); w.Code != http.StatusNotFound {
		t.Errorf("other.js: %d", w.Code)
	}
	w := f.get("/c/1", f.login(phoneA))
	csp := w.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q", csp)
	}
	mustContain(t, "conversation", w.Body.String(), `<script src="/static/time.js" defer></script>`,
		`<script src="/static/reply.js" defer></script>`, `data-max="26214400"`, `id="size-error"`, "Up to 26 MB in total")
}

// TestLockoutSaysHowLong: the lockout page gives its wait from now.
func TestLockoutSaysHowLong(t *testing.T) {
	f := newFixture(t, nil)
	w := httptest.NewRecorder()
	f.srv.renderLocked(w, httptest.NewRequest("GET", "/", nil), 2*time.Hour+time.Second)
	mustContain(t, "locked", w.Body.String(), "Try again in 3 hours.")
}

// TestConversationCloses: the conversation page says, from now, when the
// conversation closes; nothing when conversations do not expire.
func TestConversationCloses(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.AccessExpiry = 72 * time.Hour })
	f.st.mu.Lock()
	f.convA.LastActivity = time.Now().Add(-25 * time.Hour)
	f.st.mu.Unlock()
	mustContain(t, "conversation", f.get("/c/1", f.login(phoneA)).Body.String(),
		"This conversation closes in 47 hours.")
	f = newFixture(t, nil)
	if body := f.get("/c/1", f.login(phoneA)).Body.String(); strings.Contains(body, "closes in") {
		t.Error("a conversation that never expires says it closes")
	}
}
