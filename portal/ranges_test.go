package portal

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

func TestNormalizeRange(t *testing.T) {
	many := func(n int, format string) string {
		var parts []string
		for i := range n {
			parts = append(parts, fmt.Sprintf(format, 2*i, 2*i))
		}
		return "bytes=" + strings.Join(parts, ",")
	}
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"bytes=0-99", "bytes=0-99"},
		{"bytes=-1000000", "bytes=0-999"},
		{"bytes=-100", "bytes=900-999"},
		{"bytes=900-", "bytes=900-999"},
		{"bytes=990-5000", "bytes=990-999"},
		{"Bytes = 0-9", "bytes=0-9"},
		{"bytes=0-9, 10-19", "bytes=0-19"},                // touching: merged
		{"bytes=20-29,0-9", "bytes=0-9,20-29"},            // sorted
		{"bytes=0-9,,20-29,", "bytes=0-9,20-29"},          // empty elements
		{"bytes=0-9,5-19", ""},                            // overlap: whole
		{"bytes=0-,0-", ""},                               // overlap: whole
		{"bytes=-500,0-600", ""},                          // overlap: whole
		{many(16, "%d-%d"), many(16, "%d-%d")},            // 16: served
		{many(17, "%d-%d"), ""},                           // 17: whole
		{"bytes=" + strings.Repeat(",", 100) + "0-1", ""}, // stuffed
		{"bytes=5000-", "bytes=1000-"},                    // unsatisfiable: 416
		{"bytes=5000-,-0", "bytes=1000-"},                 // none satisfiable: 416
		{"bytes=5000-,0-1", "bytes=0-1"},                  // the satisfiable one
		{"bytes=9-5", ""},                                 // invalid: ignored
		{"bytes=a-b", ""},                                 // invalid: ignored
		{"bytes=0-99999999999999999999", ""},              // overflow: ignored
		{"bytes=--5", ""},                                 // invalid: ignored
		{"bytes=", ""},                                    // nothing asked
		{"items=0-9", ""},                                 // another unit
		{"bytes 0-9", ""},                                 // no "="
	} {
		if got := normalizeRange(tc.in, 1000); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := normalizeRange("bytes=0-", 0); got != "" {
		t.Errorf("an empty part: %q", got)
	}
}

// TestRangeLimits: many ranges, or overlapping ones, get the whole part
// once, never a multipart answer that decrypts the same chunks over and
// over; a few ranges that do not overlap are served as asked.
func TestRangeLimits(t *testing.T) {
	f := newFixture(t, nil)
	c := f.login(phoneA)
	pdf := "/c/1/m/2/p/3"
	get := func(rg string) (*http.Response, []byte) {
		t.Helper()
		r := httpRequest("GET", pdf, c)
		r.Header.Set("Range", rg)
		f.st.read.Store(0)
		w := f.do(r)
		return w.Result(), w.Body.Bytes()
	}
	var spread []string
	for i := range 1000 {
		spread = append(spread, fmt.Sprintf("%d-%d", i*1000, i*1000))
	}
	for _, rg := range []string{
		"bytes=" + strings.Join(spread, ","),      // a thousand one-byte ranges
		"bytes=" + strings.Join(spread[:17], ","), // seventeen
		"bytes=0-,0-,0-,0-,0-,0-,0-,0-",           // the whole part, eight times
		"bytes=0-99,50-149",                       // an overlap
	} {
		resp, body := get(rg)
		if resp.StatusCode != http.StatusOK || string(body) != string(f.pdf) {
			t.Errorf("%.40s…: %d, %d bytes, want 200 and the whole part", rg, resp.StatusCode, len(body))
		}
		if n := f.st.read.Load(); n > int64(len(f.pdf))+32<<10 {
			t.Errorf("%.40s…: read %d bytes of a %d-byte part", rg, n, len(f.pdf))
		}
	}

	// Sixteen ranges that do not overlap: a multipart answer with each.
	resp, body := get("bytes=" + strings.Join(spread[:16], ","))
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("16 ranges: %d", resp.StatusCode)
	}
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	mr := multipart.NewReader(strings.NewReader(string(body)), params["boundary"])
	n := 0
	for ; ; n++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		if want := fmt.Sprintf("bytes %d-%d/%d", n*1000, n*1000, len(f.pdf)); p.Header.Get("Content-Range") != want || string(b) != string(f.pdf[n*1000:n*1000+1]) {
			t.Errorf("range %d: %q %q", n, p.Header.Get("Content-Range"), b)
		}
	}
	if n != 16 {
		t.Errorf("%d ranges served, want 16", n)
	}

	// Unsatisfiable: 416, with the size.
	resp, _ = get("bytes=99999999-")
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != "bytes */"+strconv.Itoa(len(f.pdf)) {
		t.Errorf("unsatisfiable: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
}

// httpRequest is a request for the fixture, with a session cookie.
func httpRequest(method, path string, c *http.Cookie) *http.Request {
	r, _ := http.NewRequest(method, "https://portal.test"+path, nil)
	r.AddCookie(c)
	return r
}

// TestEveryReadIsRecorded, against the real store: the body fetched on
// its own with a suffix range (the whole body) is an audit event and a
// view that sends the read receipt, although the conversation page was
// never shown; a video player's many ranges are one event per session
// and part; a HEAD, a 304 and a 416 send no bytes and record nothing; a
// second session's read is recorded again.
func TestEveryReadIsRecorded(t *testing.T) {
	f := newLiveFixture(t, false, "")
	// Set the password without following the redirect to the page.
	jar, _ := cookiejar.New(nil)
	f.c = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if status, _ := f.do("POST", "/m/"+f.token+"/setup", url.Values{
		"password": {password}, "confirm": {password}, "email": {"ana@example.org"},
	}); status != http.StatusSeeOther {
		t.Fatalf("setup: %d", status)
	}
	body := "/c/" + strconv.FormatInt(f.conv, 10) + "/m/" + strconv.FormatInt(f.msg, 10) + "/p/0"
	events := func() map[string]int {
		seen := map[string]int{}
		f.db.AuditTrail(t.Context(), time.Time{}, func(ev securetextd.AuditEvent) error {
			seen[ev.Event]++
			if ev.Event == securetextd.AuditDownloaded && (ev.Detail != "part=0" || ev.MessageID != f.msg || ev.Client != "127.0.0.1") {
				t.Errorf("download event %+v", ev)
			}
			return nil
		})
		return seen
	}
	fetch := func(method, rg string, header ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, f.srv.URL+body, nil)
		if rg != "" {
			req.Header.Set("Range", rg)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := f.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// The whole body through a suffix range: recorded, and viewed.
	status, got := fetch("GET", "bytes=-1000000")
	if status != http.StatusPartialContent || got != "BODY-MARKER all normal" {
		t.Fatalf("suffix range: %d %q", status, got)
	}
	if seen := events(); seen[securetextd.AuditDownloaded] != 1 || seen[securetextd.AuditMessageViewed] != 1 || seen[securetextd.AuditReceiptQueued] != 1 {
		t.Errorf("after a suffix range of the body: %v", seen)
	}
	if n := f.pending(securetextd.JobKindMDN); n != 1 {
		t.Errorf("%d read receipts queued, want 1", n)
	}

	// A player's many ranges: still one event.
	for i := range 40 {
		if status, got := fetch("GET", fmt.Sprintf("bytes=%d-%d", i%20, i%20)); status != http.StatusPartialContent || len(got) != 1 {
			t.Fatalf("range %d: %d %q", i, status, got)
		}
	}
	fetch("GET", "")
	if seen := events(); seen[securetextd.AuditDownloaded] != 1 || seen[securetextd.AuditMessageViewed] != 1 {
		t.Errorf("after many ranges: %v", seen)
	}

	// Another session is another reader, but only once it is sent bytes.
	jar2, _ := cookiejar.New(nil)
	f.c = &http.Client{Jar: jar2, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if status, _ := f.do("POST", "/m/"+f.token+"/login", url.Values{"password": {password}}); status != http.StatusSeeOther {
		t.Fatalf("login: %d", status)
	}
	if status, _ := fetch("HEAD", ""); status != http.StatusOK {
		t.Errorf("HEAD: %d", status)
	}
	if status, _ := fetch("GET", "bytes=5000-"); status != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("unsatisfiable range: %d", status)
	}
	if status, _ := fetch("GET", "", "If-None-Match", `"`+strconv.FormatInt(f.msg, 10)+`-0"`); status != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", status)
	}
	if seen := events(); seen[securetextd.AuditDownloaded] != 1 {
		t.Fatalf("recorded without bytes sent: %v", seen)
	}
	fetch("GET", "bytes=0-3")
	fetch("GET", "bytes=4-")
	if seen := events(); seen[securetextd.AuditDownloaded] != 2 || seen[securetextd.AuditReceiptQueued] != 1 {
		t.Errorf("a second session: %v", seen)
	}
}

// auditFails is the fake store running a lifecycle whose audit trail
// cannot be written (a full disk).
type auditFails struct {
	*fakeStore
	fail bool
	n    int
}

var _ Lifecycle = (*auditFails)(nil)

func (a *auditFails) ConversationAccess(context.Context, int64) error { return nil }
func (a *auditFails) Audit(context.Context, securetextd.AuditEvent) error {
	if a.fail {
		return securetextd.Errorf(securetextd.ESTORAGE, "full")
	}
	a.n++
	return nil
}
func (a *auditFails) AuditUnlessFlooded(ctx context.Context, ev securetextd.AuditEvent, _ string, _ store.StrikeRule) (bool, error) {
	return true, a.Audit(ctx, ev)
}
func (a *auditFails) MarkViewed(context.Context, int64, []int64) error { return nil }
func (a *auditFails) RevocationByToken(context.Context, string) (*securetextd.Conversation, error) {
	return nil, notFound()
}
func (a *auditFails) RevokeByToken(context.Context, string) (*securetextd.Conversation, error) {
	return nil, notFound()
}
func (a *auditFails) RecordDelivery(context.Context, securetextd.DeliveryReport) error { return nil }

// TestReadNotRecordedNotSent: when the read cannot be recorded, no byte
// of the part is sent, and the next request records it.
func TestReadNotRecordedNotSent(t *testing.T) {
	f := newFixture(t, nil)
	c := f.login(phoneA)
	st := &auditFails{fakeStore: f.st, fail: true}
	srv, err := New(testConfig(), st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, rg := range []string{"", "bytes=-100", "bytes=0-1,5-6"} {
		r := httpRequest("GET", "/c/1/m/2/p/3", c)
		r.Header.Set("Range", rg)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "%PDF") ||
			w.Header().Get("Content-Disposition") != "" || w.Header().Get("Content-Range") != "" {
			t.Errorf("range %q with the audit trail failing: %d %v", rg, w.Code, w.Header())
		}
	}
	st.fail = false
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httpRequest("GET", "/c/1/m/2/p/3", c))
	if w.Code != http.StatusOK || w.Body.Len() != len(f.pdf) || st.n != 1 {
		t.Errorf("once the audit trail works: %d, %d bytes, %d events", w.Code, w.Body.Len(), st.n)
	}
}
