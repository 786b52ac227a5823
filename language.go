package securetextd

import (
	"context"
	"strings"

	"golang.org/x/text/language"
)

// languageKey carries, in a request's context, the language its pages
// are in, for the texts and emails the request queues.
type languageKey struct{}

// WithLanguage returns ctx carrying tag, the language of the person the
// request serves ("es"): the portal sets it from the page's language, so
// that a code text or a reset email queued by the request is in it when
// the account has chosen no language of its own.
func WithLanguage(ctx context.Context, tag string) context.Context {
	return context.WithValue(ctx, languageKey{}, tag)
}

// LanguageFrom returns the tag WithLanguage put in ctx, or "".
func LanguageFrom(ctx context.Context) string {
	tag, _ := ctx.Value(languageKey{}).(string)
	return tag
}

// ParseLanguage reads a language a sender gave: a Content-Language field
// ("es", "es-MX, en") or the API's "language" ("es-US"), and returns the
// language of its first tag, lowercase ("es"), which is what the
// catalogues are named by. It reports false for an empty, malformed or
// overlong value: the language is a courtesy, never a reason to refuse a
// message.
func ParseLanguage(s string) (string, bool) {
	first, _, _ := strings.Cut(s, ",")
	first = strings.TrimSpace(first)
	if first == "" || len(first) > 35 {
		return "", false
	}
	tag, err := language.Parse(first)
	if err != nil {
		return "", false
	}
	base, conf := tag.Base()
	if conf == language.No {
		return "", false
	}
	return base.String(), true
}
