package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/securetextd/securetextd"
)

// textTo waits for the texts and returns the latest one sent to phone
// (digits only, as Vonage takes it).
func textTo(t *testing.T, vonage *fakeVonage, n int, phone string) string {
	t.Helper()
	texts := vonage.waitTexts(t, n, 10*time.Second)
	for i := len(texts) - 1; i >= 0; i-- {
		if texts[i].To == phone {
			return texts[i].Text
		}
	}
	t.Fatalf("no text to %s among %+v", phone, texts)
	return ""
}

// portalGet fetches a portal page with the Accept-Language given.
func portalGet(t *testing.T, c *http.Client, u, acceptLanguage string) string {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if acceptLanguage != "" {
		req.Header.Set("Accept-Language", acceptLanguage)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return string(b)
}

// TestLanguage walks the choice of language against the real gateway:
// the sender's Content-Language (real SMTP client) and the API's
// "language" choose the text's language; Accept-Language chooses the
// first page's; the switch on every page changes it, keeps it in a
// cookie before sign-in and on the account after, where it then beats
// the sender's; and portal.default_language is what a browser that asks
// for no language the portal has gets.
func TestLanguage(t *testing.T) {
	vonage := newFakeVonage(t)
	cfg := testConfig(t, t.TempDir(), vonage.URL)
	m := startMain(t, cfg)
	if err := m.db.CreateSender(t.Context(), "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	key, _, err := m.db.CreateAPIKey(t.Context(), "dr.who@clinic.example", "ehr")
	if err != nil {
		t.Fatal(err)
	}
	tc := tlsConfigFor(t, cfg)
	auth := func() sasl.Client { return sasl.NewPlainClient("", "dr.who@clinic.example", "correct horse battery") }
	mail := func(to, contentLanguage string) {
		t.Helper()
		msg := "From: Dr Who <dr.who@clinic.example>\r\nTo: " + to + "@secure.text\r\nSubject: Resultados\r\n"
		if contentLanguage != "" {
			msg += "Content-Language: " + contentLanguage + "\r\n"
		}
		msg += "\r\nTodo normal.\r\n"
		if err := send(t, m.SubmissionAddr, tc, auth(), "dr.who@clinic.example", []string{to + "@secure.text"}, msg); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	spanishText := "Test Clinic: tiene un mensaje seguro. Para leerlo, abra http://127.0.0.1:9/m/"
	englishText := "Test Clinic: you have a secure message. Open http://127.0.0.1:9/m/"

	// The sender's language: Content-Language on the mail, "language" in
	// the API; none is the default (English).
	mail("2125550123", "es-MX")
	textA := textTo(t, vonage, 1, "12125550123")
	mail("2025550143", "")
	textB := textTo(t, vonage, 2, "12025550143")
	status, _, body := apiCall(t, "POST", "http://"+m.PortalAddr+"/api/v1/messages", key, "application/json",
		strings.NewReader(`{"to": ["201-436-7789"], "language": "es", "text": "Hola"}`))
	if status != http.StatusCreated && status != http.StatusAccepted && status != http.StatusOK {
		t.Fatalf("api: %d %s", status, body)
	}
	textC := textTo(t, vonage, 3, "12014367789")
	for name, tc := range map[string]struct{ got, want string }{
		"Content-Language: es-MX": {textA, spanishText},
		"no Content-Language":     {textB, englishText},
		"API language es":         {textC, spanishText},
	} {
		if !strings.HasPrefix(tc.got, tc.want) {
			t.Errorf("%s: text %q, want it to start %q", name, tc.got, tc.want)
		}
	}
	status, _, body = apiCall(t, "POST", "http://"+m.PortalAddr+"/api/v1/messages", key, "application/json",
		strings.NewReader(`{"to": ["201-436-7789"], "language": "not a tag!", "text": "Hola"}`))
	if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), "language") {
		t.Errorf("bad API language: %d %s", status, body)
	}

	// Accept-Language on the first visit.
	base := "http://" + m.PortalAddr
	tokenB := linkRE.FindStringSubmatch(textB)[1]
	plain := &http.Client{}
	if page := portalGet(t, plain, base+"/m/"+tokenB, "es-US,es;q=0.9,en;q=0.5"); !strings.Contains(page, `<html lang="es">`) ||
		!strings.Contains(page, "Tiene un mensaje seguro de") || !strings.Contains(page, `lang="en">English</button>`) {
		t.Errorf("Accept-Language es: %s", page)
	}
	for _, al := range []string{"", "en-US,en;q=0.9", "ja"} {
		if page := portalGet(t, plain, base+"/m/"+tokenB, al); !strings.Contains(page, `<html lang="en">`) ||
			!strings.Contains(page, "You have a secure message from") || !strings.Contains(page, `lang="es">Español</button>`) {
			t.Errorf("Accept-Language %q: %s", al, page)
		}
	}

	// The switch, before sign-in: a form that POSTs, kept in a cookie, and
	// back to the page it was on.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.PostForm(base+"/language", url.Values{"language": {"es"}, "back": {"/m/" + tokenB}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/m/"+tokenB {
		t.Fatalf("switch: %d, to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if page := portalGet(t, browser, base+"/m/"+tokenB, "en"); !strings.Contains(page, `<html lang="es">`) {
		t.Errorf("after the switch to Spanish, a page asked for in English: %s", page)
	}
	// Elsewhere than this site, the switch goes nowhere; another site's
	// form cannot use it.
	resp, err = browser.PostForm(base+"/language", url.Values{"language": {"en"}, "back": {"//evil.example/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Location") != "/" {
		t.Errorf("switch back to another site: %q", resp.Header.Get("Location"))
	}
	req, _ := http.NewRequest("POST", base+"/language", strings.NewReader("language=es"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := plain.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site switch: %d", resp.StatusCode)
	}

	// Signing up in Spanish (the cookie says so) keeps Spanish on the
	// account; the switch while signed in changes the account; the
	// account's choice then beats the sender's Content-Language.
	browser.PostForm(base+"/language", url.Values{"language": {"es"}, "back": {"/"}})
	resp, err = browser.PostForm(base+"/m/"+tokenB+"/setup", url.Values{
		"username": {"+12025550143"}, "password": {"una contraseña larga"}, "confirm": {"una contraseña larga"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %d", resp.StatusCode)
	}
	account := func() string {
		a, err := m.db.Account(t.Context(), securetextd.Phone("+12025550143"))
		if err != nil {
			t.Fatal(err)
		}
		return a.Language
	}
	if got := account(); got != "es" {
		t.Errorf("account language after a setup in Spanish: %q", got)
	}
	if page := portalGet(t, browser, base+"/inbox", ""); !strings.Contains(page, `<html lang="es">`) || !strings.Contains(page, "Sus mensajes") {
		t.Errorf("inbox: %s", page)
	}
	resp, err = browser.PostForm(base+"/language", url.Values{"language": {"en"}, "back": {"/inbox"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := account(); got != "en" {
		t.Errorf("account language after the switch to English: %q", got)
	}
	mail("2025550143", "es")
	if got := textTo(t, vonage, 4, "12025550143"); !strings.HasPrefix(got, englishText) {
		t.Errorf("the account chose English, the sender said Spanish: %q", got)
	}
}

// TestDefaultLanguage: portal.default_language is the language of a
// browser that asks for none the portal has, and of the text of a sender
// who says none; a language without a catalogue is refused at start,
// naming the key.
func TestDefaultLanguage(t *testing.T) {
	vonage := newFakeVonage(t)
	cfg := testConfig(t, t.TempDir(), vonage.URL)
	cfg.Portal.DefaultLanguage = "es"
	m := startMain(t, cfg)
	if err := m.db.CreateSender(t.Context(), "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	msg := "From: dr.who@clinic.example\r\nTo: 2125550123@secure.text\r\nSubject: x\r\n\r\nx\r\n"
	if err := send(t, m.SubmissionAddr, tlsConfigFor(t, cfg), sasl.NewPlainClient("", "dr.who@clinic.example", "correct horse battery"),
		"dr.who@clinic.example", []string{"2125550123@secure.text"}, msg); err != nil {
		t.Fatal(err)
	}
	text := textTo(t, vonage, 1, "12125550123")
	if !strings.HasPrefix(text, "Test Clinic: tiene un mensaje seguro.") {
		t.Errorf("text: %q", text)
	}
	token := linkRE.FindStringSubmatch(text)[1]
	for _, al := range []string{"", "ja, de;q=0.5"} {
		if page := portalGet(t, &http.Client{}, "http://"+m.PortalAddr+"/m/"+token, al); !strings.Contains(page, `<html lang="es">`) {
			t.Errorf("Accept-Language %q with default es: %s", al, page)
		}
	}
	if page := portalGet(t, &http.Client{}, "http://"+m.PortalAddr+"/m/"+token, "en"); !strings.Contains(page, `<html lang="en">`) {
		t.Errorf("Accept-Language en with default es: %s", page)
	}

	for _, bad := range []string{"fr", "Spanish", ""} {
		text := strings.Replace(testConfigText(t, vonage.URL), "[portal]\n", "[portal]\ndefault_language = \""+bad+"\"\n", 1)
		_, err := ParseConfig([]byte(text), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "portal.default_language") {
			t.Errorf("default_language %q: %v", bad, err)
		}
	}
}
