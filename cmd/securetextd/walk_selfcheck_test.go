package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestCutOffScript shows that the walk's reflow check sees what it is
// for: on a page built to be cut off in each way, at each of the
// walk's narrow layouts, it names each; on a page that reflows, nothing.
func TestCutOffScript(t *testing.T) {
	pages := map[string]string{
		"/wide":     `<div style="width:330px;background:#ccc">a box 330 px wide</div>`,
		"/nowrap":   `<p style="white-space:nowrap">a line of words that never wraps whatever the width of the screen</p>`,
		"/clipped":  `<div style="overflow:hidden;width:100%"><span style="display:inline-block;width:330px">clipped</span></div>`,
		"/left":     `<p style="margin-left:-40px">pushed off the left edge</p>`,
		"/control":  `<input type="file" aria-label="a file" style="width:100px">`,
		"/squeezed": `<div style="display:flex;overflow-wrap:anywhere"><span style="flex:0 1 100%">A line of words beside</span><span>Account</span></div>`,
		"/scroller": `<p style="overflow-wrap:anywhere">dr.who.has.a.very.long.address@clinic.example breaks where it must.</p>` +
			`<div style="overflow-x:auto"><table><tr><td style="white-space:nowrap">a wide table that scrolls in its own box, as a message's may</td></tr></table></div>` +
			`<p>A paragraph of ordinary words that wraps at any width.</p>`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><html lang="en"><head><meta name="viewport" content="width=device-width, initial-scale=1"><title>t</title></head><body>` + pages[r.URL.Path] + `</body></html>`))
	}))
	defer srv.Close()
	ctx := newBrowser(t)
	for path, want := range map[string][]string{
		"/wide":     {"the page scrolls sideways", "<div>"},
		"/nowrap":   {"the page scrolls sideways", `text "a line of words`},
		"/clipped":  {"<span>"},
		"/left":     {"<p>"},
		"/squeezed": {`the word "Account"`},
		"/control":  {"the words of input"},
		"/scroller": nil,
	} {
		navigate(t, ctx, srv.URL+path)
		for _, v := range reflowViewports {
			if err := emulate(ctx, v); err != nil {
				t.Fatal(err)
			}
			cut, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](cutOffScript))
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(cut, "\n")
			if want == nil && len(cut) > 0 {
				t.Errorf("%s at %s: cut off %q, want nothing", path, v.name, cut)
			}
			for _, w := range want {
				if !strings.Contains(all, w) {
					t.Errorf("%s at %s: cut off %q, want %q", path, v.name, cut, w)
				}
			}
		}
	}
}
