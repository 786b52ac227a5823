package portal

import (
	"bytes"
	"html/template"
	"io"
	"net/url"
	"regexp"
	"strings"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
)

// linkRel is the rel of every link in a message: the page it opens cannot
// reach back into the portal, learns nothing of where it came from, and
// gains no search rank.
const linkRel = "noopener noreferrer nofollow"

// newPolicy returns the sanitiser of HTML bodies. It starts from
// bluemonday's policy for user content (no script, no style attributes or
// elements, no forms, no frames, no SVG), refuses relative URLs (they would
// point into the portal), and lets cid: through only so that sanitize can
// rewrite it: every other image source is dropped there.
// smallNumber is a table attribute's value that the policy keeps.
var smallNumber = regexp.MustCompile(`^[0-9]{1,2}$`)

func newPolicy() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowRelativeURLs(false)
	p.AllowURLSchemes("cid")
	p.RequireNoFollowOnLinks(true)
	p.RequireNoReferrerOnLinks(true)
	p.AddSpaceWhenStrippingTag(true)
	p.SkipElementsContent("head", "svg", "math", "template", "select", "textarea", "button")
	// A table's border and cell padding, as numbers only: results and
	// schedules are sent as tables with border="1", unreadable without
	// their lines (the stylesheet draws them; style attributes stay out).
	p.AllowAttrs("border", "cellpadding").Matching(smallNumber).OnElements("table")
	return p
}

// sanitize makes an HTML body safe to show inside a portal page. The
// policy strips what can run or fetch; then every image whose source is
// not a cid: reference that resolve knows is dropped (its alt text kept),
// known ones point at the part's URL, cid: links are unlinked, every link
// gets linkRel, and ids go (they could hijack the page's own anchors).
// resolve returns the URL of the inline part with a Content-ID.
func sanitize(p *bluemonday.Policy, body []byte, resolve func(cid string) (string, bool)) template.HTML {
	clean := p.SanitizeBytes(body)
	var out bytes.Buffer
	z := html.NewTokenizer(bytes.NewReader(clean))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break // io.EOF: clean came from memory
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			out.Write(z.Raw())
			continue
		}
		t := z.Token()
		attrs := t.Attr[:0]
		var src, alt string
		for _, a := range t.Attr {
			switch a.Key {
			case "id", "rel":
				continue
			case "src":
				src = a.Val
				continue
			case "alt":
				alt = a.Val
			case "href":
				if hasScheme(a.Val, "cid") {
					continue
				}
			}
			attrs = append(attrs, a)
		}
		switch t.Data {
		case "img":
			u, ok := "", false
			if hasScheme(src, "cid") {
				u, ok = resolve(src[len("cid:"):])
			}
			if !ok {
				if alt != "" {
					out.WriteString(template.HTMLEscapeString("[" + alt + "]"))
				}
				continue
			}
			attrs = append(attrs, html.Attribute{Key: "src", Val: u})
		case "a", "area":
			attrs = append(attrs, html.Attribute{Key: "rel", Val: linkRel})
		}
		t.Attr = attrs
		out.WriteString(t.String())
	}
	return template.HTML(out.String())
}

// hasScheme reports whether the URL u starts with scheme and a colon, in
// any case.
func hasScheme(u, scheme string) bool {
	return len(u) > len(scheme) && u[len(scheme)] == ':' && strings.EqualFold(u[:len(scheme)], scheme)
}

// findURLs returns where the web addresses of text are, as
// regexp.FindAllStringIndex would with `(?i)\bhttps?://[^\s<>"]+`: "http"
// or "https" in any case, starting a word, then "://" and everything up to
// white space, "<", ">" or a double quote. Trailing punctuation is trimmed
// by linkify: "see https://example.org." links without the dot.
//
// It is written out because the regular expression, which cannot start
// from a literal, tried a match at every byte of every text shown: a
// sixth of a conversation page's time. This finds "://" with
// strings.Index and looks around it.
func findURLs(text string) [][2]int {
	var found [][2]int
	for from := 0; ; {
		j := strings.Index(text[from:], "://")
		if j < 0 {
			return found
		}
		j += from
		from = j + 1
		start := -1
		switch {
		case j-5 >= 0 && strings.EqualFold(text[j-5:j], "https"):
			start = j - 5
		case j-4 >= 0 && strings.EqualFold(text[j-4:j], "http"):
			start = j - 4
		}
		if start < 0 || (start > 0 && isWordByte(text[start-1])) {
			continue
		}
		end := j + 3
		if k := strings.IndexAny(text[end:], "\t\n\f\r <>\""); k < 0 {
			end = len(text)
		} else {
			end += k
		}
		if end == j+3 {
			continue // nothing after the scheme
		}
		found = append(found, [2]int{start, end})
		from = end
	}
}

// isWordByte reports whether c is an ASCII word character, as \b sees it.
func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// linkify escapes a text body and makes its http and https addresses
// clickable.
func linkify(text string) template.HTML {
	var out strings.Builder
	last := 0
	for _, m := range findURLs(text) {
		start, end := m[0], m[1]
		end = start + len(trimURL(text[start:end]))
		u, err := url.Parse(text[start:end])
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			continue
		}
		out.WriteString(template.HTMLEscapeString(text[last:start]))
		href := template.HTMLEscapeString(u.String())
		out.WriteString(`<a href="` + href + `" rel="` + linkRel + `">`)
		out.WriteString(template.HTMLEscapeString(text[start:end]))
		out.WriteString(`</a>`)
		last = end
	}
	out.WriteString(template.HTMLEscapeString(text[last:]))
	return template.HTML(out.String())
}

// trimURL drops the punctuation that ends a sentence rather than an
// address, and a closing parenthesis that closes the text's own.
func trimURL(u string) string {
	for u != "" {
		c := u[len(u)-1]
		switch {
		case strings.IndexByte(".,;:!?'*", c) >= 0:
			u = u[:len(u)-1]
		case c == ')' && strings.Count(u, "(") < strings.Count(u, ")"):
			u = u[:len(u)-1]
		default:
			return u
		}
	}
	return u
}

// readLimited reads the first min(size, n) bytes of r, which holds size
// bytes.
func readLimited(r io.ReaderAt, size, n int64) ([]byte, error) {
	// One ReadAt of the exact size: a sealed part decrypts a whole 64 KiB
	// chunk per call, so io.ReadAll's growing reads would decrypt (and
	// allocate) again and again.
	b := make([]byte, max(0, min(size, n)))
	k, err := r.ReadAt(b, 0)
	if k == len(b) {
		return b, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}
