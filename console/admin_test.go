package console

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/securetextd/securetextd"
)

var (
	passwordRE = regexp.MustCompile(`id="new-password">([A-Z2-7]+)<`)
	keyRE      = regexp.MustCompile(`id="new-key">(stx_[^<]+)<`)
	revokeRE   = regexp.MustCompile(`href="(/admin/keys/\d+/revoke)"`)
)

// TestAdminPages: a non-admin reaches no admin page, GET or POST (404,
// nothing changed); an admin adds an account (its password shown once,
// and it signs in with it), creates an API key (shown once, and it
// authenticates), revokes it and removes the account after confirmation
// pages, sees the limits and the audit chain verify; each change is
// audited as the admin's.
func TestAdminPages(t *testing.T) {
	rg := newRig(t, RequireNone)
	ctx := t.Context()
	doc := rg.browser(t)
	doc.login(drWho)
	for _, p := range []string{"/admin", "/admin/audit", "/admin/senders/remove?address=" + nurse, "/admin/keys/1/revoke"} {
		if code, _, body := doc.get(p); code != http.StatusNotFound || strings.Contains(body, nurse) {
			t.Errorf("GET %s as a sender: %d", p, code)
		}
	}
	for p, form := range map[string]url.Values{
		"/admin/senders":        {"address": {"mallory@clinic.example"}, "admin": {"1"}},
		"/admin/senders/remove": {"address": {nurse}},
		"/admin/keys":           {"sender": {drWho}, "name": {"x"}},
	} {
		if code, _, _ := doc.post(p, form); code != http.StatusNotFound {
			t.Errorf("POST %s as a sender: %d, want 404", p, code)
		}
	}
	if _, err := rg.db.SenderAccount(ctx, "mallory@clinic.example"); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("a sender added an account: %v", err)
	}
	if _, err := rg.db.SenderAccount(ctx, nurse); err != nil {
		t.Errorf("a sender removed an account: %v", err)
	}
	if keys, _ := rg.db.ListAPIKeys(ctx, ""); len(keys) != 0 {
		t.Errorf("a sender created keys: %v", keys)
	}
	if strings.Contains(func() string { _, _, b := doc.get("/sent"); return b }(), `href="/admin"`) {
		t.Error("a sender's pages link to /admin")
	}

	rg.srv.cfg.Limits = Limits{DailyPerSender: 250, PerPhonePerHour: 10, DailyOrg: 5000}
	boss := rg.browser(t)
	boss.login(admin)
	code, _, body := boss.get("/admin")
	for _, want := range []string{drWho, nurse, "5000", "limits.daily_org", "250"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("admin page (%d) lacks %q", code, want)
		}
	}
	_, _, body = boss.post("/admin/senders", url.Values{"address": {"New.Doc@Clinic.example"}})
	m := passwordRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no password shown for the new account:\n%s", body)
	}
	if _, err := rg.db.AuthenticateSender(ctx, "new.doc@clinic.example", m[1]); err != nil {
		t.Errorf("the new account's password: %v", err)
	}
	if _, _, again := boss.get("/admin"); strings.Contains(again, m[1]) {
		t.Error("the password is shown again")
	}
	if code, _, _ := boss.post("/admin/senders", url.Values{"address": {"new.doc@clinic.example"}}); code != http.StatusUnprocessableEntity {
		t.Errorf("adding an account twice: %d", code)
	}
	ev, _ := rg.db.LastAudit(ctx, securetextd.AuditSenderChanged)
	if ev == nil || ev.Actor != admin || ev.Detail != "add new.doc@clinic.example" {
		t.Errorf("account added, audited as %+v", ev)
	}

	_, _, body = boss.post("/admin/keys", url.Values{"sender": {nurse}, "name": {"EHR"}})
	k := keyRE.FindStringSubmatch(body)
	if k == nil {
		t.Fatalf("no key shown:\n%s", body)
	}
	if key, err := rg.db.AuthenticateAPIKey(ctx, k[1]); err != nil || key.Sender != nurse {
		t.Fatalf("the new key: %+v %v", key, err)
	}
	rv := revokeRE.FindStringSubmatch(body)
	if rv == nil {
		t.Fatal("no revoke link")
	}
	if code, _, body := boss.get(rv[1]); code != 200 || !strings.Contains(body, "Revoke the API key") {
		t.Errorf("revoke confirmation: %d\n%s", code, body)
	}
	boss.post(rv[1], nil)
	if _, err := rg.db.AuthenticateAPIKey(ctx, k[1]); err == nil {
		t.Error("the revoked key still authenticates")
	}
	if ev, _ := rg.db.LastAudit(ctx, securetextd.AuditAPIKeyChanged); ev == nil || ev.Actor != admin || !strings.HasPrefix(ev.Detail, "revoked ") {
		t.Errorf("key revoked, audited as %+v", ev)
	}

	if code, _, body := boss.get("/admin/senders/remove?address=new.doc@clinic.example"); code != 200 || !strings.Contains(body, "Remove new.doc@clinic.example?") {
		t.Errorf("remove confirmation: %d\n%s", code, body)
	}
	boss.post("/admin/senders/remove", url.Values{"address": {"new.doc@clinic.example"}})
	if _, err := rg.db.SenderAccount(ctx, "new.doc@clinic.example"); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("the account was not removed: %v", err)
	}
	if code, _, _ := boss.post("/admin/senders/remove", url.Values{"address": {admin}}); code != http.StatusUnprocessableEntity {
		t.Errorf("an admin removing their own account: %d", code)
	}

	code, _, body = boss.get("/admin/audit")
	if code != 200 || !strings.Contains(body, "The hash chain verifies") {
		t.Errorf("audit check: %d\n%s", code, body)
	}
}
