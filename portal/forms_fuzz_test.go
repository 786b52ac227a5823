package portal

import (
	"bytes"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/securetextd/securetextd"
)

// The portal's forms are what a stranger holding a link can send: the
// first-visit form (password, recovery address) and the reply form
// (multipart, with files). The fuzz targets send arbitrary bodies through
// the real handlers over the fake store, and check what the store is
// given: nothing when the answer is an error; when it is stored, text
// that is valid UTF-8 within its limits, and filenames a phone can save.

// fuzzPortal is a portal over a fake store with one conversation, built
// once per fuzz worker: New parses every template.
type fuzzPortal struct {
	st     *fakeStore
	srv    *Server
	conv   *securetextd.Conversation
	cookie *http.Cookie
}

const fuzzMaxReply = 48 << 10 // small, so that the size limit is reached

func newFuzzPortal(f *testing.F) *fuzzPortal {
	cfg := testConfig()
	cfg.MaxReplyBytes = fuzzMaxReply
	p := &fuzzPortal{st: newFakeStore()}
	srv, err := New(cfg, p.st, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	p.srv = srv
	p.conv = p.st.addConversation(phoneA, "jane@clinic.example", tokenA)
	token, err := p.st.CreateSession(f.Context(), phoneA)
	if err != nil {
		f.Fatal(err)
	}
	p.cookie = &http.Cookie{Name: srv.cookieName(), Value: token}
	return p
}

// reset forgets replies and the recipient's password, keeping the session.
func (p *fuzzPortal) reset() {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.msgs[p.conv.ID] = nil
	p.st.content = make(map[int64][][]byte)
	delete(p.st.recipients, phoneA)
	p.st.calls = nil
}

func (p *fuzzPortal) serve(r *http.Request) *httptest.ResponseRecorder {
	r.RemoteAddr = "192.0.2.1:1234"
	w := httptest.NewRecorder()
	p.srv.ServeHTTP(w, r)
	return w
}

// seedForms reads testdata/forms/NAME-*.txt: a Content-Type line, an empty
// line, then the body as a browser sends it (CRLF line endings).
func seedForms(f *testing.F, prefix string) {
	files, err := filepath.Glob(filepath.Join("testdata", "forms", prefix+"-*.txt"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds testdata/forms/%s-*.txt: %v", prefix, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		ct, body, ok := bytes.Cut(b, []byte("\n\n"))
		if !ok {
			f.Fatalf("%s: no empty line after the Content-Type", name)
		}
		f.Add(string(bytes.TrimSpace(ct)), body)
	}
}

// FuzzReplyForm posts arbitrary reply forms. The answer is a redirect
// (stored), 400 (the recipient is told what to change) or 413 (too large),
// never a server error; a refused reply stores nothing, and a stored one
// holds only what the form allows.
func FuzzReplyForm(f *testing.F) {
	seedForms(f, "reply")
	p := newFuzzPortal(f)
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		p.reset()
		r := httptest.NewRequest("POST", "https://portal.test/c/"+itoa(p.conv.ID)+"/reply", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		r.AddCookie(p.cookie)
		w := p.serve(r)
		stored := p.st.messages(p.conv.ID)
		switch w.Code {
		case http.StatusSeeOther:
			if len(stored) != 1 {
				t.Fatalf("303 but %d replies stored", len(stored))
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if len(stored) != 0 {
				t.Fatalf("%d but a reply was stored", w.Code)
			}
			return
		default:
			t.Fatalf("status %d:\n%s", w.Code, w.Body)
		}
		m := stored[0]
		files, total := 0, 0
		for i, part := range m.Parts {
			content := p.st.partContent(m.ID, i)
			total += len(content)
			switch part.Kind {
			case securetextd.PartText:
				if len(content) == 0 || len(content) > maxReplyText || !utf8.Valid(content) || bytes.Contains(content, []byte("\r\n")) {
					t.Errorf("text part %q", content)
				}
			case securetextd.PartAttachment:
				files++
				checkFilename(t, part.Filename)
				if typ, _, err := mime.ParseMediaType(part.ContentType); err != nil || typ != part.ContentType {
					t.Errorf("file %q has type %q", part.Filename, part.ContentType)
				}
				if len(content) == 0 {
					t.Errorf("file %q is empty", part.Filename)
				}
			default:
				t.Errorf("part %d of kind %v", i, part.Kind)
			}
		}
		if files > maxReplyFiles {
			t.Errorf("%d files stored", files)
		}
		if total > len(body) || total > fuzzMaxReply+multipartAllowance {
			t.Errorf("%d bytes stored from a form of %d", total, len(body))
		}
	})
}

// checkFilename checks what a phone does with a stored filename: it must
// be valid UTF-8, name no directory, hold no control or format characters
// and not be hidden.
func checkFilename(t *testing.T, name string) {
	t.Helper()
	switch {
	case name == "" || !utf8.ValidString(name) || strings.ContainsAny(name, "/\\"):
		t.Errorf("filename %q", name)
	case strings.HasPrefix(name, "."):
		t.Errorf("filename %q is hidden", name)
	case utf8.RuneCountInString(name) > maxFilenameRunes:
		t.Errorf("filename %q is longer than %d characters", name, maxFilenameRunes)
	case strings.IndexFunc(name, func(c rune) bool {
		return unicode.IsControl(c) || unicode.Is(unicode.Cf, c) || c == utf8.RuneError
	}) >= 0:
		t.Errorf("filename %q holds control characters", name)
	}
}

// TestCleanFilenameNoLeadingDot is the regression test of a FuzzReplyForm
// finding: " . .hidden" became ".hidden", because cleanFilename trimmed
// dots, then spaces, so a dot after a space survived.
func TestCleanFilenameNoLeadingDot(t *testing.T) {
	for _, in := range []string{" . .hidden", ". .x", " .. ..profile", "\t.\u200b.env"} {
		if got := cleanFilename(in); strings.HasPrefix(got, ".") {
			t.Errorf("cleanFilename(%q) = %q: a hidden name", in, got)
		}
	}
}

// FuzzSetupForm posts arbitrary first-visit forms. A password is set only
// when the form is valid: at least 10 characters, the same twice, with a
// recovery address; the store gets exactly what was typed, and the answer
// is a redirect with a session cookie. Anything else is a 400 (or 413)
// with nothing set.
func FuzzSetupForm(f *testing.F) {
	seedForms(f, "setup")
	p := newFuzzPortal(f)
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		p.reset()
		r := httptest.NewRequest("POST", "https://portal.test/m/"+tokenA+"/setup", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		w := p.serve(r)
		p.st.mu.Lock()
		rec := p.st.recipients[phoneA]
		p.st.mu.Unlock()
		switch w.Code {
		case http.StatusSeeOther:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if rec != nil {
				t.Fatalf("%d but a password was set", w.Code)
			}
			return
		default:
			t.Fatalf("status %d:\n%s", w.Code, w.Body)
		}
		if rec == nil {
			t.Fatal("303 but no password set")
		}
		if !strings.HasPrefix(w.Header().Get("Location"), "/c/") || len(w.Result().Cookies()) == 0 {
			t.Errorf("setup answered %v without a session", w.Header())
		}
		// What the store got is what a form parser reads from the body.
		form, err := parseFormBody(contentType, body)
		if err != nil {
			t.Fatalf("the handler accepted a form that does not parse: %v", err)
		}
		if rec.password != form.Get("password") || rec.password != form.Get("confirm") {
			t.Errorf("password %q stored from password %q, confirm %q", rec.password, form.Get("password"), form.Get("confirm"))
		}
		if n := utf8.RuneCountInString(rec.password); n < minPasswordLen || n > maxPasswordLen || !utf8.ValidString(rec.password) {
			t.Errorf("password %q accepted", rec.password)
		}
		// The recovery address may be left out; one given must be an
		// address, stored as typed.
		if typed := strings.TrimSpace(form.Get("email")); rec.email != "" || typed != "" {
			a, err := mail.ParseAddress(rec.email)
			if err != nil || a.Address != rec.email || rec.email != typed {
				t.Errorf("recovery address %q accepted (typed %q)", rec.email, form.Get("email"))
			}
		}
	})
}

// parseFormBody reads a urlencoded form as net/http would.
func parseFormBody(contentType string, body []byte) (url.Values, error) {
	r := httptest.NewRequest("POST", "/", io.NopCloser(bytes.NewReader(body)))
	r.Header.Set("Content-Type", contentType)
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	return r.PostForm, nil
}

// TestNormalizeTextLineEndings is the regression test of a FuzzReplyForm
// finding: "0\r\r\n00" was stored as "0\r\n00", because only CRLF pairs
// were turned into LF and the CR before one survived.
func TestNormalizeTextLineEndings(t *testing.T) {
	for in, want := range map[string]string{
		"0\r\r\n00":     "0\n\n00",
		"a\rb\r\nc\nd":  "a\nb\nc\nd",
		"\r\n\r\n":      "\n\n",
		"bad \xff byte": "bad \uFFFD byte",
	} {
		if got := normalizeText([]byte(in)); got != want {
			t.Errorf("normalizeText(%q) = %q, want %q", in, got, want)
		}
	}
}
