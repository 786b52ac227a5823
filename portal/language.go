package portal

import (
	"net/http"
	"strings"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/locale"
)

// The patient's language. A page is in, first, the language the browser
// chose with the switch every page shows (a cookie, set before or after
// sign-in, and the account's language once signed in: signing in sets
// the cookie from the account); then the best of the browser's
// Accept-Language the catalogue has; then Config.DefaultLanguage.

// langCookieName is the language cookie's name: __Host- over HTTPS, as
// the session's. It holds a tag of the catalogue and nothing else.
func (s *Server) langCookieName() string {
	if s.cfg.Secure {
		return "__Host-lang"
	}
	return "lang"
}

// lang returns the tag of the language to answer r in.
func (s *Server) lang(r *http.Request) string {
	if c, err := r.Cookie(s.langCookieName()); err == nil && s.cat.Has(c.Value) {
		return c.Value
	}
	if h := r.Header.Get("Accept-Language"); h != "" && len(h) <= 512 {
		return s.cat.Match(h, s.cfg.DefaultLanguage)
	}
	return s.cfg.DefaultLanguage
}

// printer returns the printer of r's language.
func (s *Server) printer(r *http.Request) *locale.Printer { return s.cat.Printer(s.lang(r)) }

// switchTo returns the languages the switch offers on a page in tag: the
// others, each named in itself.
func (s *Server) switchTo(tag string) []locale.Language {
	var out []locale.Language
	for _, l := range s.cat.Languages() {
		if l.Tag != tag {
			out = append(out, l)
		}
	}
	return out
}

// setLangCookie remembers tag in the browser for a year.
func (s *Server) setLangCookie(w http.ResponseWriter, tag string) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.langCookieName(),
		Value:    tag,
		Path:     "/",
		MaxAge:   365 * 24 * 60 * 60,
		Secure:   s.cfg.Secure,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
}

// backPath is where the switch returns to from the page r shows: the
// page's own path for a GET; for a page a POST answered, the page that
// holds its form, since the switch's redirect is a GET. Queries are left
// out: they say what a change did, once.
func backPath(r *http.Request) string {
	p := r.URL.Path
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return p
	}
	for _, prefix := range []string{"/m/", "/c/", "/account/"} {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				return prefix + rest[:i]
			}
			if prefix == "/account/" {
				return "/account"
			}
		}
	}
	if p == "/logout" || p == "/language" {
		return "/"
	}
	return p
}

// safeBack returns back when it is a path of this site, "/" otherwise: the
// switch must not become a redirect to anywhere.
//
// Browsers drop tabs and line breaks from a Location and read a backslash
// as a slash, so "/\t/evil.example" and "/\\evil.example" would leave the
// site as "//evil.example" does: only printable ASCII other than a
// backslash is taken.
func safeBack(back string) string {
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") || len(back) > 512 {
		return "/"
	}
	for i := 0; i < len(back); i++ {
		if c := back[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return "/"
		}
	}
	return back
}

// handleLanguage is the switch: it remembers the language chosen in the
// browser, and on the account when signed in (the texts and emails then
// use it too), and goes back to the page.
func (s *Server) handleLanguage(w http.ResponseWriter, r *http.Request) {
	tag := r.PostFormValue("language")
	if !s.cat.Has(tag) {
		s.renderMessage(w, r, http.StatusBadRequest, "FormUnreadableTitle", "LanguageUnknown", "GoBack")
		return
	}
	if s.accounts != nil {
		sess, err := s.session(r)
		if err != nil {
			s.fail(w, r, "session", err)
			return
		}
		if sess != nil {
			if err := s.accounts.SetRecipientLanguage(r.Context(), sess.Phone, tag); err != nil &&
				securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
				s.fail(w, r, "set language", err)
				return
			}
		}
	}
	s.setLangCookie(w, tag)
	http.Redirect(w, r, safeBack(r.PostFormValue("back")), http.StatusSeeOther)
}

// adoptLanguage, at a sign-in, makes the account's language the
// browser's, so that a patient who chose one on another phone finds it
// here; with none chosen yet, the account takes the one the pages are
// in, so that texts and emails follow it.
func (s *Server) adoptLanguage(w http.ResponseWriter, r *http.Request, phone securetextd.Phone) {
	if s.accounts == nil {
		return
	}
	a, err := s.accounts.Account(r.Context(), phone)
	if err != nil {
		s.logger.Warn("account language", "phone", phone.Masked(), "err", err)
		return
	}
	switch {
	case a.Language != "" && s.cat.Has(a.Language):
		s.setLangCookie(w, a.Language)
	case a.Language == "":
		if err := s.accounts.SetRecipientLanguage(r.Context(), phone, s.lang(r)); err != nil {
			s.logger.Warn("account language", "phone", phone.Masked(), "err", err)
		}
	}
}

// withLanguage returns r's context carrying the page's language, which
// the store gives the texts and emails it queues for an account that has
// chosen none (securetextd.WithLanguage).
func (s *Server) withLanguage(r *http.Request) *http.Request {
	return r.WithContext(securetextd.WithLanguage(r.Context(), s.lang(r)))
}
