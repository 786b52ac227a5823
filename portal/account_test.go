package portal

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// TestSetupWithoutRecoveryAddress: the first visit may leave the address
// out; nothing is mailed, and the link page then says that no reset can be
// sent and to ask the sender, instead of offering one.
func TestSetupWithoutRecoveryAddress(t *testing.T) {
	n := newSharedDB(t).startNode()
	d := n.db.NewDraft()
	w, _ := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
	io.WriteString(w, "BODY-MARKER")
	w.Close()
	if _, err := d.Commit(t.Context(), &securetextd.Message{
		Sender: "dr.who@clinic.example", Subject: "Results", MessageID: "r1@clinic.example", Auth: "smtp-auth",
	}, []securetextd.Phone{phoneA}); err != nil {
		t.Fatal(err)
	}
	job, err := n.db.NextJob(t.Context(), time.Now(), securetextd.JobKindText)
	if err != nil {
		t.Fatal(err)
	}
	var tj securetextd.TextJob
	json.Unmarshal(job.Payload, &tj)

	_, body := n.do("GET", "/m/"+tj.Token, nil)
	mustContain(t, "first visit", body, "(optional)", "ask whoever sent you the message", `autocomplete="username" value="&#43;`+phoneA.Digits()+`"`)
	if status, body := n.do("POST", "/m/"+tj.Token+"/setup", url.Values{
		"password": {password}, "confirm": {password}, "email": {"  "},
	}); status != http.StatusSeeOther {
		t.Fatalf("setup without an address: %d %s", status, body)
	}
	if _, err := n.db.NextJob(t.Context(), time.Now().Add(time.Hour), securetextd.JobKindConfirm); securetextd.ErrorCode(err) != securetextd.ENOTFOUND {
		t.Errorf("a confirmation was queued without an address: %v", err)
	}
	_, body = n.do("GET", "/m/"+tj.Token, nil)
	mustContain(t, "link page without a confirmed address", body, "No confirmed email address is on file", "Ask whoever sent you this message")
	if strings.Contains(body, `href="/reset"`) {
		t.Errorf("the link page offers a reset that cannot be sent:\n%s", body)
	}

	// The account page needs a session; confirmation links are checked
	// before anything is shown, and a GET confirms nothing.
	if status, body := n.do("GET", "/account", nil); status != http.StatusUnauthorized || !strings.Contains(body, "You are not signed in") {
		t.Errorf("account page without a session: %d", status)
	}
	if status, body := n.do("GET", "/confirm/not-a-token-of-ours", nil); status != http.StatusNotFound || !strings.Contains(body, "This confirmation link has expired") {
		t.Errorf("unknown confirmation link: %d", status)
	}
	if err := n.db.SetRecoveryAddress(t.Context(), phoneA, "ana@example.org"); err != nil {
		t.Fatal(err)
	}
	confirm, err := n.db.NextJob(t.Context(), time.Now().Add(time.Hour), securetextd.JobKindConfirm)
	if err != nil {
		t.Fatal(err)
	}
	var mj securetextd.MailJob
	json.Unmarshal(confirm.Payload, &mj)
	for range 2 { // a mail scanner, then the patient
		_, body = n.do("GET", "/confirm/"+mj.Token, nil)
		mustContain(t, "confirmation page", body, "ana@example.org", `action="/confirm/`+mj.Token+`"`)
	}
	if _, ok, _ := n.db.ConfirmedRecoveryAddress(t.Context(), phoneA); ok {
		t.Fatal("a GET confirmed the address")
	}
	_, body = n.do("POST", "/confirm/"+mj.Token, url.Values{})
	mustContain(t, "confirmed", body, "Your email address is confirmed")
	if a, ok, _ := n.db.ConfirmedRecoveryAddress(t.Context(), phoneA); !ok || a != "ana@example.org" {
		t.Errorf("after the POST: %q %v", a, ok)
	}
	if status, _ := n.do("POST", "/confirm/"+mj.Token, url.Values{}); status != http.StatusNotFound {
		t.Errorf("a confirmation link used twice: %d", status)
	}
	_, body = n.do("GET", "/m/"+tj.Token, nil)
	mustContain(t, "link page with a confirmed address", body, `href="/reset"`)
}

// TestAccountRoutesWithoutAccounts: a store that keeps no accounts has no
// account page, and its pages offer resets as before.
func TestAccountRoutesWithoutAccounts(t *testing.T) {
	p, err := New(testConfig(), newFakeStore(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	for _, path := range []string{"/account", "/confirm/abcdefabcdefabcdefabcdef"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}
