package portal

import (
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/BurntSushi/toml"
	"golang.org/x/net/html"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/locale"
)

// sharedWords are the words English and Spanish pages both write: names
// of file formats and brands, units, and a few words both languages
// spell alike. Everything else the English catalogue says must not be
// left on a Spanish page.
var sharedWords = map[string]bool{
	"a": true, "no": true, "total": true, "web": true, "portal": true, "internet": true, "com": true,
	"pdf": true, "jpeg": true, "png": true, "gif": true, "webp": true, "heic": true,
	"heif": true, "tiff": true, "csv": true, "rtf": true, "odt": true, "ods": true,
	"zip": true, "dicom": true, "word": true, "excel": true, "powerpoint": true,
	"audio": true, "video": true, "byte": true, "bytes": true, "kb": true, "mb": true, "gb": true,
}

// englishWords returns the words of the English catalogue's messages
// (without their {{fields}} and markup), lowercase. The names of days and
// months are left out: a date is data, and "mar" is Tuesday in Spanish.
func englishWords(t *testing.T) map[string]bool {
	t.Helper()
	b, err := fs.ReadFile(locale.Files(), "catalogue/en.toml")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := toml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	words := make(map[string]bool)
	add := func(s string) {
		for {
			i := strings.Index(s, "{{")
			if i < 0 {
				break
			}
			j := strings.Index(s[i:], "}}")
			if j < 0 {
				break
			}
			s = s[:i] + " " + s[i+j+2:]
		}
		s = strings.NewReplacer("<strong>", " ", "</strong>", " ").Replace(s)
		for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) }) {
			if w = strings.ToLower(w); !sharedWords[w] {
				words[w] = true
			}
		}
	}
	for id, v := range m {
		words["id:"+id] = true
		switch id {
		case "LanguageName", "Weekdays", "Months", "DateTime", "DecimalPoint":
			continue
		}
		switch v := v.(type) {
		case string:
			add(v)
		case map[string]any:
			for _, form := range v {
				if s, ok := form.(string); ok {
					add(s)
				}
			}
		}
	}
	return words
}

// visibleWords returns the words a person (or a screen reader) gets from
// page: its text, and its alt, aria-label, title and placeholder values,
// lowercase; script and style left out.
func visibleWords(t *testing.T, page string) []string {
	t.Helper()
	var words []string
	add := func(s string) {
		for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) }) {
			words = append(words, strings.ToLower(w))
		}
	}
	z := html.NewTokenizer(strings.NewReader(page))
	skip := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatal(z.Err())
			}
			return words
		case html.TextToken:
			if skip == 0 {
				add(string(z.Text()))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if tok.Data == "script" || tok.Data == "style" {
				skip++
			}
			for _, a := range tok.Attr {
				switch a.Key {
				case "alt", "aria-label", "title", "placeholder":
					add(a.Val)
				}
			}
		case html.EndTagToken:
			if name, _ := z.TagName(); string(name) == "script" || string(name) == "style" {
				skip--
			}
		}
	}
}

// checkSpanish fails when page, rendered in Spanish, says a word of the
// English catalogue, or is not marked <html lang="es">.
func checkSpanish(t *testing.T, name, page string, english map[string]bool) {
	t.Helper()
	if !strings.Contains(page, `<html lang="es">`) {
		t.Errorf("%s: not <html lang=\"es\">", name)
	}
	var left []string
	for _, w := range strings.FieldsFunc(page, func(r rune) bool { return !unicode.IsLetter(r) }) {
		if english["id:"+w] && !slices.Contains(left, w) {
			left = append(left, w) // a message id the catalogue lacks
		}
	}
	for _, w := range visibleWords(t, page) {
		if english[w] && !slices.Contains(left, w) {
			left = append(left, w)
		}
	}
	if len(left) > 0 {
		t.Errorf("%s: English words left on the Spanish page: %s", name, strings.Join(left, ", "))
	}
}

// spanishServer is a portal whose data is in Spanish too (organization,
// sender, subject, file names), so that only the portal's own words are
// judged.
func spanishServer(t testing.TB) (*Server, *fakeStore) {
	t.Helper()
	st := newFakeStore()
	cfg := testConfig()
	cfg.Org = "Clínica del Sol"
	cfg.AccessExpiry = 72 * time.Hour
	srv, err := New(cfg, st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return srv, st
}

// TestEveryPageInSpanish renders every page of templates/ in Spanish,
// with every optional part shown, and then walks the portal's routes
// (pages and error pages) through its handler with a Spanish browser: no
// word of the English catalogue may be left on any of them.
func TestEveryPageInSpanish(t *testing.T) {
	english := englishWords(t)
	srv, st := spanishServer(t)
	req := httptest.NewRequest("GET", "https://portal.test/m/x", nil)
	req.Header.Set("Accept-Language", "es-US,es;q=0.9")
	at := time.Date(2026, 3, 3, 14, 5, 0, 0, time.UTC)
	l := srv.cat.Printer("es")
	account := &securetextd.Account{Phone: "+12125550123", Recovery: "ana@correo.ejemplo", Confirmed: true, Pending: "otra@correo.ejemplo", Language: "es"}
	conv := &securetextd.InboxEntry{
		Conversation: securetextd.Conversation{ID: 1, Sender: "dra.garcia@clinica.ejemplo"},
		Latest:       &securetextd.Message{Sender: "dra.garcia@clinica.ejemplo", SenderName: "Dra. García", Subject: "Resultados", Received: at},
	}
	reply := *conv
	reply.Latest = &securetextd.Message{Direction: securetextd.Reply, Received: at}
	pages := map[string]page{
		"account.html": &accountPage{layout: layout{Title: "AccountTitle", SignedIn: true}, Account: account,
			SignIns: []securetextd.SignIn{{Time: at, Device: "Chrome on Android", Network: "192.0.2.0/24"},
				{Time: at, Device: "Unknown device", Private: true}, {Time: at, Device: "A browser on an unknown system"}},
			Languages: srv.cat.Languages(), Done: l.T("DoneEmail"), Error: l.T("CurrentPasswordWrong"), Form: "email"},
		"account.html (none)": &accountPage{layout: layout{Title: "AccountTitle", SignedIn: true}, Account: &securetextd.Account{Phone: "+12125550123", Pending: "otra@correo.ejemplo"}, Languages: srv.cat.Languages()},
		"code.html":           &codePage{layout: layout{Title: "CodeTitle"}, Token: "t", Ending: "23"},
		"code.html (sent)": &codePage{layout: layout{Title: "CodeTitle"}, Token: "t", Ending: "23", Sent: true,
			Error: l.T("CodeWrong"), Notice: l.T("CodeJustSent", "Wait", l.Seconds(40*time.Second)), Left: 2},
		"code.html (1 left)": &codePage{layout: layout{Title: "CodeTitle"}, Token: "t", Ending: "23", Sent: true, Left: 1},
		"confirm.html":       &confirmPage{layout: layout{Title: "ConfirmTitle"}, Token: "t", Address: "ana@correo.ejemplo", Phone: "+1212*****23"},
		"conversation.html": conversationTexts(l, srv.pageZone(zone{}), "Dra. García", l.Duration(72*time.Hour), &conversationPage{layout: layout{Title: "ConversationTitle", SignedIn: true}, ID: 1,
			MaxReplyBytes: 25 << 20, Error: l.T("ReplyEmpty"), Draft: "Gracias",
			Messages: []messageView{
				{ID: 1, SenderName: "Dra. García", Sender: "dra.garcia@clinica.ejemplo", Subject: "Resultados", Received: at, New: true,
					Bodies: []bodyView{{HTML: template.HTML("<p>Hola</p>"), Rich: true, Damaged: true, Truncated: true, Href: "/c/1/m/1/p/0"}},
					Files: []fileView{{Name: "resultados.pdf", Kind: "KindPDF", Size: 597_000, Href: "/c/1/m/1/p/1"},
						{Name: "foto.jpg", Kind: "KindPhotoJPEG", Size: 2_400_000, Href: "/c/1/m/1/p/2", Preview: "/c/1/m/1/p/2", Damaged: true}}},
				{ID: 2, Reply: true, Received: at, Bodies: []bodyView{{HTML: template.HTML("Gracias")}}},
			}}),
		"inbox.html":         &inboxPage{layout: layout{Title: "InboxTitle", SignedIn: true}, Entries: []securetextd.InboxEntry{*conv, reply}},
		"inbox.html (empty)": &inboxPage{layout: layout{Title: "InboxTitle", SignedIn: true}},
		"link.html (setup)": &linkPage{layout: layout{Title: "ChoosePassword"}, Token: "t", Setup: true, AskDOB: true,
			Phone: "+12125550123", Error: l.T("PasswordShort")},
		"link.html (setup by email)": &linkPage{layout: layout{Title: "ChoosePassword"}, Token: "t", Setup: true, ByEmail: true, Phone: "ana@correo.ejemplo"},
		"link.html (locked)":         &linkPage{layout: layout{Title: "TooManyTries"}, Token: "t", Locked: l.Duration(12 * time.Minute), NoReset: true},
		"link.html (login)": &linkPage{layout: layout{Title: "EnterPasswordTitle"}, Token: "t", Phone: "+12125550123",
			Conflict: true, Error: l.T("PasswordWrong"), Left: 2},
		"locked.html":      &lockedPage{layout: layout{Title: "TooManyTries"}, Wait: l.Duration(12 * time.Minute)},
		"message.html":     &messagePage{layout: layout{Title: "BusyTitle"}, Heading: l.T("BusyHeading"), Text: l.T("BusyText"), Notice: l.T("ResetLinkExpired"), Href: "/inbox", LinkText: l.T("InboxTitle")},
		"newpassword.html": &newPasswordPage{layout: layout{Title: "NewPasswordTitle"}, Token: "t", Error: l.T("PasswordMismatch"), AskDOB: true, Phone: "+12125550123"},
		"notfound.html":    &messagePage{layout: layout{Title: "NotFoundTitle"}, Notice: l.T("ConfirmLinkExpired")},
		"reset.html":       &resetPage{layout{Title: "ResetTitle"}},
		"revoke.html":      &revokePage{layout: layout{Title: "RevokeTitle"}, Token: "t", Phone: "+1212*****23", Sent: at},
	}
	names, _ := fs.Glob(assets, "templates/*.html")
	for _, n := range names {
		base := strings.TrimPrefix(n, "templates/")
		covered := slices.ContainsFunc(slices.Collect(maps.Keys(pages)), func(k string) bool { return strings.Fields(k)[0] == base })
		if !covered && base != "layout.html" {
			t.Errorf("%s is not rendered by this test: add it", base)
		}
	}
	for name, p := range pages {
		w := httptest.NewRecorder()
		srv.render(w, req, http.StatusOK, strings.Fields(name)[0], p)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", name, w.Code, w.Body)
		}
		checkSpanish(t, name, w.Body.String(), english)
	}

	// The routes, through the handler, as a Spanish browser asks.
	st.addConversation("+12125550123", "dra.garcia@clinica.ejemplo", "linkTokenESESESESESESES")
	spanish := func(r *http.Request) *httptest.ResponseRecorder {
		r.Header.Set("Accept-Language", "es")
		r.RemoteAddr = "192.0.2.9:1234"
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w
	}
	post := func(path string, form url.Values) *http.Request {
		r := httptest.NewRequest("POST", "https://portal.test"+path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	crossSite := post("/logout", nil)
	crossSite.Header.Set("Sec-Fetch-Site", "cross-site")
	tooBig := post("/reset", url.Values{"phone": {strings.Repeat("1", maxFormBytes)}})
	for name, r := range map[string]*http.Request{
		"home":                httptest.NewRequest("GET", "https://portal.test/", nil),
		"link (first visit)":  httptest.NewRequest("GET", "https://portal.test/m/linkTokenESESESESESESES", nil),
		"setup refused":       post("/m/linkTokenESESESESESESES/setup", url.Values{"password": {"corta"}, "confirm": {"corta"}, "email": {"no es correo"}}),
		"not found":           httptest.NewRequest("GET", "https://portal.test/nada", nil),
		"inbox, signed out":   httptest.NewRequest("GET", "https://portal.test/inbox", nil),
		"reset":               httptest.NewRequest("GET", "https://portal.test/reset", nil),
		"reset asked":         post("/reset", url.Values{"phone": {"+12125550123"}}),
		"reset link expired":  httptest.NewRequest("GET", "https://portal.test/reset/caducado", nil),
		"logged out":          post("/logout", nil),
		"cross-site form":     crossSite,
		"form too large":      tooBig,
		"unknown language":    post("/language", url.Values{"language": {"xx"}}),
		"conversation, other": httptest.NewRequest("GET", "https://portal.test/c/1", nil),
	} {
		w := spanish(r)
		if w.Code >= 500 {
			t.Errorf("%s: %d", name, w.Code)
		}
		checkSpanish(t, name, w.Body.String(), english)
	}
}

// conversationTexts is p with its texts written as renderConversation
// writes them, in zone z.
func conversationTexts(l *locale.Printer, z zone, sender, closes string, p *conversationPage) *conversationPage {
	p.Zone = z
	p.texts(l, sender, closes)
	return p
}
