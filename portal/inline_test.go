package portal

import (
	"bytes"
	"html"
	"html/template"
	"io/fs"
	"regexp"
	"testing"

	"github.com/securetextd/securetextd/locale"
)

// TestInlineTextsAsWritten: every message of the catalogue, written into
// a template by inlineTexts, reads in the page exactly as the
// {{$L.T "Id"}} action writes it, in text and in a quoted attribute, in
// every language; a message with fields and an id the catalogue lacks are
// left to the action.
func TestInlineTextsAsWritten(t *testing.T) {
	cat := locale.MustLoad()
	src, err := fs.ReadFile(locale.Files(), "catalogue/en.toml")
	if err != nil {
		t.Fatal(err)
	}
	ids := regexp.MustCompile(`(?m)^([A-Za-z0-9]+) = `).FindAllSubmatch(src, -1)
	if len(ids) < 50 {
		t.Fatalf("%d messages in en.toml", len(ids))
	}
	inlined := 0
	for _, l := range cat.Languages() {
		p := cat.Printer(l.Tag)
		for _, m := range ids {
			id := string(m[1])
			page := `{{$L := .}}<p title="{{$L.T "` + id + `"}}">{{$L.T "` + id + `"}}</p>`
			render := func(text string) string {
				var b bytes.Buffer
				if err := template.Must(template.New("t").Parse(text)).Execute(&b, p); err != nil {
					t.Fatalf("%s %s: %v", l.Tag, id, err)
				}
				return html.UnescapeString(b.String())
			}
			in := inlineTexts(page, p)
			if in != page {
				inlined++
			}
			if got, want := render(in), render(page); got != want {
				t.Errorf("%s %s written in: %q, want %q", l.Tag, id, got, want)
			}
		}
	}
	if inlined == 0 {
		t.Error("no message was written in")
	}
	p := cat.Printer("es")
	for _, kept := range []string{`{{$L.T "NoSuchMessage"}}`, `{{$L.T "Footer"}}`, `{{$L.T "Footer" "Org" .Org}}`} {
		if got := inlineTexts(kept, p); got != kept {
			t.Errorf("%s written in as %q", kept, got)
		}
	}
	if got := inlineTexts(`<a>{{$L.T "NavInbox"}}</a>`, p); got != "<a>"+html.EscapeString(p.T("NavInbox"))+"</a>" {
		t.Errorf("NavInbox in Spanish written in as %q", got)
	}
}
