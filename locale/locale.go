// Package locale holds the words the patient reads, in every language the
// gateway speaks: the portal's pages and errors, the emails sent to a
// patient and the texts. Each language is one catalogue file,
// catalogue/<tag>.toml, embedded in the binary; English (en.toml) is the
// source every other file translates, message by message.
//
// Plurals follow CLDR's rules for each language (through go-i18n: a
// message has "one", "other" and, where a language needs them, "few" or
// "many" forms), so nothing here decides what is plural. Dates are
// spelled with the catalogue's own day and month names.
package locale

import (
	"embed"
	"encoding/binary"
	"fmt"
	"html"
	"html/template"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

//go:embed catalogue/*.toml
var files embed.FS

// Source is the language of the catalogue every other one translates,
// and the one a missing message falls back to.
const Source = "en"

// Language is one language of the catalogue: its tag ("es") and its name
// in itself ("Español"), as a language switch offers it.
type Language struct {
	Tag  string
	Name string
}

// Catalogue is every language's messages. It is read once from the
// embedded files and never changes: Load returns the same one each time.
type Catalogue struct {
	bundle    *i18n.Bundle
	languages []Language // Source first, then by tag
	tags      []language.Tag
	matcher   language.Matcher
	printers  map[string]*Printer
}

var load = sync.OnceValues(parse)

// Load returns the catalogue. It fails only when an embedded file is
// malformed, which the package's tests catch before a release.
func Load() (*Catalogue, error) { return load() }

// MustLoad is Load for the places that cannot go on without the words
// (a test, a tool): it panics on a malformed catalogue.
func MustLoad() *Catalogue {
	c, err := Load()
	if err != nil {
		panic(err)
	}
	return c
}

func parse() (*Catalogue, error) {
	bundle := i18n.NewBundle(language.English)
	bundle.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	names, err := fs.Glob(files, "catalogue/*.toml")
	if err != nil {
		return nil, err
	}
	c := &Catalogue{bundle: bundle, printers: make(map[string]*Printer)}
	fields := make(map[string]bool) // ids of messages with fields, in any language
	for _, name := range names {
		tag := strings.TrimSuffix(path.Base(name), ".toml")
		if _, err := language.Parse(tag); err != nil {
			return nil, fmt.Errorf("locale: %s: the file's name is not a language tag: %w", name, err)
		}
		mf, err := bundle.LoadMessageFileFS(files, name)
		if err != nil {
			return nil, fmt.Errorf("locale: %s: %w", name, err)
		}
		for _, m := range mf.Messages {
			for _, form := range []string{m.Zero, m.One, m.Two, m.Few, m.Many, m.Other} {
				if strings.Contains(form, "{{") {
					fields[m.ID] = true
				}
			}
		}
		c.languages = append(c.languages, Language{Tag: tag})
	}
	slices.SortFunc(c.languages, func(a, b Language) int {
		switch {
		case a.Tag == Source:
			return -1
		case b.Tag == Source:
			return 1
		}
		return strings.Compare(a.Tag, b.Tag)
	})
	if len(c.languages) == 0 || c.languages[0].Tag != Source {
		return nil, fmt.Errorf("locale: no %s.toml: the source catalogue is missing", Source)
	}
	for i, l := range c.languages {
		p := &Printer{Tag: l.Tag, loc: i18n.NewLocalizer(bundle, l.Tag), fields: fields}
		c.printers[l.Tag] = p
		c.languages[i].Name = p.T("LanguageName")
		c.tags = append(c.tags, language.Make(l.Tag))
	}
	c.matcher = language.NewMatcher(c.tags)
	return c, nil
}

// Languages returns the languages of the catalogue, English first.
func (c *Catalogue) Languages() []Language { return slices.Clone(c.languages) }

// Has reports whether tag is a language of the catalogue, as written
// there ("es", not "es-MX").
func (c *Catalogue) Has(tag string) bool {
	_, ok := c.printers[tag]
	return ok
}

// Match returns the catalogue's language that best serves an
// Accept-Language header, or fallback when none of the header's
// languages is close enough (a browser that asks for Japanese gets the
// portal's default, not English because English comes first).
func (c *Catalogue) Match(acceptLanguage, fallback string) string {
	want, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(want) == 0 {
		return fallback
	}
	_, i, conf := c.matcher.Match(want...)
	if conf < language.High {
		return fallback
	}
	return c.languages[i].Tag
}

// Printer returns the printer of tag, or the source language's when the
// catalogue has no such language.
func (c *Catalogue) Printer(tag string) *Printer {
	if p, ok := c.printers[tag]; ok {
		return p
	}
	return c.printers[Source]
}

// Printer writes the messages of one language.
type Printer struct {
	// Tag is the language's tag, for <html lang> and Content-Language.
	Tag string
	loc *i18n.Localizer
	// plain keeps each message T has written without fields (id →
	// string): most of a page's texts, written thousands of times a
	// second under load, and each Localize call looks the message up,
	// picks its plural form and allocates. Only ids of the catalogue
	// are kept, so it holds at most one entry per message.
	plain sync.Map
	// fields are the ids of the messages with {{.Field}}s, which Plain
	// does not give.
	fields map[string]bool
	// filled keeps what T wrote for a message with fields whose values
	// are all strings, by id and fields (filledKey): a page writes the
	// same few on every view (the organization's name in the footer, the
	// sender in a conversation's heading, the reply limit), and each
	// Localize call runs the message's template. It is emptied when it
	// holds maxFilled, so that it stays small whatever the values.
	filled  sync.Map
	nFilled atomic.Int64
}

// maxFilled bounds Printer.filled.
const maxFilled = 4096

// filledKey is the key of T(id, kv...) in Printer.filled, and false when
// a value is not a string (or the pairs do not pair up), which T does not
// keep: the message id, then each key and value after its length, so
// that no two calls share a key whatever bytes the values hold.
func filledKey(id string, kv []any) (string, bool) {
	if len(kv)%2 != 0 {
		return "", false
	}
	n := len(id)
	for i := range kv {
		s, ok := kv[i].(string)
		if !ok {
			return "", false
		}
		n += binary.MaxVarintLen64 + len(s)
	}
	b := make([]byte, 0, n)
	b = append(b, id...)
	for _, v := range kv {
		b = binary.AppendUvarint(b, uint64(len(v.(string))))
		b = append(b, v.(string)...)
	}
	return string(b), true
}

// data makes a message's template data of key, value pairs.
func data(kv []any) map[string]any {
	if len(kv) == 0 {
		return nil
	}
	m := make(map[string]any, len(kv)/2+1)
	for i := 0; i+1 < len(kv); i += 2 {
		if k, ok := kv[i].(string); ok {
			m[k] = kv[i+1]
		}
	}
	return m
}

// T returns message id, its {{.Name}} fields filled from the key, value
// pairs kv: T("CodeSent", "Ending", "42"). A message the language lacks
// is the source language's; an unknown id is returned as it is, so that a
// test of the pages finds it.
func (p *Printer) T(id string, kv ...any) string {
	if len(kv) == 0 {
		if s, ok := p.plain.Load(id); ok {
			return s.(string)
		}
	}
	key, keep := "", false
	if len(kv) > 0 {
		if key, keep = filledKey(id, kv); keep {
			if s, ok := p.filled.Load(key); ok {
				return s.(string)
			}
		}
	}
	s, err := p.loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data(kv)})
	if s == "" && err != nil {
		return id
	}
	switch {
	case err != nil:
	case len(kv) == 0:
		p.plain.Store(id, s)
	case keep:
		if p.nFilled.Add(1) > maxFilled {
			p.filled.Clear()
			p.nFilled.Store(1)
		}
		p.filled.Store(key, s)
	}
	return s
}

// Plain returns message id, a message without fields, as T writes it;
// false when the catalogue lacks it or it has fields.
func (p *Printer) Plain(id string) (string, bool) {
	if p.fields[id] {
		return "", false
	}
	if s, ok := p.plain.Load(id); ok {
		return s.(string), true
	}
	s, err := p.loc.Localize(&i18n.LocalizeConfig{MessageID: id})
	if s == "" {
		return "", false
	}
	if err == nil {
		p.plain.Store(id, s)
	}
	return s, true
}

// N returns message id in the plural form the language uses for n, with
// {{.Count}} set to n: N("Minutes", 12) is "12 minutes", "12 minutos".
func (p *Printer) N(id string, n int, kv ...any) string {
	d := data(kv)
	if d == nil {
		d = make(map[string]any, 1)
	}
	d["Count"] = n
	s, err := p.loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: d, PluralCount: n})
	if s == "" && err != nil {
		return id
	}
	return s
}

// H returns message id as HTML: the message's own markup (<strong>) is
// kept, since the catalogue is ours, and every value of kv is escaped.
func (p *Printer) H(id string, kv ...any) template.HTML {
	esc := make([]any, len(kv))
	for i, v := range kv {
		if s, ok := v.(string); ok && i%2 == 1 {
			v = html.EscapeString(s)
		}
		esc[i] = v
	}
	return template.HTML(p.T(id, esc...)) //nolint:gosec // markup of the embedded catalogue only
}

// Duration says how long something lasts from now, as a patient reads it
// in any time zone: "12 minutes", "1 hour", "90 minutes", "3 hours", "2
// days", rounded up so that a wait is never shown shorter than it is; "1
// minute" at the least.
func (p *Printer) Duration(d time.Duration) string {
	m := max(1, int((d+time.Minute-1)/time.Minute))
	switch {
	case m%60 == 0 && m < 48*60:
		return p.N("Hours", m/60)
	case m < 120:
		return p.N("Minutes", m)
	case m < 48*60:
		return p.N("Hours", (m+59)/60)
	}
	return p.N("Days", (m+24*60-1)/(24*60))
}

// Seconds says a short wait: "45 seconds", and Duration past a minute.
func (p *Printer) Seconds(d time.Duration) string {
	if d > time.Minute {
		return p.Duration(d)
	}
	return p.N("Seconds", max(1, int((d+time.Second-1)/time.Second)))
}

// Date writes t (already in the zone it is shown in) as "Mon 2 Jan 2026,
// 15:04", with the zone's abbreviation when abbrev is set, in the
// language's own day and month names: "lun 2 ene 2026, 15:04".
func (p *Printer) Date(t time.Time, abbrev bool) string {
	days := strings.Fields(p.T("Weekdays"))
	months := strings.Fields(p.T("Months"))
	wd, mo := t.Weekday().String()[:3], t.Month().String()[:3]
	if len(days) == 7 {
		wd = days[t.Weekday()]
	}
	if len(months) == 12 {
		mo = months[t.Month()-1]
	}
	s := p.T("DateTime", "Weekday", wd, "Day", t.Day(), "Month", mo, "Year", t.Year(), "Time", t.Format("15:04"))
	if abbrev {
		s += " " + t.Format("MST")
	}
	return s
}

// Size writes a byte count as phones show a file's size, in SI units
// (1 KB = 1,000 bytes), rounded to what a patient reads: "597 KB",
// "2.4 MB" ("2,4 MB" in Spanish), "26 MB".
func (p *Printer) Size(n int64) string {
	decimal := func(f float64, unit string) string {
		s := strconv.FormatFloat(f, 'f', 1, 64)
		return strings.Replace(s, ".", p.T("DecimalPoint"), 1) + " " + unit
	}
	switch {
	case n < 1000:
		return p.N("Bytes", int(n))
	case n < 999_500:
		return strconv.FormatInt((n+500)/1000, 10) + " KB"
	case n < 9_950_000:
		return decimal(float64(n)/1e6, "MB")
	case n < 999_500_000:
		return strconv.FormatInt((n+500_000)/1_000_000, 10) + " MB"
	}
	return decimal(float64(n)/1e9, "GB")
}

// Files returns the embedded catalogue files (catalogue/<tag>.toml), for
// tests that read the messages themselves.
func Files() fs.FS { return files }
