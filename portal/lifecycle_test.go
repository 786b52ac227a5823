package portal

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/storetest"
	"github.com/securetextd/securetextd/store"
)

// The lifecycle against the real store: its clock is moved by hand.

type liveFixture struct {
	t     *testing.T
	db    *store.DB
	now   time.Time
	srv   *httptest.Server
	c     *http.Client // with a cookie jar
	conv  int64
	msg   int64
	token string // the link of the text
}

func newLiveFixture(t *testing.T, secure bool, secret string) *liveFixture {
	t.Helper()
	db := storetest.Open(t, storetest.Keys(t))
	f := &liveFixture{t: t, db: db, now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	db.Now = func() time.Time { return f.now }
	db.Policy = store.Policy{AccessExpiry: 72 * time.Hour, DeliveryNotices: true, FailureNotices: true, ReadReceipts: securetextd.ReceiptsMDN}

	cfg := testConfig()
	cfg.Secure = secure
	cfg.IdleTimeout = 200 * time.Hour // the clock jumps: keep the session
	cfg.SessionLifetime = 400 * time.Hour
	cfg.VonageSignatureSecret = secret
	srv, err := New(cfg, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if srv.life == nil {
		t.Fatal("*store.DB does not implement Lifecycle")
	}
	f.srv = httptest.NewServer(srv)
	t.Cleanup(f.srv.Close)
	jar, _ := cookiejar.New(nil)
	f.c = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}

	d := db.NewDraft()
	w, _ := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
	io.WriteString(w, "BODY-MARKER all normal")
	w.Close()
	d.RequestReadReceipt("dr.who@clinic.example")
	r, err := d.Commit(t.Context(), &securetextd.Message{
		Sender: "dr.who@clinic.example", Subject: "Results", MessageID: "r1@clinic.example", Auth: "smtp-auth",
	}, []securetextd.Phone{phoneA})
	if err != nil {
		t.Fatal(err)
	}
	f.conv, f.msg = r.Conversations[0].ID, r.MessageID
	job, err := db.NextJob(t.Context(), f.now, securetextd.JobKindText)
	if err != nil {
		t.Fatal(err)
	}
	var tj securetextd.TextJob
	json.Unmarshal(job.Payload, &tj)
	f.token = tj.Token
	if err := db.CompleteText(t.Context(), job.ID, []string{"0A0000000001"}); err != nil {
		t.Fatal(err)
	}
	return f
}

// do sends a request and returns the status and body.
func (f *liveFixture) do(method, path string, form url.Values) (int, string) {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", "TestPhone/1.0")
	resp, err := f.c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// signIn sets the password through the link and signs this client in.
func (f *liveFixture) signIn() {
	f.t.Helper()
	status, body := f.do("POST", "/m/"+f.token+"/setup", url.Values{
		"password": {password}, "confirm": {password}, "email": {"ana@example.org"},
	})
	if status != http.StatusOK || !strings.Contains(body, "BODY-MARKER") {
		f.t.Fatalf("setup: %d %s", status, body)
	}
}

// confirmRecovery confirms the recovery address signIn gave, as its owner
// does from the confirmation email: resets go only to a confirmed address.
func (f *liveFixture) confirmRecovery() {
	f.t.Helper()
	job, err := f.db.NextJob(f.t.Context(), f.now.Add(time.Hour), securetextd.JobKindConfirm)
	if err != nil {
		f.t.Fatalf("the confirmation email: %v", err)
	}
	var mj securetextd.MailJob
	if err := json.Unmarshal(job.Payload, &mj); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.db.ConfirmRecoveryAddress(f.t.Context(), mj.Token); err != nil {
		f.t.Fatal(err)
	}
	if err := f.db.CompleteJob(f.t.Context(), job.ID); err != nil {
		f.t.Fatal(err)
	}
}

func (f *liveFixture) pending(kind string) int {
	n := 0
	for {
		j, err := f.db.NextJob(f.t.Context(), f.now.Add(time.Hour), kind)
		if err != nil {
			return n
		}
		n++
		f.db.CompleteJob(f.t.Context(), j.ID)
	}
}

// TestExpiryPages: at 72 hours the link and the open conversation say in
// plain words that it has expired; the inbox lets it go; a new message
// opens it again.
func TestExpiryPages(t *testing.T) {
	f := newLiveFixture(t, false, "")
	f.signIn()
	conv := "/c/" + strconv.FormatInt(f.conv, 10)

	f.now = f.now.Add(72*time.Hour - time.Second)
	if status, body := f.do("GET", conv, nil); status != http.StatusOK || !strings.Contains(body, "BODY-MARKER") {
		t.Fatalf("before expiry: %d", status)
	}
	f.now = f.now.Add(time.Second)
	for _, path := range []string{"/m/" + f.token, conv, conv + "/m/" + strconv.FormatInt(f.msg, 10) + "/p/0"} {
		status, body := f.do("GET", path, nil)
		if status != http.StatusGone || !strings.Contains(body, "This conversation has expired. Ask the sender to write again.") ||
			strings.Contains(body, "BODY-MARKER") || strings.Contains(body, "Results") {
			t.Errorf("GET %s after expiry: %d %s", path, status, body)
		}
	}
	if _, body := f.do("GET", "/inbox", nil); strings.Contains(body, "dr.who") {
		t.Errorf("expired conversation in the inbox: %s", body)
	}
	// An unknown link is still the plain 404.
	if status, body := f.do("GET", "/m/"+strings.Repeat("A", 22), nil); status != http.StatusNotFound || strings.Contains(body, "expired. Ask") {
		t.Errorf("unknown link: %d", status)
	}

	// The sender writes into the conversation again: it reopens.
	d := f.db.NewDraft()
	w, _ := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
	io.WriteString(w, "FOLLOW-UP")
	w.Close()
	if _, err := d.CommitTargets(t.Context(), &securetextd.Message{Sender: "dr.who@clinic.example", Auth: "smtp-auth"},
		[]store.Target{{Phone: phoneA, ConversationID: f.conv}}); err != nil {
		t.Fatal(err)
	}
	if status, body := f.do("GET", "/m/"+f.token, nil); status != http.StatusOK || !strings.Contains(body, "FOLLOW-UP") {
		t.Errorf("after renewal: %d %s", status, body)
	}
}

// TestRevokeWithinOneRequest: the notice's link shows a confirmation on
// GET and changes nothing; one POST withdraws, and the very next request
// for the link says so.
func TestRevokeWithinOneRequest(t *testing.T) {
	f := newLiveFixture(t, false, "")
	f.signIn()
	job, err := f.db.NextJob(t.Context(), f.now, securetextd.JobKindNotice)
	if err != nil {
		t.Fatal(err)
	}
	var mj securetextd.MailJob
	json.Unmarshal(job.Payload, &mj)

	status, body := f.do("GET", "/revoke/"+mj.Token, nil)
	if status != http.StatusOK || !strings.Contains(body, "Withdraw your secure message?") ||
		!strings.Contains(body, "1212*****23") || strings.Contains(body, "Results") || strings.Contains(body, "BODY-MARKER") {
		t.Fatalf("confirm page: %d %s", status, body)
	}
	if status, _ := f.do("GET", "/m/"+f.token, nil); status != http.StatusOK {
		t.Fatalf("GET of the revocation link revoked: %d", status)
	}
	if status, _ := f.do("GET", "/revoke/"+mj.Token+"x", nil); status != http.StatusNotFound {
		t.Errorf("unknown revocation token: %d", status)
	}

	status, body = f.do("POST", "/revoke/"+mj.Token, url.Values{})
	if status != http.StatusOK || !strings.Contains(body, "Your message is withdrawn") {
		t.Fatalf("revoke: %d %s", status, body)
	}
	status, body = f.do("GET", "/m/"+f.token, nil)
	if status != http.StatusGone || !strings.Contains(body, "withdrawn by the sender") {
		t.Errorf("link after revoke: %d %s", status, body)
	}
	if status, body := f.do("GET", "/c/"+strconv.FormatInt(f.conv, 10), nil); status != http.StatusGone || strings.Contains(body, "BODY-MARKER") {
		t.Errorf("signed-in conversation after revoke: %d", status)
	}
	if status, body := f.do("POST", "/revoke/"+mj.Token, url.Values{}); status != http.StatusOK || !strings.Contains(body, "withdrawn") {
		t.Errorf("second revoke: %d", status)
	}
	if status, body := f.do("GET", "/revoke/"+mj.Token, nil); status != http.StatusOK || strings.Contains(body, `action="/revoke/`) {
		t.Errorf("revocation page once withdrawn: %d %s", status, body)
	}

	// A cross-site form cannot withdraw.
	req, _ := http.NewRequest("POST", f.srv.URL+"/revoke/"+mj.Token, strings.NewReader(""))
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %v %v", resp, err)
	}
}

// TestViewsAndReceipts: each page view is an audit event with the client
// and its user agent; the first one queues the read receipt, once.
func TestViewsAndReceipts(t *testing.T) {
	f := newLiveFixture(t, false, "")
	f.signIn()
	for range 3 {
		f.do("GET", "/c/"+strconv.FormatInt(f.conv, 10), nil)
	}
	f.do("GET", "/c/"+strconv.FormatInt(f.conv, 10)+"/m/"+strconv.FormatInt(f.msg, 10)+"/p/0", nil)
	if n := f.pending(securetextd.JobKindMDN); n != 1 {
		t.Errorf("%d read receipts queued, want 1", n)
	}
	var events []securetextd.AuditEvent
	f.db.AuditTrail(t.Context(), time.Time{}, func(ev securetextd.AuditEvent) error {
		events = append(events, ev)
		return nil
	})
	seen := map[string]int{}
	for _, ev := range events {
		seen[ev.Event]++
		if strings.HasPrefix(ev.Event, "message.viewed") || ev.Event == securetextd.AuditDownloaded || ev.Event == securetextd.AuditLinkOpened {
			if ev.Client != "127.0.0.1" || ev.UserAgent != "TestPhone/1.0" || ev.Actor != string(phoneA) || ev.ConversationID != f.conv {
				t.Errorf("%s: %+v", ev.Event, ev)
			}
		}
	}
	// The setup redirects to the conversation: 1 + 3 views, and the
	// body fetched on its own is one more.
	if seen[securetextd.AuditMessageViewed] != 5 || seen[securetextd.AuditDownloaded] != 1 ||
		seen[securetextd.AuditPasswordSet] != 1 || seen[securetextd.AuditReceiptQueued] != 1 {
		t.Errorf("events %v", seen)
	}
}

func dlrForm(messageID, status string) url.Values {
	return url.Values{
		"msisdn": {"12125550123"}, "to": {"NorthClinic"}, "network-code": {"310004"},
		"messageId": {messageID}, "price": {"0.00750000"}, "status": {status}, "scts": {"2603020901"},
		"err-code": {"0"}, "message-timestamp": {"2026-03-02 09:01:03"},
	}
}

// TestVonageDLR: a delivery receipt marks the text delivered; a failure
// queues the sender's notice; malformed receipts are refused; on an HTTPS
// portal without a secret, unsigned receipts are refused.
func TestVonageDLR(t *testing.T) {
	f := newLiveFixture(t, false, "")
	if status, _ := f.do("POST", "/hooks/vonage/dlr", dlrForm("0A0000000001", "delivered")); status != http.StatusNoContent {
		t.Fatalf("delivered: %d", status)
	}
	sent, _ := f.db.SentMessages(t.Context(), "", time.Time{})
	if len(sent) != 1 || sent[0].State != securetextd.TextDelivered {
		t.Fatalf("report %+v", sent)
	}
	if status, _ := f.do("POST", "/hooks/vonage/dlr", dlrForm("0A0000000099", "delivered")); status != http.StatusNoContent {
		t.Errorf("unknown text: %d, want 204 so that Vonage stops", status)
	}
	if status, _ := f.do("POST", "/hooks/vonage/dlr", dlrForm("0A0000000001", "exploded")); status != http.StatusBadRequest {
		t.Errorf("unknown status: %d", status)
	}
	if status, _ := f.do("POST", "/hooks/vonage/dlr", url.Values{"status": {"delivered"}}); status != http.StatusBadRequest {
		t.Errorf("no id: %d", status)
	}
	big := dlrForm("0A0000000001", "delivered")
	big.Set("price", strings.Repeat("9", 20<<10))
	if status, _ := f.do("POST", "/hooks/vonage/dlr", big); status != http.StatusBadRequest {
		t.Errorf("oversized: %d", status)
	}

	// JSON, by client-ref, failed: the sender is told.
	// The text is the first job of the fresh database: client-ref "1".
	g := newLiveFixture(t, false, "")
	req, _ := http.NewRequest("POST", g.srv.URL+"/hooks/vonage/dlr",
		strings.NewReader(`{"messageId":"0A00000000FF","status":"failed","err-code":5,"client-ref":"1"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("json dlr: %v %v", resp, err)
	}
	if n := g.pending(securetextd.JobKindUndelivered); n != 1 {
		t.Errorf("%d failure notices, want 1", n)
	}

	// Production: unsigned receipts are refused.
	h := newLiveFixture(t, true, "")
	if status, _ := h.do("POST", "/hooks/vonage/dlr", dlrForm("0A0000000001", "failed")); status != http.StatusForbidden {
		t.Errorf("unsigned on https: %d", status)
	}
	if n := h.pending(securetextd.JobKindUndelivered); n != 0 {
		t.Error("an unsigned receipt was recorded")
	}
}

// TestVonageSignature: signed receipts are checked as Vonage documents.
func TestVonageSignature(t *testing.T) {
	// Vonage's own test vector for the md5hash method (its SDKs' tests).
	p := map[string]string{"a": "1", "b": "2", "timestamp": "1461605396"}
	if got, _ := vonageSignature(p, "secret", "md5hash"); got != "6af838ef94998832dbfc29020b564830" {
		t.Errorf("md5hash = %s", got)
	}
	// HMAC-SHA256 of "&a=1&b=2&timestamp=1461605396" keyed with the secret.
	mac := hmac.New(sha256.New, []byte("secret"))
	mac.Write([]byte("&a=1&b=2&timestamp=1461605396"))
	if got, _ := vonageSignature(p, "secret", "sha256"); got != hex.EncodeToString(mac.Sum(nil)) {
		t.Errorf("sha256 = %s", got)
	}
	// & and = in values become _.
	q := map[string]string{"text": "You & Me = Love", "timestamp": "1"}
	r := map[string]string{"text": "You _ Me _ Love", "timestamp": "1"}
	a, _ := vonageSignature(q, "s", "md5hash")
	b, _ := vonageSignature(r, "s", "md5hash")
	if a != b {
		t.Error("& and = are not replaced")
	}

	const secret = "sig-secret-123"
	f := newLiveFixture(t, true, secret)
	form := dlrForm("0A0000000001", "delivered")
	form.Set("timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	params := map[string]string{}
	for k := range form {
		params[k] = form.Get(k)
	}
	sig, _ := vonageSignature(params, secret, "sha256")
	form.Set("sig", strings.ToUpper(sig)) // Vonage sends HMACs in upper case

	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("status", "failed")
	if status, _ := f.do("POST", "/hooks/vonage/dlr", bad); status != http.StatusUnauthorized {
		t.Errorf("altered receipt: %d", status)
	}
	unsigned := dlrForm("0A0000000001", "delivered")
	if status, _ := f.do("POST", "/hooks/vonage/dlr", unsigned); status != http.StatusUnauthorized {
		t.Errorf("unsigned receipt with a secret: %d", status)
	}
	if status, _ := f.do("POST", "/hooks/vonage/dlr", form); status != http.StatusNoContent {
		t.Fatalf("signed receipt: %d", status)
	}
	stale := url.Values{}
	for k, v := range form {
		stale[k] = v
	}
	stale.Set("timestamp", strconv.FormatInt(time.Now().Add(-48*time.Hour).Unix(), 10))
	params["timestamp"] = stale.Get("timestamp")
	sig, _ = vonageSignature(params, secret, "sha256")
	stale.Set("sig", sig)
	if status, _ := f.do("POST", "/hooks/vonage/dlr", stale); status != http.StatusUnauthorized {
		t.Errorf("stale receipt: %d", status)
	}
	sent, _ := f.db.SentMessages(t.Context(), "", time.Time{})
	if sent[0].State != securetextd.TextDelivered {
		t.Errorf("state %s", sent[0].State)
	}
}
