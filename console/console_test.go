package console

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/storetest"
	"github.com/securetextd/securetextd/store"
)

const (
	drWho    = "dr.who@clinic.example"
	nurse    = "nurse@clinic.example"
	admin    = "admin@clinic.example"
	password = "correct horse battery"
)

// fakeClock is the console's TOTP clock, moved by the test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// rig is a console on a real store, served on loopback.
type rig struct {
	db    *store.DB
	url   string
	clock *fakeClock
	srv   *Server
}

func newRig(t *testing.T, require string) *rig {
	t.Helper()
	db := storetest.Open(t, storetest.Keys(t))
	ctx := t.Context()
	for _, a := range []string{drWho, nurse, admin} {
		if err := db.CreateSender(ctx, a, password); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SetAdmin(ctx, admin, true); err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	rules := securetextd.PhoneRules{DefaultRegion: "US", AllowedCountries: []string{"US"}}
	s, err := New(Config{Org: "North Clinic", RequireTOTP: require, ParsePhone: rules.Parse, Now: clk.now,
		Location: time.UTC, MaxMessageBytes: 1 << 20}, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &rig{db: db, url: srv.URL, clock: clk, srv: s}
}

// send commits a message of sender to phones, as SMTP would.
func (rg *rig) send(t *testing.T, sender, subject, text string, phones ...securetextd.Phone) int64 {
	t.Helper()
	d := rg.db.NewDraft()
	defer d.Discard()
	w, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, text)
	w.Close()
	f, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartAttachment, ContentType: "application/pdf", Filename: "results.pdf"})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "%PDF-1.4 "+subject)
	f.Close()
	var targets []store.Target
	for _, p := range phones {
		targets = append(targets, store.Target{Phone: p})
	}
	r, err := d.CommitTargets(t.Context(), &securetextd.Message{Sender: sender, Subject: subject,
		MessageID: subject + "@clinic.example", Received: time.Now(), Auth: "smtp-auth"}, targets)
	if err != nil {
		t.Fatal(err)
	}
	return r.MessageID
}

// browser is an HTTP client with its own cookies, as one browser.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
}

func (rg *rig) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar}, base: rg.url}
}

func (b *browser) get(path string) (int, string, string) {
	b.t.Helper()
	res, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Request.URL.Path, string(body)
}

func (b *browser) post(path string, form url.Values) (int, string, string) {
	b.t.Helper()
	res, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Request.URL.Path, string(body)
}

func (b *browser) login(address string) string {
	b.t.Helper()
	_, path, _ := b.post("/login", url.Values{"address": {address}, "password": {password}})
	return path
}

// TestWhoSeesWhat: through the HTTP layer, a sender sees only their own
// messages, in the list and by URL (another's message, and its files,
// are "not found"); an admin sees every sender's.
func TestWhoSeesWhat(t *testing.T) {
	rg := newRig(t, RequireNone)
	mine := rg.send(t, drWho, "Blood results", "Your results are normal.", "+12125550123")
	theirs := rg.send(t, nurse, "Vaccination", "Your appointment is on Monday.", "+12125550188")

	doc := rg.browser(t)
	if path := doc.login(drWho); path != "/sent" {
		t.Fatalf("sign-in went to %s", path)
	}
	code, _, body := doc.get("/sent")
	if code != 200 || !strings.Contains(body, "Blood results") || strings.Contains(body, "Vaccination") || strings.Contains(body, "12125550188") {
		t.Errorf("dr who's Sent (%d):\n%s", code, body)
	}
	if !strings.Contains(body, `data-row="`+strconv.FormatInt(mine, 10)+`-`) || !strings.Contains(body, ">queued<") {
		t.Errorf("dr who's row lacks its status:\n%s", body)
	}
	code, _, body = doc.get("/m/" + strconv.FormatInt(mine, 10))
	if code != 200 || !strings.Contains(body, "Your results are normal.") || !strings.Contains(body, "results.pdf") || !strings.Contains(body, "12125550123") {
		t.Errorf("own message (%d):\n%s", code, body)
	}
	code, _, body = doc.get("/m/" + strconv.FormatInt(mine, 10) + "/p/1")
	if code != 200 || body != "%PDF-1.4 Blood results" {
		t.Errorf("own file: %d %q", code, body)
	}
	for _, p := range []string{"/m/" + strconv.FormatInt(theirs, 10), "/m/" + strconv.FormatInt(theirs, 10) + "/p/1", "/m/99999"} {
		if code, _, body := doc.get(p); code != 404 || strings.Contains(body, "Monday") || strings.Contains(body, "Vaccination") {
			t.Errorf("GET %s as another sender: %d\n%s", p, code, body)
		}
	}
	if ev, err := rg.db.LastAudit(t.Context(), securetextd.AuditPartReadBack); err != nil || ev.Actor != drWho || ev.MessageID != mine {
		t.Errorf("read back audited as %+v, %v", ev, err)
	}

	boss := rg.browser(t)
	boss.login(admin)
	_, _, body = boss.get("/sent")
	for _, want := range []string{"Blood results", "Vaccination", drWho, nurse} {
		if !strings.Contains(body, want) {
			t.Errorf("admin's Sent lacks %q", want)
		}
	}
	if code, _, body := boss.get("/m/" + strconv.FormatInt(theirs, 10)); code != 200 || !strings.Contains(body, "Monday") {
		t.Errorf("admin opening the nurse's message: %d", code)
	}

	// The filter: by phone, by status.
	_, _, body = boss.get("/sent?phone=212-555-0188")
	if strings.Contains(body, "Blood results") || !strings.Contains(body, "Vaccination") {
		t.Errorf("filtered by phone:\n%s", body)
	}
	_, _, body = boss.get("/sent?status=opened")
	if strings.Contains(body, "Blood results") || strings.Contains(body, "Vaccination") {
		t.Errorf("filtered by status opened:\n%s", body)
	}
	if code, _, _ := boss.get("/sent?status=bogus"); code != 400 {
		t.Errorf("a bad status: %d", code)
	}

	// Signed out, nothing shows.
	doc.post("/logout", nil)
	if _, path, _ := doc.get("/sent"); path != "/login" {
		t.Errorf("after sign-out /sent went to %s", path)
	}
}

var secretRE = regexp.MustCompile(`name="secret" value="([A-Z2-7]+)"`)
var codeRE = regexp.MustCompile(`<code>([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})</code>`)

func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totpOpts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTOTP: with console.require_totp = "all", the first sign-in enrols
// TOTP before anything else shows; the next sign-in needs a code, which
// works once (a replay within its window is refused); a recovery code
// works once; wrong codes lock sign-in out.
func TestTOTP(t *testing.T) {
	rg := newRig(t, RequireAll)
	b := rg.browser(t)
	if path := b.login(drWho); path != "/totp" {
		t.Fatalf("first sign-in went to %s, want /totp", path)
	}
	// Before the enrolment the session sees nothing.
	if _, path, _ := b.get("/sent"); path != "/login" {
		t.Errorf("a password-only session reached %s", path)
	}
	_, _, body := b.get("/totp")
	m := secretRE.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, `src="data:image/png;base64,`) {
		t.Fatalf("enrolment page:\n%s", body)
	}
	secret := m[1]
	code, _, body := b.post("/totp", url.Values{"secret": {secret}, "code": {"000000"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, secret) {
		t.Errorf("a wrong first code: %d, the same secret offered again: %v", code, strings.Contains(body, secret))
	}
	code, path, body := b.post("/totp", url.Values{"secret": {secret}, "code": {codeAt(t, secret, rg.clock.now())}})
	codes := codeRE.FindAllStringSubmatch(body, -1)
	if code != 200 || len(codes) != recoveryCodes {
		t.Fatalf("enrolment: %d %s\n%s", code, path, body)
	}
	if _, path, _ := b.get("/sent"); path != "/sent" {
		t.Errorf("after enrolment /sent went to %s", path)
	}
	b.post("/logout", nil)

	// The code of the enrolment's own step is spent.
	if path := b.login(drWho); path != "/login/code" {
		t.Fatalf("sign-in with TOTP went to %s", path)
	}
	if code, _, _ := b.post("/login/code", url.Values{"code": {codeAt(t, secret, rg.clock.now())}}); code != http.StatusUnauthorized {
		t.Errorf("the enrolment's code again: %d, want 401", code)
	}
	rg.clock.advance(30 * time.Second)
	fresh := codeAt(t, secret, rg.clock.now())
	if _, path, _ := b.post("/login/code", url.Values{"code": {fresh}}); path != "/sent" {
		t.Fatalf("a fresh code went to %s", path)
	}
	// Replayed in another browser within its window: refused.
	thief := rg.browser(t)
	thief.login(drWho)
	if code, _, _ := thief.post("/login/code", url.Values{"code": {fresh}}); code != http.StatusUnauthorized {
		t.Errorf("a replayed code: %d, want 401", code)
	}
	if _, path, _ := thief.get("/sent"); path != "/login" {
		t.Errorf("the replaying browser reached %s", path)
	}

	// A recovery code, once.
	r := rg.browser(t)
	r.login(drWho)
	if _, path, _ := r.post("/login/code", url.Values{"code": {strings.ToLower(codes[0][1])}}); path != "/sent" {
		t.Errorf("a recovery code went to %s", path)
	}
	r2 := rg.browser(t)
	r2.login(drWho)
	if code, _, _ := r2.post("/login/code", url.Values{"code": {codes[0][1]}}); code != http.StatusUnauthorized {
		t.Errorf("a used recovery code: %d", code)
	}

	// Wrong codes lock out, the right one too, then.
	var last int
	for range DefaultLockout {
		last, _, _ = r2.post("/login/code", url.Values{"code": {"123456"}})
	}
	if last != http.StatusTooManyRequests {
		t.Errorf("after %d wrong codes: %d, want 429", DefaultLockout, last)
	}
	rg.clock.advance(30 * time.Second)
	if code, _, _ := r2.post("/login/code", url.Values{"code": {codeAt(t, secret, rg.clock.now())}}); code != http.StatusTooManyRequests {
		t.Errorf("the right code while locked: %d, want 429", code)
	}
}

// TestRequireTOTPAdmins: by default TOTP is required of admins only.
func TestRequireTOTPAdmins(t *testing.T) {
	rg := newRig(t, "")
	if path := rg.browser(t).login(admin); path != "/totp" {
		t.Errorf("an admin without TOTP went to %s, want /totp", path)
	}
	if path := rg.browser(t).login(nurse); path != "/sent" {
		t.Errorf("a sender without TOTP went to %s, want /sent", path)
	}
}

// TestEdge: the security headers and the cross-origin refusal, as the
// portal has them; a wrong password locks out after the portal's count.
func TestEdge(t *testing.T) {
	rg := newRig(t, RequireNone)
	res, err := http.Get(rg.url + "/login")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for k, want := range map[string]string{
		"Content-Security-Policy": pageCSP,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"Cache-Control":           "no-store",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	req, _ := http.NewRequest("POST", rg.url+"/login", strings.NewReader(url.Values{"address": {drWho}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || res.Header.Get("Set-Cookie") != "" {
		t.Errorf("cross-site sign-in: %d, cookie %q", res.StatusCode, res.Header.Get("Set-Cookie"))
	}

	b := rg.browser(t)
	var last int
	for i := range DefaultLockout {
		last, _, _ = b.post("/login", url.Values{"address": {nurse}, "password": {"wrong " + strconv.Itoa(i)}})
	}
	if last != http.StatusTooManyRequests {
		t.Errorf("after %d wrong passwords: %d", DefaultLockout, last)
	}
	if code, _, _ := b.post("/login", url.Values{"address": {nurse}, "password": {password}}); code != http.StatusTooManyRequests {
		t.Errorf("the right password while locked: %d", code)
	}
	// The lockout is audited once; tries while locked are not, so a
	// client in a loop cannot fill the audit trail.
	for range 3 {
		b.post("/login", url.Values{"address": {nurse}, "password": {"again"}})
	}
	n := 0
	if err := rg.db.AuditTrail(t.Context(), time.Time{}, func(ev securetextd.AuditEvent) error {
		if ev.Event == securetextd.AuditConsoleLocked {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d lockouts audited, want 1", n)
	}
}
