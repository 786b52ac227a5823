package securetextd

import "context"

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
