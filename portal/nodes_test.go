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
	"github.com/securetextd/securetextd/internal/storetest"
	"github.com/securetextd/securetextd/store"
)

// Several gateway nodes on one database: each test "node" is a portal
// over a *store.DB handle of its own on the same database (SQLite's file,
// or a PostgreSQL database when SECURETEXTD_TEST_ENGINE=postgres).

// sharedDB is one database that nodes open handles to.
type sharedDB struct{ *storetest.Shared }

func newSharedDB(t *testing.T) *sharedDB { return &sharedDB{storetest.NewShared(t)} }

// open opens a handle, closed at the end of the test if not before.
func (s *sharedDB) open() *store.DB { return s.Open() }

// node is one gateway's portal.
type node struct {
	t   *testing.T
	db  *store.DB
	srv *httptest.Server
}

// startNode serves a portal over a new handle on s.
func (s *sharedDB) startNode() *node {
	s.T.Helper()
	db := s.open()
	cfg := testConfig()
	cfg.Secure = false
	p, err := New(cfg, db, slog.New(slog.DiscardHandler))
	if err != nil {
		s.T.Fatal(err)
	}
	n := &node{t: s.T, db: db, srv: httptest.NewServer(p)}
	s.T.Cleanup(n.stop)
	return n
}

// stop shuts the node down, as a restart would.
func (n *node) stop() {
	n.srv.Close()
	n.db.Close()
}

// do sends a request to the node and returns the status and body; it
// follows no redirect.
func (n *node) do(method, path string, form url.Values) (int, string) {
	n.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, n.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// texted commits a message to phone with db, and returns the link of its
// text. The phone's account has password and a recovery address.
func texted(t *testing.T, db *store.DB, phone securetextd.Phone) string {
	t.Helper()
	d := db.NewDraft()
	w, _ := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
	io.WriteString(w, "BODY-MARKER")
	w.Close()
	if _, err := d.Commit(t.Context(), &securetextd.Message{
		Sender: "dr.who@clinic.example", Subject: "Results", MessageID: "r1@clinic.example", Auth: "smtp-auth",
	}, []securetextd.Phone{phone}); err != nil {
		t.Fatal(err)
	}
	job, err := db.NextJob(t.Context(), time.Now(), securetextd.JobKindText)
	if err != nil {
		t.Fatal(err)
	}
	var tj securetextd.TextJob
	json.Unmarshal(job.Payload, &tj)
	if err := db.CompleteJob(t.Context(), job.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRecipient(t.Context(), phone, password, "ana@example.org"); err != nil {
		t.Fatal(err)
	}
	// Resets go only to a confirmed address: confirm it.
	confirm, err := db.NextJob(t.Context(), time.Now().Add(time.Hour), securetextd.JobKindConfirm)
	if err != nil {
		t.Fatal(err)
	}
	var mj securetextd.MailJob
	json.Unmarshal(confirm.Payload, &mj)
	if _, err := db.ConfirmRecoveryAddress(t.Context(), mj.Token); err != nil {
		t.Fatal(err)
	}
	if err := db.CompleteJob(t.Context(), confirm.ID); err != nil {
		t.Fatal(err)
	}
	return tj.Token
}

// TestLockoutAcrossNodes: wrong passwords typed on two nodes add up to
// one lockout, which holds on both, on the link page and at login, and
// after every node has restarted.
func TestLockoutAcrossNodes(t *testing.T) {
	shared := newSharedDB(t)
	a, b := shared.startNode(), shared.startNode()
	token := texted(t, a.db, phoneA)
	login := "/m/" + token + "/login"
	for i := range 4 {
		n := []*node{a, b}[i%2]
		if status, body := n.do("POST", login, url.Values{"password": {"not my password"}}); status != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d %s", i+1, status, body)
		}
	}
	if status, _ := a.do("POST", login, url.Values{"password": {"not my password"}}); status != http.StatusTooManyRequests {
		t.Fatalf("the fifth wrong password, the third on this node: %d, want 429", status)
	}
	if status, _ := b.do("POST", login, url.Values{"password": {password}}); status != http.StatusTooManyRequests {
		t.Errorf("the right password on the other node: %d, want 429", status)
	}
	_, body := b.do("GET", "/m/"+token, nil)
	mustContain(t, "the other node's link page", body, "Try again in 15 minutes.")

	a.stop()
	b.stop()
	c := shared.startNode()
	if status, body := c.do("POST", login, url.Values{"password": {password}}); status != http.StatusTooManyRequests {
		t.Errorf("the right password after a restart: %d, want 429", status)
	} else {
		mustContain(t, "after a restart", body, "Try again in")
	}
}

// TestResetLimitAcrossNodes: reset requests for one number on two nodes
// are limited together: no more reset emails than one node would send.
func TestResetLimitAcrossNodes(t *testing.T) {
	shared := newSharedDB(t)
	a, b := shared.startNode(), shared.startNode()
	texted(t, a.db, phoneA)
	for i := range 8 {
		[]*node{a, b}[i%2].do("POST", "/reset", url.Values{"phone": {string(phoneA)}})
	}
	mails := 0
	for {
		j, err := a.db.NextJob(t.Context(), time.Now().Add(time.Hour), securetextd.JobKindReset)
		if err != nil {
			break
		}
		mails++
		a.db.CompleteJob(t.Context(), j.ID)
	}
	if mails != DefaultLockout {
		t.Errorf("%d reset emails from 8 requests on two nodes, want %d", mails, DefaultLockout)
	}
}

// TestAuditFloodAcrossNodes: a link fetched in a loop on two nodes adds
// no more audit rows than the limit allows one client in a minute.
func TestAuditFloodAcrossNodes(t *testing.T) {
	shared := newSharedDB(t)
	a, b := shared.startNode(), shared.startNode()
	token := texted(t, a.db, phoneA)
	for i := range 2 * auditPerMinute {
		if status, _ := []*node{a, b}[i%2].do("GET", "/m/"+token, nil); status != http.StatusOK {
			t.Fatalf("link %d: %d", i, status)
		}
	}
	opened := 0
	err := a.db.AuditTrail(t.Context(), time.Time{}, func(ev securetextd.AuditEvent) error {
		if ev.Event == securetextd.AuditLinkOpened {
			opened++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if opened != auditPerMinute {
		t.Errorf("%d link.opened rows from %d fetches on two nodes within a minute, want %d", opened, 2*auditPerMinute, auditPerMinute)
	}
	if _, err := a.db.VerifyAudit(t.Context()); err != nil {
		t.Errorf("verify: %v", err)
	}
}

// TestLockoutSurvivesRestart: a lockout earned on one node holds after
// that node restarts.
func TestLockoutSurvivesRestart(t *testing.T) {
	shared := newSharedDB(t)
	a := shared.startNode()
	token := texted(t, a.db, phoneA)
	login := "/m/" + token + "/login"
	for range DefaultLockout {
		a.do("POST", login, url.Values{"password": {"not my password"}})
	}
	a.stop()
	b := shared.startNode()
	if status, _ := b.do("POST", login, url.Values{"password": {password}}); status != http.StatusTooManyRequests {
		t.Errorf("the right password after a restart: %d, want 429", status)
	}
}
