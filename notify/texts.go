package notify

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/locale"
)

// Texts are the texts of a link's SMS, one per language of the catalogue.
// A text job carries the language its recipient reads (the account's
// choice, else the one its sender gave); the text in that language is
// chosen as an operator would expect:
//
//   - sms.templates.<tag>, when the operator wrote one for that language;
//   - else sms.template, when the operator changed it from the default:
//     their words are sent as they wrote them, in every language, so that
//     nothing they added (a phone number to call, a sign-off) is lost to
//     a translation of ours;
//   - else the catalogue's own text for the language (SMSLink), of which
//     DefaultTemplate is the English.
//
// A language the catalogue lacks is read as DefaultLanguage.
type Texts struct {
	// DefaultLanguage is portal.default_language.
	DefaultLanguage string
	byLang          map[string]*Template
}

// NewTexts parses the texts: template is sms.template, perLanguage
// sms.templates, defaultLanguage portal.default_language.
func NewTexts(template string, perLanguage map[string]string, defaultLanguage string) (*Texts, error) {
	cat, err := locale.Load()
	if err != nil {
		return nil, err
	}
	if !cat.Has(defaultLanguage) {
		return nil, fmt.Errorf("notify: %q is not a language of the catalogue", defaultLanguage)
	}
	operator := template != "" && template != DefaultTemplate
	t := &Texts{DefaultLanguage: defaultLanguage, byLang: make(map[string]*Template)}
	for _, l := range cat.Languages() {
		src, key := perLanguage[l.Tag], "sms.templates."+l.Tag
		switch {
		case src != "":
		case operator:
			src, key = template, "sms.template"
		default:
			src, key = cat.Printer(l.Tag).T("SMSLink"), "the catalogue's "+l.Tag+" text"
		}
		parsed, err := ParseTemplate(src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		t.byLang[l.Tag] = parsed
	}
	for tag := range perLanguage {
		if _, ok := t.byLang[tag]; !ok {
			return nil, fmt.Errorf("sms.templates.%s: not a language of the catalogue", tag)
		}
	}
	return t, nil
}

// Language returns tag when it has a text, else DefaultLanguage.
func (t *Texts) Language(tag string) string {
	if _, ok := t.byLang[tag]; ok {
		return tag
	}
	return t.DefaultLanguage
}

// For returns the text in language tag (Language(tag)).
func (t *Texts) For(tag string) *Template { return t.byLang[t.Language(tag)] }

// Check checks each language's text as Template.Check does, and says how
// many segments each takes and in which encoding, for the operator: an
// accent that GSM-7 lacks ("á") makes a text UCS-2, 70 characters a
// segment instead of 160. Each line starts with the language's tag.
func (t *Texts) Check(org, publicURL string) (segments, warnings []string) {
	for _, tag := range slices.Sorted(maps.Keys(t.byLang)) {
		tmpl := t.byLang[tag]
		n, gsm7 := Segments(tmpl.Render(org, linkFor(publicURL, sampleToken)))
		segments = append(segments, tag+": "+segmentWords(n, gsm7))
		for _, w := range tmpl.Check(org, publicURL) {
			warnings = append(warnings, tag+": "+w)
		}
	}
	return segments, warnings
}

// segmentWords says "1 segment, GSM-7" or "2 segments, UCS-2".
func segmentWords(n int, gsm7 bool) string {
	enc := "UCS-2"
	if gsm7 {
		enc = "GSM-7"
	}
	unit := " segments, "
	if n == 1 {
		unit = " segment, "
	}
	return strconv.Itoa(n) + unit + enc
}

// Languages is what a worker asks of the store, when the store has it
// (*store.DB does): the language an account chose, "" for none.
type Languages interface {
	RecipientLanguage(ctx context.Context, phone securetextd.Phone) (string, error)
}

// recipientLanguage returns the language of a link's text or notice to
// to: the account's choice, asked of st when it keeps accounts, else
// given (the sender's). A store that fails to answer leaves the sender's:
// the language is a courtesy, never a reason to hold a text back.
func recipientLanguage(ctx context.Context, log *slog.Logger, st any, to securetextd.Phone, given string) string {
	l, ok := st.(Languages)
	if !ok {
		return given
	}
	chosen, err := l.RecipientLanguage(ctx, to)
	if err != nil {
		log.Warn("recipient language", "err", err)
		return given
	}
	if chosen != "" {
		return chosen
	}
	return given
}
