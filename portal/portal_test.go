package portal

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

const (
	phoneA   = securetextd.Phone("+12125550123")
	phoneB   = securetextd.Phone("+12125550199")
	tokenA   = "linkTokenAAAAAAAAAAAAA"
	tokenB   = "linkTokenBBBBBBBBBBBBB"
	password = "correct horse battery"
)

// parsePhone stands in for PhoneRules.Parse: "+" and digits.
func parsePhone(s string) (securetextd.Phone, error) {
	if len(s) < 8 || s[0] != '+' || strings.Trim(s[1:], "0123456789") != "" {
		return "", securetextd.Errorf(securetextd.EINVALID, "not a phone number")
	}
	return securetextd.Phone(s), nil
}

func testConfig() Config {
	return Config{
		Org:        "North <Clinic>",
		Secure:     true,
		ParsePhone: parsePhone,
		Location:   time.UTC,
	}
}

func pngImage(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fixture is a portal over a fake store with two phones: A has a
// conversation with an HTML message, an inline image and a PDF; B has one
// of its own.
type fixture struct {
	t      *testing.T
	st     *fakeStore
	srv    *Server
	convA  *securetextd.Conversation
	convB  *securetextd.Conversation
	msgA   *securetextd.Message
	pdf    []byte
	png    []byte
	remote string // RemoteAddr of direct requests
	logs   *syncBuffer
}

// syncBuffer collects the log, to check what it never holds.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	cfg := testConfig()
	if mod != nil {
		mod(&cfg)
	}
	f := &fixture{t: t, st: newFakeStore(), png: pngImage(t), remote: "192.0.2.1:1234", logs: &syncBuffer{}}
	srv, err := New(cfg, f.st, slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	f.pdf = append([]byte("%PDF-1.4\n"), make([]byte, 1<<20)...)
	rand.NewChaCha8([32]byte{1}).Read(f.pdf[9:])
	f.convA = f.st.addConversation(phoneA, "jane@clinic.example", tokenA)
	f.msgA = f.st.addMessage(f.convA.ID, &securetextd.Message{
		Sender: "jane@clinic.example", SenderName: "Dr Jane Roe", Subject: "Your results BODY-SUBJECT",
		Received: time.Date(2026, 3, 2, 14, 5, 0, 0, time.UTC),
	},
		testPart{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, []byte("Plain alternative TEXT-ONLY")},
		testPart{securetextd.Part{Kind: securetextd.PartHTML, ContentType: "text/html"},
			[]byte(`<p>Hello <b>Ana</b>, BODY-MARKER. <img src="cid:scan@x" alt="scan"></p><a href="https://example.org/info">more</a>`)},
		testPart{securetextd.Part{Kind: securetextd.PartInline, ContentType: "image/png", ContentID: "scan@x"}, f.png},
		testPart{securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/pdf", Filename: "results.pdf"}, f.pdf},
	)
	f.convB = f.st.addConversation(phoneB, "bob@other.example", tokenB)
	f.st.addMessage(f.convB.ID, &securetextd.Message{Sender: "bob@other.example", Subject: "For B only"},
		testPart{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, []byte("SECRET-OF-B")})
	f.st.Calls()
	return f
}

// do serves a request directly, as from f.remote.
func (f *fixture) do(r *http.Request) *httptest.ResponseRecorder {
	f.t.Helper()
	r.RemoteAddr = f.remote
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	return w
}

func (f *fixture) get(path string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "https://portal.test"+path, nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	return f.do(r)
}

func (f *fixture) post(path string, form url.Values, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "https://portal.test"+path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		r.AddCookie(c)
	}
	return f.do(r)
}

// login gives phone a password (if it has none) and returns a session
// cookie for it.
func (f *fixture) login(phone securetextd.Phone) *http.Cookie {
	f.t.Helper()
	f.st.CreateRecipient(f.t.Context(), phone, password, "ana@example.org")
	token, err := f.st.CreateSession(f.t.Context(), phone)
	if err != nil {
		f.t.Fatal(err)
	}
	f.st.Calls()
	return &http.Cookie{Name: f.srv.cookieName(), Value: token}
}

// replyBody builds a reply form: the text, then each file (name, type,
// content).
func replyBody(t testing.TB, text string, files ...[3]string) (string, *bytes.Buffer) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if err := mw.WriteField("text", text); err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", `form-data; name="files"; filename="`+file[0]+`"`)
		if file[1] != "" {
			h.Set("Content-Type", file[1])
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(file[2]))
	}
	// An empty "Take a photo" input, as browsers send it.
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", `form-data; name="photo"; filename=""`)
	h.Set("Content-Type", "application/octet-stream")
	mw.CreatePart(h)
	mw.Close()
	return mw.FormDataContentType(), &b
}

// browser is a client with a cookie jar against a real TLS server, that
// does not follow redirects, so that each step is seen.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, h http.Handler) *browser {
	ts := httptest.NewTLSServer(h)
	t.Cleanup(ts.Close)
	jar, _ := cookiejar.New(nil)
	c := ts.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, base: ts.URL, c: c}
}

func (b *browser) do(r *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(r)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, string(body)
}

func (b *browser) get(path string, header ...string) (*http.Response, string) {
	r, _ := http.NewRequest("GET", b.base+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return b.do(r)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	r, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(r)
}

// seeOther checks a 303 to want.
func seeOther(t *testing.T, step string, resp *http.Response, body, want string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
		t.Fatalf("%s: %d to %q, want 303 to %q\n%s", step, resp.StatusCode, resp.Header.Get("Location"), want, body)
	}
}

func mustContain(t *testing.T, step, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s: page lacks %q", step, w)
		}
	}
}

func mustNotContain(t *testing.T, step, body string, bad ...string) {
	t.Helper()
	for _, w := range bad {
		if strings.Contains(strings.ToLower(body), strings.ToLower(w)) {
			t.Errorf("%s: page has %q", step, w)
		}
	}
}

// TestFlow walks a patient through the portal over HTTPS with a cookie
// jar: first visit, password, conversation, a ranged download, a reply
// with a file, logout, login, lockout, reset, inbox.
func TestFlow(t *testing.T) {
	f := newFixture(t, nil)
	b := newBrowser(t, f.srv)
	conv := "/c/1"

	// First visit: the link asks for a password and shows no content.
	resp, body := b.get("/m/" + tokenA)
	if resp.StatusCode != 200 {
		t.Fatalf("link: %d", resp.StatusCode)
	}
	mustContain(t, "link", body, "North &lt;Clinic&gt;", "Choose a password", `action="/m/`+tokenA+`/setup"`, `autocomplete="new-password"`)
	mustNotContain(t, "link", body, "BODY-MARKER", "BODY-SUBJECT", "results.pdf", "jane@clinic.example")

	// Weak passwords are refused, in words.
	for _, tc := range []struct{ pw, confirm, want string }{
		{"short", "short", "at least 10 characters"},
		{"1234567890", "1234567890", "most common"},
		{"Password123", "Password123", "most common"},
		{password, password + "x", "not the same"},
	} {
		resp, body = b.post("/m/"+tokenA+"/setup", url.Values{"password": {tc.pw}, "confirm": {tc.confirm}, "email": {"ana@example.org"}})
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("setup %q: %d", tc.pw, resp.StatusCode)
		}
		mustContain(t, "setup "+tc.pw, body, tc.want, `value="ana@example.org"`)
	}
	resp, body = b.post("/m/"+tokenA+"/setup", url.Values{"password": {password}, "confirm": {password}, "email": {"not an address"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("setup with a bad email: %d", resp.StatusCode)
	}
	mustContain(t, "setup bad email", body, "like name@example.com")

	resp, body = b.post("/m/"+tokenA+"/setup", url.Values{"password": {password}, "confirm": {password}, "email": {"ana@example.org"}})
	seeOther(t, "setup", resp, body, conv)

	// The conversation.
	resp, body = b.get(conv)
	if resp.StatusCode != 200 {
		t.Fatalf("conversation: %d", resp.StatusCode)
	}
	mustContain(t, "conversation", body,
		"Dr Jane Roe", "jane@clinic.example", "Your results BODY-SUBJECT", "BODY-MARKER",
		// +1 212 is New York's: 14:05 UTC is 09:05 there, and one zone
		// needs no abbreviation.
		`<time datetime="2026-03-02T14:05:00Z" data-tz="America/New_York">Mon 2 Mar 2026, 09:05</time>`,
		`src="/c/1/m/2/p/2?inline=1"`, // the cid: image, from the store
		`href="https://example.org/info" rel="noopener noreferrer nofollow"`,
		"results.pdf", "PDF, 1.0 MB", `href="/c/1/m/2/p/3"`,
		`enctype="multipart/form-data"`, `type="file" id="files" name="files" multiple accept="image/*,application/pdf`,
		`accept="image/*" capture="environment"`, "Log out")
	mustNotContain(t, "conversation", body, "TEXT-ONLY", "SECRET-OF-B")
	if strings.Count(body, "/p/2") != 1 {
		t.Error("the inline image shown in the HTML is listed again as a file")
	}

	// A Range request reads only the range.
	f.st.read.Store(0)
	resp, body = b.get(conv+"/m/2/p/3", "Range", "bytes=100-199")
	if resp.StatusCode != http.StatusPartialContent || body != string(f.pdf[100:200]) {
		t.Fatalf("range: %d, %d bytes", resp.StatusCode, len(body))
	}
	for h, want := range map[string]string{
		"Content-Type":           "application/pdf",
		"Content-Disposition":    `attachment; filename="results.pdf"; filename*=UTF-8''results.pdf`,
		"X-Content-Type-Options": "nosniff",
		"Cache-Control":          "private, no-store",
		"Content-Range":          "bytes 100-199/1048585",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("download %s = %q, want %q", h, got, want)
		}
	}
	if n := f.st.read.Load(); n > 4096 {
		t.Errorf("a 100-byte range read %d bytes of the part", n)
	}
	resp, body = b.get(conv + "/m/2/p/3")
	if resp.StatusCode != 200 || body != string(f.pdf) {
		t.Errorf("download: %d, %d bytes", resp.StatusCode, len(body))
	}
	resp, _ = b.get(conv + "/m/2/p/2?inline=1")
	if resp.Header.Get("Content-Disposition") != "inline" || resp.Header.Get("Content-Type") != "image/png" ||
		resp.Header.Get("Content-Security-Policy") != "default-src 'none'; sandbox" {
		t.Errorf("preview: %v", resp.Header)
	}

	// A reply with a text and a photo.
	ctype, form := replyBody(t, "Thank you, REPLY-MARKER", [3]string{"photo 1.png", "image/png", string(f.png)})
	r, _ := http.NewRequest("POST", b.base+conv+"/reply", form)
	r.Header.Set("Content-Type", ctype)
	resp, body = b.do(r)
	msgs := f.st.messages(f.convA.ID)
	reply := msgs[len(msgs)-1]
	id := itoa(reply.ID)
	seeOther(t, "reply", resp, body, conv+"#m"+id)
	if len(reply.Parts) != 2 || reply.Parts[0].Kind != securetextd.PartText ||
		reply.Parts[1].Kind != securetextd.PartAttachment || reply.Parts[1].Filename != "photo 1.png" ||
		reply.Parts[1].ContentType != "image/png" || !bytes.Equal(f.st.partContent(reply.ID, 1), f.png) {
		t.Fatalf("reply stored as %+v", reply.Parts)
	}
	_, body = b.get(conv)
	mustContain(t, "after reply", body, `id="m`+id+`"`, `<p class="from">You</p>`, "REPLY-MARKER", "photo 1.png", `src="/c/1/m/`+id+`/p/1?inline=1"`)

	// Log out: the conversation is gone from this browser.
	resp, body = b.post("/logout", nil)
	mustContain(t, "logout", body, "You are logged out")
	if resp.StatusCode != 200 {
		t.Errorf("logout: %d", resp.StatusCode)
	}
	if resp, _ = b.get(conv); resp.StatusCode != http.StatusNotFound {
		t.Errorf("conversation after logout: %d", resp.StatusCode)
	}

	// Log in again.
	_, body = b.get("/m/" + tokenA)
	mustContain(t, "link again", body, "Enter your password", `autocomplete="current-password"`, `href="/reset"`)
	resp, body = b.post("/m/"+tokenA+"/login", url.Values{"password": {password}})
	seeOther(t, "login", resp, body, conv)
	// While signed in, the link goes straight to the conversation.
	resp, body = b.get("/m/" + tokenA)
	seeOther(t, "link while signed in", resp, body, conv)
	b.post("/logout", nil)

	// Five wrong passwords lock logins out, even with the right one.
	for i := 1; i <= 5; i++ {
		resp, body = b.post("/m/"+tokenA+"/login", url.Values{"password": {"wrong password " + string(rune('0'+i))}})
		if i < 5 && resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i, resp.StatusCode)
		}
	}
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fifth wrong password: %d", resp.StatusCode)
	}
	mustContain(t, "lockout", body, "Too many wrong tries", "Try again in 15 minutes.")
	resp, _ = b.post("/m/"+tokenA+"/login", url.Values{"password": {password}})
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("right password while locked: %d", resp.StatusCode)
	}

	// Reset: the request page answers alike for any number.
	_, body = b.get("/reset")
	mustContain(t, "reset form", body, `type="tel"`, `<label for="phone">`)
	_, unknown := b.post("/reset", url.Values{"phone": {"+12125550000"}})
	_, known := b.post("/reset", url.Values{"phone": {string(phoneA)}})
	if known != unknown {
		t.Error("the reset page differs for a number with an account")
	}
	token := f.st.mailedToken(phoneA)
	if token == "" {
		t.Fatal("no reset link sent")
	}
	resp, body = b.get("/reset/" + token)
	if resp.StatusCode != 200 {
		t.Fatalf("reset link: %d", resp.StatusCode)
	}
	mustContain(t, "reset link", body, "Choose a new password", `action="/reset/`+token+`"`)
	resp, body = b.post("/reset/"+token, url.Values{"password": {"qwertyuiop"}, "confirm": {"qwertyuiop"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("weak reset: %d", resp.StatusCode)
	}
	mustContain(t, "weak reset", body, "most common")
	resp, body = b.post("/reset/"+token, url.Values{"password": {"a brand new passphrase"}, "confirm": {"a brand new passphrase"}})
	seeOther(t, "reset", resp, body, "/inbox")

	// The inbox lists the conversation, signed in.
	resp, body = b.get("/inbox")
	if resp.StatusCode != 200 {
		t.Fatalf("inbox: %d", resp.StatusCode)
	}
	mustContain(t, "inbox", body, `href="/c/1"`, "You replied")
	mustNotContain(t, "inbox", body, "For B only")

	// The reset link works once.
	resp, body = b.get("/reset/" + token)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("used reset link: %d", resp.StatusCode)
	}
	mustContain(t, "used reset link", body, "This reset link has expired or was used")

	// The log says what happened, masked, and never holds a token, a
	// password, content or a whole phone number.
	logs := f.logs.String()
	mustContain(t, "log", logs, "password set", "login failed", "reply", "password reset", phoneA.Masked())
	secrets := []string{tokenA, token, password, "a brand new passphrase", "wrong password", "BODY-MARKER", "BODY-SUBJECT",
		"REPLY-MARKER", "results.pdf", "photo 1.png", string(phoneA), "ana@example.org"}
	u, _ := url.Parse(b.base)
	for _, c := range b.c.Jar.Cookies(u) {
		secrets = append(secrets, c.Value)
	}
	mustNotContain(t, "log", logs, secrets...)
}

// TestHTMLBodiesRenderInert shows hostile HTML bodies and checks the page
// served: nothing runs, nothing is fetched from elsewhere.
func TestHTMLBodiesRenderInert(t *testing.T) {
	for name, html := range map[string]string{
		"script":     `<p>hi</p><script>alert(1)</script><SCRIPT SRC=https://evil.example/x.js></SCRIPT>`,
		"handlers":   `<img src="cid:scan@x" onerror="alert(1)"><p onclick="alert(2)">x</p><a href="https://ok.example/" onmouseover="alert(3)">ok</a><body onload=alert(4)>`,
		"javascript": `<a href="javascript:alert(1)">a</a><a href="JaVaScRiPt:alert(1)">b</a><a href="&#106;avascript:alert(1)">c</a><a href=" javascript:alert(1)">d</a><a href="vbscript:x">e</a>`,
		"svg":        `<svg onload="alert(1)"><script>alert(2)</script><image href="https://evil.example/x.png"/><a xlink:href="javascript:alert(3)">s</a></svg><math><mi xlink:href="javascript:alert(1)">m</mi></math>`,
		"css":        `<p style="background:url(https://evil.example/a.png)">x</p><style>@import "https://evil.example/s.css"; body{background:url(https://evil.example/b.png)}</style><div style="width:expression(alert(1))">y</div>`,
		"remote images": `<img src="https://evil.example/track.gif"><img src="//evil.example/t.gif"><img src="/logout"><img srcset="https://evil.example/1.png 1x">` +
			`<picture><source srcset="https://evil.example/s.png"></picture><table background="https://evil.example/bg.png"><tr><td>t</td></tr></table><video poster="https://evil.example/p.png"></video>`,
		"forms and frames": `<form action="https://evil.example/steal"><input name=p type=password><button formaction="https://evil.example">go</button></form>` +
			`<iframe src="https://evil.example"></iframe><object data="https://evil.example/x"></object><embed src="https://evil.example/y">`,
		"head":             `<html><head><meta http-equiv="refresh" content="0;url=https://evil.example"><base href="https://evil.example/"><link rel=stylesheet href="https://evil.example/s.css"><title>evil.example</title></head><body>b</body></html>`,
		"data":             `<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+"><a href="data:text/html,<script>alert(1)</script>">x</a>`,
		"cid link and ids": `<a href="cid:scan@x">c</a><p id="reply">clobber</p><a href="#reply">r</a>`,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, nil)
			m := f.st.addMessage(f.convA.ID, &securetextd.Message{Sender: "x@clinic.example", Subject: "attack"},
				testPart{securetextd.Part{Kind: securetextd.PartHTML, ContentType: "text/html"}, []byte(html)},
				testPart{securetextd.Part{Kind: securetextd.PartInline, ContentType: "image/png", ContentID: "scan@x"}, f.png})
			w := f.get("/c/1", f.login(phoneA))
			if w.Code != 200 {
				t.Fatalf("%d", w.Code)
			}
			body := w.Body.String()
			// Only this message's body: the page's own forms are fine.
			i := strings.Index(body, `id="m`+itoa(m.ID)+`"`)
			msg := body[i:]
			msg = msg[:strings.Index(msg, "</article>")]
			mustNotContain(t, name, msg, "<script", "onerror", "onclick", "onload", "onmouseover", "javascript:", "vbscript:",
				"<svg", "<math", "<style", "style=", "url(", "@import", "expression(", "evil.example", "<form", "<input", "<button",
				"<iframe", "<object", "<embed", "<meta", "<base", "<link", "http-equiv", "data:", "srcset", "poster", "background=",
				`id="reply"`, `src="/logout"`, `href="cid:`)
			if name == "handlers" {
				mustContain(t, name, msg, `<img src="/c/1/m/`+itoa(m.ID)+`/p/1?inline=1">`,
					`<a href="https://ok.example/" rel="noopener noreferrer nofollow">ok</a>`)
			}
			if !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'none'") {
				t.Error("no CSP")
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestTextBodies(t *testing.T) {
	f := newFixture(t, nil)
	f.st.addMessage(f.convA.ID, &securetextd.Message{Sender: "x@clinic.example"},
		testPart{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain", Damaged: true},
			[]byte("See https://example.org/a?b=1&c=2. Or (https://example.org/x). <b>not bold</b> javascript:alert(1) \xff")})
	body := f.get("/c/1", f.login(phoneA)).Body.String()
	mustContain(t, "text", body,
		`<a href="https://example.org/a?b=1&amp;c=2" rel="noopener noreferrer nofollow">https://example.org/a?b=1&amp;c=2</a>. Or (`,
		`<a href="https://example.org/x" rel="noopener noreferrer nofollow">https://example.org/x</a>)`,
		"&lt;b&gt;not bold&lt;/b&gt;", "Incomplete: damaged in transit.")
	mustNotContain(t, "text", body, `href="javascript`, "<b>not bold")
}

// TestHostileFilenames checks that filenames are shown as text and
// downloaded under a safe name.
func TestHostileFilenames(t *testing.T) {
	f := newFixture(t, nil)
	names := []string{
		`"><img src=x onerror=alert(1)>.pdf`,
		`../../etc/passwd`,
		`..\..\windows\win.ini`,
		"résumé \"final\";.pdf\r\nX-Evil: 1",
		"\u202Egnp.exe",
	}
	var parts []testPart
	for _, n := range names {
		parts = append(parts, testPart{securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "image/svg+xml", Filename: n}, []byte("<svg onload=alert(1)>")})
	}
	m := f.st.addMessage(f.convA.ID, &securetextd.Message{Sender: "x@clinic.example"}, parts...)
	cookie := f.login(phoneA)
	body := f.get("/c/1", cookie).Body.String()
	mustContain(t, "page", body, `&#34;&gt;&lt;img src=x onerror=alert(1)&gt;.pdf`)
	mustNotContain(t, "page", body, "<img src=x", "X-Evil: 1\r")
	for i, n := range names {
		w := f.get("/c/1/m/"+itoa(m.ID)+"/p/"+itoa(int64(i)), cookie)
		cd := w.Header().Get("Content-Disposition")
		if strings.ContainsAny(cd, "\r\n") || strings.Count(cd, `"`) != 2 {
			t.Errorf("%q: Content-Disposition %q", n, cd)
		}
		disp, params, err := mime.ParseMediaType(cd)
		if err != nil || disp != "attachment" {
			t.Fatalf("%q: %q: %v", n, cd, err)
		}
		got := params["filename"]
		if got == "" || strings.ContainsAny(got, "/\\\r\n\u202E") || strings.HasPrefix(got, ".") {
			t.Errorf("%q downloads as %q", n, got)
		}
		if w.Header().Get("Content-Type") != "application/octet-stream" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%q: served as %q", n, w.Header().Get("Content-Type"))
		}
		// ?inline=1 makes no difference to an SVG.
		w = f.get("/c/1/m/"+itoa(m.ID)+"/p/"+itoa(int64(i))+"?inline=1", cookie)
		if !strings.HasPrefix(w.Header().Get("Content-Disposition"), "attachment;") {
			t.Errorf("SVG served inline: %q", w.Header().Get("Content-Disposition"))
		}
	}
	if got := cleanFilename("../../etc/passwd"); got != "_.._etc_passwd" {
		t.Errorf("cleanFilename = %q", got)
	}
}

func TestContentDisposition(t *testing.T) {
	for name, want := range map[string]string{
		"results.pdf":        `attachment; filename="results.pdf"; filename*=UTF-8''results.pdf`,
		"résumé 1.pdf":       `attachment; filename="r_sum_ 1.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%201.pdf`,
		`a"b\c;d%e.txt`:      `attachment; filename="a_b_c_d_e.txt"; filename*=UTF-8''a%22b%5Cc%3Bd%25e.txt`,
		"日本.pdf":             `attachment; filename="download.pdf"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.pdf`,
		"x\x00y\x7f.bin":     `attachment; filename="x_y_.bin"; filename*=UTF-8''x%00y%7F.bin`,
		"plain name (1).jpg": `attachment; filename="plain name (1).jpg"; filename*=UTF-8''plain%20name%20%281%29.jpg`,
	} {
		if got := contentDisposition(name); got != want {
			t.Errorf("%q:\n got %s\nwant %s", name, got, want)
		}
	}
}

// TestCrossSitePostsRefused sends every POST route from another site.
func TestCrossSitePostsRefused(t *testing.T) {
	f := newFixture(t, nil)
	cookie := f.login(phoneA)
	f.st.RequestPasswordReset(t.Context(), phoneA, time.Hour)
	reset := f.st.mailedToken(phoneA)
	f.st.Calls()
	routes := []string{"/m/" + tokenA + "/setup", "/m/" + tokenA + "/login", "/logout", "/c/1/reply", "/reset", "/reset/" + reset}
	for _, path := range routes {
		for _, hdr := range [][2]string{
			{"Sec-Fetch-Site", "cross-site"},
			{"Sec-Fetch-Site", "same-site"},
			{"Origin", "https://evil.example"},
		} {
			r := httptest.NewRequest("POST", "https://portal.test"+path,
				strings.NewReader(url.Values{"password": {password}, "confirm": {password}, "email": {"a@b.example"}, "phone": {string(phoneA)}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set(hdr[0], hdr[1])
			r.AddCookie(cookie)
			w := f.do(r)
			if w.Code != http.StatusForbidden {
				t.Errorf("%s with %s: %d", path, hdr, w.Code)
			}
			mustContain(t, path, w.Body.String(), "sent from another website")
			mustNotContain(t, path, f.logs.String(), tokenA, reset)
			if calls := f.st.Calls(); len(calls) > 0 {
				t.Errorf("%s with %s reached the store: %v", path, hdr, calls)
			}
		}
	}
	// The same form from the portal's own page goes through.
	r := httptest.NewRequest("POST", "https://portal.test/logout", nil)
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Origin", "https://portal.test")
	r.AddCookie(cookie)
	if w := f.do(r); w.Code != 200 {
		t.Errorf("same-origin logout: %d", w.Code)
	}
}

// TestNotFoundLooksAlike checks that everything a stranger might try gets
// the very same 404 page.
func TestNotFoundLooksAlike(t *testing.T) {
	f := newFixture(t, nil)
	cookieB := f.login(phoneB)
	first := f.get("/no/such/page")
	if first.Code != http.StatusNotFound {
		t.Fatalf("%d", first.Code)
	}
	for _, tc := range []struct {
		path   string
		cookie *http.Cookie
	}{
		{"/m/nope", nil},
		{"/m/" + tokenA[:len(tokenA)-1] + "B", nil}, // altered
		{"/m/" + tokenA + "A", nil},
		{"/m/" + strings.Repeat("a", 5000), nil},
		{"/m/%00%ff", nil},
		{"/m/a.b", nil},
		{"/m/", nil},
		{"/c/1", nil},
		{"/c/1", cookieB},         // another phone's conversation
		{"/c/1/m/2/p/3", cookieB}, // and its file
		{"/c/2/m/2/p/3", cookieB}, // a message of another conversation
		{"/c/" + itoa(f.convB.ID) + "/m/2/p/3", cookieB},
		{"/c/" + itoa(f.convB.ID) + "/m/999/p/0", cookieB},
		{"/c/" + itoa(f.convB.ID) + "/m/4/p/9", cookieB}, // no such part
		{"/c/999", cookieB},
		{"/c/abc", cookieB},
		{"/c/-1", cookieB},
		{"/static/", nil},
		{"/templates/layout.html", nil},
		{"/brand/logo", nil}, // no logo configured
		{"/debug/pprof/", nil},
	} {
		var cookies []*http.Cookie
		if tc.cookie != nil {
			cookies = append(cookies, tc.cookie)
		}
		w := f.get(tc.path, cookies...)
		if w.Code != http.StatusNotFound || w.Body.String() != first.Body.String() {
			t.Errorf("%s: %d, same page: %v", tc.path, w.Code, w.Body.String() == first.Body.String())
		}
	}
	// Posting to another phone's conversation stores nothing.
	ctype, form := replyBody(t, "hello")
	r := httptest.NewRequest("POST", "https://portal.test/c/1/reply", form)
	r.Header.Set("Content-Type", ctype)
	r.AddCookie(cookieB)
	if w := f.do(r); w.Code != http.StatusNotFound || w.Body.String() != first.Body.String() {
		t.Errorf("reply to another phone's conversation: %d", w.Code)
	}
	for _, c := range f.st.Calls() {
		if c == "SaveReply" || c == "OpenPart" {
			t.Errorf("another phone's session reached %s", c)
		}
	}
}

func TestReplyOverLimit(t *testing.T) {
	for name, files := range map[string][][3]string{
		"one file":         {{"big.jpg", "image/jpeg", strings.Repeat("x", 2<<20)}},
		"the second file":  {{"a.jpg", "image/jpeg", strings.Repeat("x", 600<<10)}, {"b.jpg", "image/jpeg", strings.Repeat("y", 600<<10)}},
		"many small files": {{"a", "", strings.Repeat("a", 400<<10)}, {"b", "", strings.Repeat("b", 400<<10)}, {"c", "", strings.Repeat("c", 400<<10)}},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.MaxReplyBytes = 1 << 20 })
			before := len(f.st.messages(f.convA.ID))
			ctype, form := replyBody(t, "see attached", files...)
			r := httptest.NewRequest("POST", "https://portal.test/c/1/reply", form)
			r.Header.Set("Content-Type", ctype)
			r.AddCookie(f.login(phoneA))
			w := f.do(r)
			if w.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("%d\n%s", w.Code, w.Body)
			}
			mustContain(t, "413", w.Body.String(), "Your reply is over 1.0 MB", "nothing was sent", `action="/c/1/reply"`)
			var tooBig *http.MaxBytesError
			if err := f.st.lastSaveErr(); err == nil || !errors.As(err, &tooBig) {
				t.Errorf("SaveReply saw %v", err)
			}
			if after := len(f.st.messages(f.convA.ID)); after != before {
				t.Errorf("a reply over the limit was stored")
			}
		})
	}
}

func TestReplyForms(t *testing.T) {
	f := newFixture(t, nil)
	cookie := f.login(phoneA)
	send := func(ctype string, body io.Reader) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "https://portal.test/c/1/reply", body)
		r.Header.Set("Content-Type", ctype)
		r.AddCookie(cookie)
		return f.do(r)
	}
	// Nothing written, nothing chosen: the form says so, nothing stored.
	ctype, form := replyBody(t, "  \r\n ", [3]string{"", "application/octet-stream", ""})
	w := send(ctype, form)
	if w.Code != http.StatusBadRequest || f.st.lastSaveErr() != nil {
		t.Errorf("empty reply: %d", w.Code)
	}
	mustContain(t, "empty", w.Body.String(), "Write a reply or add a file")
	// A file without a declared type is sniffed; its name loses its path.
	ctype, form = replyBody(t, "", [3]string{"../../x/scan.pdf", "", "%PDF-1.7 ..."}, [3]string{"pic", "application/octet-stream", string(f.png)})
	w = send(ctype, form)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("files only: %d %s", w.Code, w.Body)
	}
	msgs := f.st.messages(f.convA.ID)
	got := msgs[len(msgs)-1].Parts
	if len(got) != 2 || got[0].ContentType != "application/pdf" || got[0].Filename != "scan.pdf" || got[1].ContentType != "image/png" {
		t.Errorf("stored %+v", got)
	}
	// Not multipart at all.
	if w := send("application/x-www-form-urlencoded", strings.NewReader("text=hi")); w.Code != http.StatusBadRequest {
		t.Errorf("urlencoded reply: %d", w.Code)
	}
	// A form cut short: nothing stored.
	ctype, form = replyBody(t, "hello", [3]string{"a.png", "image/png", string(f.png)})
	n := len(f.st.messages(f.convA.ID))
	w = send(ctype, bytes.NewReader(form.Bytes()[:form.Len()-200]))
	if w.Code != http.StatusBadRequest || len(f.st.messages(f.convA.ID)) != n {
		t.Errorf("truncated form: %d", w.Code)
	}
}

func TestSessionCookie(t *testing.T) {
	for _, secure := range []bool{true, false} {
		f := newFixture(t, func(c *Config) { c.Secure = secure })
		f.st.CreateRecipient(t.Context(), phoneA, password, "ana@example.org")
		w := f.post("/m/"+tokenA+"/login", url.Values{"password": {password}})
		if w.Code != http.StatusSeeOther {
			t.Fatalf("login: %d", w.Code)
		}
		sc := w.Header().Get("Set-Cookie")
		name := "session="
		if secure {
			name = "__Host-session="
		}
		if !strings.HasPrefix(sc, name) {
			t.Errorf("secure=%v: cookie %q", secure, sc)
		}
		for _, attr := range []string{"Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=43200"} {
			if !strings.Contains(sc, attr) {
				t.Errorf("secure=%v: cookie lacks %s: %q", secure, attr, sc)
			}
		}
		if strings.Contains(sc, "Domain=") || strings.Contains(sc, "Secure") != secure {
			t.Errorf("secure=%v: cookie %q", secure, sc)
		}
		if hsts := w.Header().Get("Strict-Transport-Security"); (hsts != "") != secure {
			t.Errorf("secure=%v: HSTS %q", secure, hsts)
		}
		// The token is the store's session, and logout ends it there.
		token := strings.TrimPrefix(strings.SplitN(sc, ";", 2)[0], name)
		if _, err := f.st.Session(t.Context(), token, time.Hour, time.Hour); err != nil {
			t.Errorf("cookie is not a session: %v", err)
		}
		w = f.post("/logout", nil, &http.Cookie{Name: f.srv.cookieName(), Value: token})
		if sc := w.Header().Get("Set-Cookie"); !strings.Contains(sc, "Max-Age=0") {
			t.Errorf("logout cookie %q", sc)
		}
		if _, err := f.st.Session(t.Context(), token, time.Hour, time.Hour); err == nil {
			t.Error("logout left the session alive")
		}
	}
}

// TestHeadersAndSizes checks the security headers and size of every page.
func TestHeadersAndSizes(t *testing.T) {
	f := newFixture(t, nil)
	cookie := f.login(phoneA)
	for i := range 2 {
		f.st.addMessage(f.convA.ID, &securetextd.Message{Sender: "jane@clinic.example", SenderName: "Dr Jane Roe", Subject: "Follow-up " + itoa(int64(i))},
			testPart{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, []byte(strings.Repeat("A paragraph of a normal letter. ", 60))},
			testPart{securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "image/jpeg", Filename: "photo.jpg"}, []byte("jpeg")},
			testPart{securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/pdf", Filename: "letter.pdf"}, []byte("%PDF")})
	}
	f.st.RequestPasswordReset(t.Context(), phoneA, time.Hour)
	reset := f.st.mailedToken(phoneA)
	pages := []struct {
		method, path string
		cookie       bool
		html         bool
	}{
		{"GET", "/", false, true},
		{"GET", "/m/" + tokenA, false, true},
		{"GET", "/m/" + tokenB, false, true},
		{"GET", "/nope", false, true},
		{"GET", "/c/1", true, true},
		{"GET", "/inbox", true, true},
		{"GET", "/inbox", false, true},
		{"GET", "/reset", false, true},
		{"GET", "/reset/" + reset, false, true},
		{"GET", "/reset/expired", false, true},
		{"POST", "/reset", false, true},
		{"POST", "/m/" + tokenA + "/login", false, true},
		{"POST", "/m/" + tokenB + "/setup", false, true},
		{"GET", "/c/1/m/2/p/3", true, false},
		{"GET", "/c/1/m/2/p/2?inline=1", true, false},
		{"GET", "/static/style.css", false, false},
		{"GET", "/brand.css", false, false},
	}
	for _, p := range pages {
		var w *httptest.ResponseRecorder
		var cookies []*http.Cookie
		if p.cookie {
			cookies = append(cookies, cookie)
		}
		if p.method == "GET" {
			w = f.get(p.path, cookies...)
		} else {
			w = f.post(p.path, url.Values{"password": {"x"}, "phone": {"+1"}}, cookies...)
		}
		h := w.Header()
		for k, want := range map[string]string{
			"X-Content-Type-Options":    "nosniff",
			"Referrer-Policy":           "no-referrer",
			"X-Frame-Options":           "DENY",
			"Strict-Transport-Security": "max-age=63072000",
		} {
			if h.Get(k) != want {
				t.Errorf("%s %s: %s = %q", p.method, p.path, k, h.Get(k))
			}
		}
		csp := h.Get("Content-Security-Policy")
		if !strings.HasPrefix(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s %s: CSP %q", p.method, p.path, csp)
		}
		if p.html {
			if h.Get("Cache-Control") != "no-store" || h.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Errorf("%s %s: %q %q", p.method, p.path, h.Get("Cache-Control"), h.Get("Content-Type"))
			}
			body := w.Body.String()
			mustContain(t, p.path, body, `<html lang="en">`, "North &lt;Clinic&gt;", `name="viewport"`)
			// Script only from the portal's own files, never inline.
			mustNotContain(t, p.path, ownScripts.ReplaceAllString(body, ""), "<script", "style=")
			if w.Body.Len() >= 50_000 {
				t.Errorf("%s %s: %d bytes", p.method, p.path, w.Body.Len())
			}
		}
		if p.path == "/c/1" {
			if n := strings.Count(w.Body.String(), "<article"); n != 3 {
				t.Errorf("conversation shows %d messages", n)
			}
			t.Logf("conversation page of 3 messages: %d bytes", w.Body.Len())
		}
	}
	// Every input has a label.
	for _, path := range []string{"/m/" + tokenB, "/reset", "/reset/" + reset} {
		body := f.get(path).Body.String()
		for _, id := range []string{"password", "confirm", "email", "phone"} {
			if strings.Contains(body, `id="`+id+`"`) && !strings.Contains(body, `<label for="`+id+`">`) {
				t.Errorf("%s: input %s without a label", path, id)
			}
		}
	}
	body := f.get("/c/1", cookie).Body.String()
	for _, id := range []string{"text", "files", "photo"} {
		if !strings.Contains(body, `<label for="`+id+`">`) {
			t.Errorf("conversation: input %s without a label", id)
		}
	}
	if css := f.get("/static/style.css"); css.Body.Len() > 8<<10 {
		t.Errorf("stylesheet is %d bytes", css.Body.Len())
	}
}

// TestLinkNeverChangesState fetches links as a preview bot and as the
// recipient: no mutating store method is called.
func TestLinkNeverChangesState(t *testing.T) {
	f := newFixture(t, nil)
	cookieA := f.login(phoneA)
	cookieB := f.login(phoneB)
	allowed := map[string]bool{"ConversationByToken": true, "Session": true, "Recipient": true}
	for _, tc := range []struct {
		path   string
		cookie *http.Cookie
		code   int
	}{
		{"/m/" + tokenA, nil, 200},
		{"/m/" + tokenA, cookieA, 303},
		{"/m/" + tokenA, cookieB, 200},
		{"/m/nope", nil, 404},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			r := httptest.NewRequest(method, "https://portal.test"+tc.path, nil)
			if tc.cookie != nil {
				r.AddCookie(tc.cookie)
			}
			if w := f.do(r); w.Code != tc.code {
				t.Errorf("%s %s: %d, want %d", method, tc.path, w.Code, tc.code)
			}
			for _, c := range f.st.Calls() {
				if !allowed[c] {
					t.Errorf("%s %s called %s", method, tc.path, c)
				}
			}
		}
	}
	// A POST to the link itself is not a route.
	if w := f.post("/m/"+tokenA, url.Values{"password": {password}}); w.Code != http.StatusNotFound {
		t.Errorf("POST to a link: %d", w.Code)
	}
}

func TestResetRequestAnswersAlike(t *testing.T) {
	f := newFixture(t, nil)
	f.login(phoneA)
	var pages []string
	for _, phone := range []string{string(phoneA), "+12125550000", "not a number", "", string(phoneA), string(phoneA), string(phoneA), string(phoneA)} {
		w := f.post("/reset", url.Values{"phone": {phone}})
		if w.Code != 200 {
			t.Errorf("%q: %d", phone, w.Code)
		}
		pages = append(pages, w.Body.String())
	}
	for i, p := range pages {
		if p != pages[0] {
			t.Errorf("request %d answered differently", i)
		}
	}
	mustContain(t, "reset", pages[0], "If this phone number has an account", "30 minutes")
	n := 0
	for _, c := range f.st.Calls() {
		if c == "RequestPasswordReset" {
			n++
		}
	}
	if n != 5 { // five numbers from one address, then it waits
		t.Errorf("RequestPasswordReset called %d times, want 5", n)
	}
	// A used or unknown token looks like a 404 with one line more.
	w := f.get("/reset/unknownToken")
	if w.Code != http.StatusNotFound {
		t.Errorf("unknown reset token: %d", w.Code)
	}
	mustContain(t, "reset token", w.Body.String(), "This reset link has expired or was used", "This page is not available")
	w = f.post("/reset/unknownToken", url.Values{"password": {password}, "confirm": {password}})
	if w.Code != http.StatusNotFound {
		t.Errorf("POST unknown reset token: %d", w.Code)
	}
}

func TestStoreFailureIsGeneric(t *testing.T) {
	f := newFixture(t, nil)
	f.st.failLinks = errorString("database is locked at /var/lib/securetextd/db")
	w := f.get("/m/" + tokenA)
	if w.Code != http.StatusInternalServerError {
		t.Errorf("%d", w.Code)
	}
	mustNotContain(t, "500", w.Body.String(), "locked", "/var/lib")
	mustContain(t, "500", w.Body.String(), "tell the sender this code")
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestConfig(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, mod := range map[string]func(*Config){
		"colour":        func(c *Config) { c.Color = "red" },
		"css in colour": func(c *Config) { c.Color = "#123456;}body{x:url(//e)" },
		"svg logo":      func(c *Config) { c.Logo = []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>`) },
		"html logo":     func(c *Config) { c.Logo = []byte(`<html><script>alert(1)</script>`) },
		"big logo":      func(c *Config) { c.Logo = append(pngImage(t), make([]byte, MaxLogoBytes)...) },
		"no org":        func(c *Config) { c.Org = "" },
		"no parser":     func(c *Config) { c.ParsePhone = nil },
	} {
		cfg := testConfig()
		mod(&cfg)
		if _, err := New(cfg, newFakeStore(), logger); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	f := newFixture(t, func(c *Config) { c.Color = "#FFEE00"; c.Logo = pngImage(t) })
	w := f.get("/brand.css")
	mustContain(t, "brand.css", w.Body.String(), "--brand: #FFEE00", "--on-brand: #111")
	if w.Header().Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("brand.css: %q", w.Header().Get("Content-Type"))
	}
	w = f.get("/brand/logo")
	if w.Code != 200 || w.Header().Get("Content-Type") != "image/png" || !bytes.Equal(w.Body.Bytes(), pngImage(t)) {
		t.Errorf("logo: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	mustContain(t, "logo", f.get("/").Body.String(), `<img class="logo" src="/brand/logo" alt="">`)
	if s := string(brandCSS("#1d4e89")); !strings.Contains(s, "--on-brand: #fff") {
		t.Errorf("dark brand: %s", s)
	}
}

func TestPasswordPolicy(t *testing.T) {
	for pw, ok := range map[string]bool{
		"short":                  false,
		"nine char":              false,
		"ten chars!":             true,
		"1234567890":             false,
		"QWERTYUIOP":             false,
		"Basketball":             false,
		"éééééééééé":             true,
		strings.Repeat("a", 257): false,
		"correct horse battery":  true,
	} {
		if got := checkPassword(pw, pw) == ""; got != ok {
			t.Errorf("%q: accepted %v, want %v", pw, got, ok)
		}
	}
	if len(commonPasswords) < 1000 {
		t.Errorf("only %d common passwords", len(commonPasswords))
	}
	for pw := range commonPasswords {
		if len([]rune(pw)) < minPasswordLen || pw != strings.ToLower(pw) {
			t.Errorf("list entry %q: shorter than the rule or not lowercase", pw)
		}
	}
	for addr, ok := range map[string]bool{
		"ana@example.org":         true,
		" ana@example.org ":       true,
		"Ana <ana@example.org>":   false,
		"ana@localhost":           false,
		"ana":                     false,
		"ana@example.org, b@c.de": false,
	} {
		if _, msg := checkEmail(addr); (msg == "") != ok {
			t.Errorf("%q: %q", addr, msg)
		}
	}
}

// ownScripts are the script elements a page may hold: the portal's own
// files, with nothing inline.
var ownScripts = regexp.MustCompile(`<script src="/static/(time|reply)\.js" defer></script>`)

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 bytes", 1: "1 byte", 999: "999 bytes", 1000: "1 KB", 1 << 10: "1 KB", 820 << 10: "840 KB",
		597_000: "597 KB", 999_499: "999 KB", 999_500: "1.0 MB", 1 << 20: "1.0 MB", 9_949_999: "9.9 MB",
		9_950_000: "10 MB", 25 << 20: "26 MB", 3 << 30: "3.2 GB",
	} {
		if got := english.Size(n); got != want {
			t.Errorf("%d: %q, want %q", n, got, want)
		}
	}
}
