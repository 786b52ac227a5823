package portal

import (
	"bytes"
	"embed"
	"fmt"
	"html"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/locale"
)

//go:embed templates/*.html static/style.css static/*.js
var assets embed.FS

// parsePages parses each page of templates/ together with the shared
// layout, once for each language of cat, at start: a template error stops
// the daemon from starting rather than surfacing on a patient's phone.
// The result is keyed by language tag, then page name.
//
// Each language's copy has its texts without fields written in
// (inlineTexts): a conversation page wrote about twenty of them, and each
// {{$L.T "Id"}} was two calls by reflection, the printer's and the
// escaper html/template adds after it.
func parsePages(cat *locale.Catalogue) (map[string]map[string]*template.Template, error) {
	out := make(map[string]map[string]*template.Template)
	for _, l := range cat.Languages() {
		pages, err := parsePagesIn(cat.Printer(l.Tag))
		if err != nil {
			return nil, err
		}
		out[l.Tag] = pages
	}
	return out, nil
}

// plainText is a template action that writes a message without fields.
var plainText = regexp.MustCompile(`\{\{\$L\.T "([A-Za-z0-9]+)"\}\}`)

// inlineTexts writes into src, a template's text, the messages without
// fields that it writes with {{$L.T "Id"}}, in p's language and escaped
// for HTML: what the action would write in text and in a quoted
// attribute, the only places the templates write texts. A message the
// catalogue lacks, or one that looks like a template action itself, is
// left to the action.
func inlineTexts(src string, p *locale.Printer) string {
	return plainText.ReplaceAllStringFunc(src, func(action string) string {
		id := plainText.FindStringSubmatch(action)[1]
		text, ok := p.Plain(id)
		if !ok || strings.Contains(text, "{{") || strings.Contains(text, "}}") {
			return action
		}
		return html.EscapeString(text)
	})
}

// parsePagesIn parses every page for p's language.
func parsePagesIn(p *locale.Printer) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"when":   when,
		"device": deviceText,
		"iso":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"mine":   func(d securetextd.Direction) bool { return d == securetextd.Reply },
	}
	layout, err := assets.ReadFile("templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := make(map[string]*template.Template)
	for _, name := range names {
		base := path.Base(name)
		if base == "layout.html" {
			continue
		}
		body, err := assets.ReadFile(name)
		if err != nil {
			return nil, err
		}
		t, err := template.New(base).Funcs(funcs).Parse(inlineTexts(string(layout), p))
		if err == nil {
			_, err = t.Parse(inlineTexts(string(body), p))
		}
		if err != nil {
			return nil, fmt.Errorf("portal: parse %s: %w", base, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// layout is what every page shows around its content. Title is a
// message id of the catalogue, as every text the Go code sets is before
// render translates it.
//
// The templates reach the layout through Chrome, once per template
// ({{$C := .Chrome}}, {{$L := .Chrome.L}}), and then write $C.Zone and
// $L.T: a layout field named on a page struct is a field of an
// embedded struct, which text/template finds by reflect's search through
// embedded structs, allocating at every use, and a conversation page
// made dozens of them. Texts with fields that a page writes every time
// (its heading, its footer, each message's time) are made in Go and kept
// in fields: each call in a template, {{$L.T "Id" "Name" .X}} or
// {{when ...}}, is a method found by name and called by reflection, and
// the conversation page, the one a patient opens most, made a dozen.
type layout struct {
	Org      string
	Logo     bool
	Title    string
	L        *locale.Printer   // the page's language (language.go)
	Switch   []locale.Language // the other languages, for the switch
	Back     string            // where the switch returns to
	SignedIn bool              // shows the inbox link and the log-out button
	Account  bool              // shows the account link (signed in, with accounts)
	Zone     zone              // the zone times are shown in (zone.go)
	Footer   string            // the footer's line, in L's language
}

func (l *layout) base() *layout { return l }

// Chrome returns the layout, for the templates: a method of the page
// (promoted from its layout) that text/template finds without searching
// the page's embedded structs, giving a struct whose fields are found at
// once.
func (l *layout) Chrome() *layout { return l }

// page is the data of one page: a struct that embeds layout.
type page interface{ base() *layout }

// render writes a page into a buffer first, so that a template error gives
// a clean 500 instead of half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	l := p.base()
	l.L = s.printer(r)
	l.Title = l.L.T(l.Title)
	l.Switch, l.Back = s.switchTo(l.L.Tag), backPath(r)
	if name == "notfound.html" {
		// Its bytes never vary with what was asked for (error.go).
		l.Back = "/"
	}
	w.Header().Set("Content-Language", l.L.Tag)
	l.Org = s.cfg.Org
	l.Footer = l.L.T("Footer", "Org", l.Org)
	l.Logo = len(s.cfg.Logo) > 0
	l.Account = l.SignedIn && s.accounts != nil
	l.Zone = s.pageZone(l.Zone)
	t, ok := s.pages[l.L.Tag][name]
	buf := pageBuffers.Get().(*bytes.Buffer)
	defer putPageBuffer(buf)
	err := fmt.Errorf("no page %q", name)
	if ok {
		err = t.ExecuteTemplate(buf, "layout", p)
	}
	if err != nil {
		s.logger.Error("render", "template", name, "err", err)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// pageZone is z, or the gateway's zone when z has none: the zone a
// page shows its times in.
func (s *Server) pageZone(z zone) zone {
	if z.Loc == nil {
		return zone{Loc: s.cfg.Location, Abbrev: true}
	}
	return z
}

// pageBuffers keeps the buffers pages are rendered into: a conversation
// page is tens of kilobytes, rendered thousands of times a second under
// load. A page is written whole, so a template error never sends half of
// one.
var pageBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putPageBuffer empties buf and keeps it, unless a very large page made
// it too big to keep around.
func putPageBuffer(buf *bytes.Buffer) {
	if buf.Cap() > 1<<20 {
		return
	}
	buf.Reset()
	pageBuffers.Put(buf)
}

// messagePage is a page that says one thing, with an optional link.
type messagePage struct {
	layout
	Heading  string
	Text     string
	Notice   string // a second, highlighted line
	Href     string
	LinkText string
}

// renderMessage renders a page that says one thing: title, heading and
// text are message ids.
func (s *Server) renderMessage(w http.ResponseWriter, r *http.Request, status int, title, heading, text string) {
	l := s.printer(r)
	s.render(w, r, status, "message.html", &messagePage{layout: layout{Title: title}, Heading: l.T(heading), Text: l.T(text)})
}

// humanSize writes a byte count in English, for the API's problems;
// pages write sizes in their language (locale.Printer.Size).
func humanSize(n int64) string {
	switch {
	case n == 1:
		return "1 byte"
	case n < 1000:
		return fmt.Sprintf("%d bytes", n)
	case n < 999_500:
		return fmt.Sprintf("%d KB", (n+500)/1000)
	case n < 9_950_000:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n < 999_500_000:
		return fmt.Sprintf("%d MB", (n+500_000)/1_000_000)
	}
	return fmt.Sprintf("%.1f GB", float64(n)/1e9)
}
