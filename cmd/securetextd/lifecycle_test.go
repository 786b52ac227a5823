package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd/store"
)

// portalClient is a browser without a browser: a cookie jar, and the
// portal's real address in place of the public URL the links carry.
type portalClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newPortalClient(t *testing.T, m *Main) *portalClient {
	jar, _ := cookiejar.New(nil)
	return &portalClient{t: t, base: "http://" + m.PortalAddr, c: &http.Client{Jar: jar}}
}

func (p *portalClient) do(method, path string, form url.Values) (int, string) {
	p.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, p.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", "Mozilla/5.0 (Linux; Android 9) TestPhone")
	resp, err := p.c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// lifecycleGateway starts a gateway with a relay for outgoing mail, its
// configuration written to a file (for the commands), and a sender.
func lifecycleGateway(t *testing.T, extra string) (*Main, *fakeVonage, *testRelay, string) {
	t.Helper()
	vonage := newFakeVonage(t)
	relay := newTestRelay(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "securetextd.toml")
	text := testConfigText(t, vonage.URL) + "\n" + extra
	text = strings.Replace(text, "[sms]\n", "[mail]\nrelay = \""+relay.addr+"\"\n\n[sms]\n", 1)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), MailTLS: relay.client}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(t.Context()) })
	if err := m.db.CreateSender(t.Context(), "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	return m, vonage, relay, path
}

func sendAs(t *testing.T, m *Main, to []string, msg string) error {
	t.Helper()
	return send(t, m.SubmissionAddr, tlsConfigFor(t, m.Config),
		sasl.NewPlainClient("", "dr.who@clinic.example", "correct horse battery"), "dr.who@clinic.example", to, msg)
}

func isMDN(m relayedMail) bool {
	return strings.Contains(m.header("Content-Type"), "report-type=disposition-notification")
}

// TestReadReceiptOnceThreaded: a message that asks for a read receipt
// gets one RFC 8098 MDN, on the recipient's first view, threaded under it,
// sent to the checked sender (not to the address the header names),
// however often the page is seen.
func TestReadReceiptOnceThreaded(t *testing.T) {
	m, vonage, relay, _ := lifecycleGateway(t, "")
	if err := sendAs(t, m, []string{"2125550123@secure.text"},
		"From: Dr Who <dr.who@clinic.example>\r\n"+
			"Subject: Your results\r\n"+
			"Message-ID: <mdn-1@clinic.example>\r\n"+
			"References: <earlier@clinic.example>\r\n"+
			"Disposition-Notification-To: Someone Else <receipts@elsewhere.example>\r\n"+
			"\r\nAll normal.\r\n"); err != nil {
		t.Fatal(err)
	}
	token := linkRE.FindStringSubmatch(vonage.waitTexts(t, 1, 10*time.Second)[0].Text)[1]
	p := newPortalClient(t, m)
	status, body := p.do("POST", "/m/"+token+"/setup", url.Values{
		"password": {"maple syrup on pancakes"}, "confirm": {"maple syrup on pancakes"}, "email": {"ana@example.org"},
	})
	if status != http.StatusOK || !strings.Contains(body, "All normal.") {
		t.Fatalf("setup: %d %s", status, body)
	}
	mdn := relay.waitFor(t, "an MDN", isMDN)
	for range 3 {
		if status, _ := p.do("GET", "/m/"+token, nil); status != http.StatusOK {
			t.Fatalf("reload: %d", status)
		}
	}
	time.Sleep(500 * time.Millisecond) // a second receipt would have come by now
	if n := relay.count(isMDN); n != 1 {
		t.Errorf("%d MDNs, want exactly 1", n)
	}

	if len(mdn.To) != 1 || mdn.To[0] != "dr.who@clinic.example" {
		t.Errorf("MDN to %v, want the checked sender only", mdn.To)
	}
	if s := mdn.header("In-Reply-To"); s != "<mdn-1@clinic.example>" {
		t.Errorf("In-Reply-To = %q", s)
	}
	if s := mdn.header("References"); s != "<earlier@clinic.example> <mdn-1@clinic.example>" {
		t.Errorf("References = %q", s)
	}
	if s := mdn.header("Subject"); s != "Read: Your results" {
		t.Errorf("Subject = %q", s)
	}
	e, err := message.Read(bytes.NewReader(mdn.Data))
	if err != nil {
		t.Fatal(err)
	}
	if mt, params, _ := e.Header.ContentType(); mt != "multipart/report" || params["report-type"] != "disposition-notification" {
		t.Fatalf("Content-Type %s %v", mt, params)
	}
	mr := e.MultipartReader()
	var parts []string
	var report string
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		mt, _, _ := part.Header.ContentType()
		parts = append(parts, mt)
		b, _ := io.ReadAll(part.Body)
		if mt == "message/disposition-notification" {
			report = string(b)
		}
	}
	if strings.Join(parts, ",") != "text/plain,message/disposition-notification" {
		t.Errorf("parts %v", parts)
	}
	for _, want := range []string{
		"Reporting-UA: ", "; securetextd ",
		"Original-Recipient: rfc822;12125550123@secure.text\r\n",
		"Final-Recipient: rfc822;12125550123@secure.text\r\n",
		"Original-Message-ID: <mdn-1@clinic.example>\r\n",
		"Disposition: automatic-action/MDN-sent-automatically; displayed\r\n",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("disposition notification lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(string(mdn.Data), "All normal") {
		t.Error("the MDN carries the message's content")
	}
}

// TestLimitsOverSMTP: over a limit, the client gets 452 4.5.3 with a text
// that says when the limit resets, and nothing is texted.
func TestLimitsOverSMTP(t *testing.T) {
	m, vonage, _, _ := lifecycleGateway(t, "[limits]\ndaily_per_sender = 3\nper_phone_per_hour = 1\n")
	msg := "From: dr.who@clinic.example\r\nSubject: Hello\r\n\r\nHello.\r\n"
	want452 := func(err error, text string) {
		t.Helper()
		var se *gosmtp.SMTPError
		if !errors.As(err, &se) || se.Code != 452 || se.EnhancedCode != (gosmtp.EnhancedCode{4, 5, 3}) ||
			!strings.Contains(se.Message, text) || !strings.Contains(se.Message, "resets for this message at ") {
			t.Errorf("got %v, want 452 4.5.3 %q", err, text)
		}
	}
	if err := sendAs(t, m, []string{"2125550123@secure.text"}, msg); err != nil {
		t.Fatal(err)
	}
	want452(sendAs(t, m, []string{"2125550123@secure.text"}, msg), "a phone number gets at most 1 secure texts an hour")
	if err := sendAs(t, m, []string{"2025550143@secure.text", "2014367789@secure.text"}, msg); err != nil {
		t.Fatal(err)
	}
	want452(sendAs(t, m, []string{"2025550199@secure.text"}, msg), "Daily limit reached: dr.who@clinic.example may send 3 texts in 24 hours")
	time.Sleep(300 * time.Millisecond)
	if n := len(vonage.waitTexts(t, 3, 10*time.Second)); n != 3 {
		t.Errorf("%d texts, want 3", n)
	}
}

// TestLifecycleCommands: the revocation link of the delivery notice, a
// delivery receipt through the portal's hook, and the operator's
// commands: report, revoke, purge, audit export and audit verify, which
// names each row altered, removed or inserted with plain SQL.
func TestLifecycleCommands(t *testing.T) {
	m, vonage, relay, path := lifecycleGateway(t, "")
	if err := sendAs(t, m, []string{"2125550123@secure.text", "2025550143@secure.text"},
		"From: dr.who@clinic.example\r\nSubject: Wrong number\r\nMessage-ID: <oops-1@clinic.example>\r\n\r\nPrivate.\r\n"); err != nil {
		t.Fatal(err)
	}
	texts := vonage.waitTexts(t, 2, 10*time.Second)
	p := newPortalClient(t, m)

	// A delivery receipt for the first text, as Vonage posts it.
	if status, _ := p.do("POST", "/hooks/vonage/dlr", url.Values{
		"msisdn": {texts[0].To}, "to": {"TestClinic"}, "messageId": {"0A000000001"}, "status": {"delivered"},
		"err-code": {"0"}, "message-timestamp": {"2026-03-02 09:01:03"},
	}); status != http.StatusNoContent {
		t.Fatalf("dlr: %d", status)
	}

	// The sender withdraws the message to the second phone from the
	// notice: one POST, and its link says so.
	var first, second string
	for _, tx := range texts {
		switch tx.To {
		case "12125550123":
			first = linkRE.FindStringSubmatch(tx.Text)[1]
		case "12025550143":
			second = linkRE.FindStringSubmatch(tx.Text)[1]
		}
	}
	if status, _ := p.do("GET", "/m/"+first, nil); status != http.StatusOK {
		t.Fatalf("first link: %d", status)
	}
	notice := relay.waitFor(t, "the notice for the second phone", func(r relayedMail) bool {
		return strings.HasPrefix(r.header("Subject"), "Texted: ") && strings.Contains(string(r.Data), "Reference: conversation 2,")
	})
	if notice.header("In-Reply-To") != "<oops-1@clinic.example>" || strings.Contains(string(notice.Data), "Private.") {
		t.Errorf("notice:\n%s", notice.Data)
	}
	rv := regexp.MustCompile(`http://127\.0\.0\.1:9(/revoke/[A-Za-z0-9_-]+)`).FindStringSubmatch(string(notice.Data))
	if rv == nil {
		t.Fatalf("no revocation link in\n%s", notice.Data)
	}
	if status, body := p.do("POST", rv[1], url.Values{}); status != http.StatusOK || !strings.Contains(body, "withdrawn") {
		t.Fatalf("revoke: %d %s", status, body)
	}
	if status, body := p.do("GET", "/m/"+second, nil); status != http.StatusGone || !strings.Contains(body, "withdrawn by the sender") {
		t.Errorf("withdrawn link: %d %s", status, body)
	}
	if err := m.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	cli := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(append(args, "--config", path), nil, &out, io.Discard)
		return out.String(), err
	}
	out, err := cli("report", "--sender", "dr.who@clinic.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"to +12125550123 (conversation 1)", ": delivered\n", "to +12025550143 (conversation 2)", ": revoked\n",
		"text.delivered", "conversation.revoked", "link.opened"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if out, err := cli("revoke", "2"); err != nil || !strings.Contains(out, "withdrawn already") {
		t.Errorf("revoke 2: %q %v", out, err)
	}
	if out, err := cli("revoke", "--message", "1"); err != nil || !strings.Contains(out, "withdrew conversation 1") {
		t.Errorf("revoke --message 1: %q %v", out, err)
	}
	if out, err := cli("purge"); err != nil || !strings.Contains(out, "messages purged: 0") {
		t.Errorf("purge: %q %v", out, err)
	}

	out, err = cli("audit", "export", "--format", "jsonl", "--since", "24h")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var row map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &row); err != nil || row["event"] != "config.loaded" || row["seq"] != 1.0 {
		t.Errorf("first exported row %s (%v)", lines[0], err)
	}
	if strings.Contains(out, "Wrong number") || strings.Contains(out, "Private") {
		t.Error("the audit trail holds content")
	}
	out, err = cli("audit", "export", "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(records) != len(lines)+1 || records[0][0] != "seq" {
		t.Errorf("csv: %d records for %d rows (%v)", len(records), len(lines), err)
	}

	// An untouched trail verifies; each tampering is named.
	if out, err := cli("audit", "verify"); err != nil || !strings.Contains(out, "the audit trail verifies") {
		t.Fatalf("verify: %q %v", out, err)
	}
	db := rawDB(t, m.Config)
	pg := m.Config.Store.Driver == store.Postgres
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	verify := func(want string) {
		t.Helper()
		out, err := cli("audit", "verify")
		if want == "" {
			if err != nil {
				t.Errorf("verify after restoring: %v", err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("verify: %q %v, want an error naming %q", out, err, want)
		}
	}
	placeholder, random32 := "?", "randomblob(32)"
	if pg {
		exec(`DROP TRIGGER audit_no_update ON audit`) // updates and deletes
		placeholder, random32 = "$1", "sha256(random()::text::bytea)"
	} else {
		exec(`DROP TRIGGER audit_no_update`)
		exec(`DROP TRIGGER audit_no_delete`)
	}

	var actor string
	db.QueryRow(`SELECT actor FROM audit WHERE seq = 5`).Scan(&actor)
	exec(`UPDATE audit SET actor = 'nobody' WHERE seq = 5`)
	verify("row 5 was altered")
	exec(`UPDATE audit SET actor = `+placeholder+` WHERE seq = 5`, actor)
	verify("")

	exec(`CREATE TABLE saved AS SELECT * FROM audit WHERE seq = 7`)
	exec(`DELETE FROM audit WHERE seq = 7`)
	verify("row 7 was removed")
	exec(`INSERT INTO audit SELECT * FROM saved`)
	verify("")

	var last int64
	db.QueryRow(`SELECT max(seq) FROM audit`).Scan(&last)
	exec(`UPDATE audit SET seq = seq + 1000 WHERE seq >= 9`)
	exec(`UPDATE audit SET seq = seq - 999 WHERE seq >= 1009`)
	exec(`INSERT INTO audit (seq, time, event, actor, prev, hash)
		SELECT 9, time, 'message.viewed', '+12125550123', hash, ` + random32 + ` FROM audit WHERE seq = 8`)
	verify("row 9 was inserted")
}

// TestConfigLifecycle: the lifecycle's keys are checked, each error naming
// its key.
func TestConfigLifecycle(t *testing.T) {
	cfg, err := ParseConfig([]byte("[store]\nretention = \"0s\"\n[limits]\ndaily_per_sender = 0\n"), ".")
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.policy(); p.Retention != 0 || p.DailyPerSender != 0 || p.PerPhonePerHour != 10 ||
		p.AccessExpiry != 72*time.Hour || p.ReadReceipts != "mdn" || !p.DeliveryNotices || !p.FailureNotices {
		t.Errorf("policy %+v", p)
	}
	_, err = ParseConfig([]byte(`
[portal]
access_expiry = "30m"
[store]
retention = "-1h"
[mail]
read_receipts = "sometimes"
[limits]
daily_per_sender = -1
per_phone_per_hour = 5000
[sms.vonage]
signature_method = "crc32"
`), ".")
	for _, want := range []string{"portal.access_expiry", "store.retention", "mail.read_receipts",
		"limits.daily_per_sender", "limits.per_phone_per_hour", "sms.vonage.signature_method"} {
		if err == nil || !strings.Contains(err.Error(), want+":") {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	_, err = ParseConfig([]byte("[portal]\naccess_expiry = \"96h\"\n[store]\nretention = \"72h\"\n"), ".")
	if err == nil || !strings.Contains(err.Error(), "store.retention: 72h0m0s is shorter than portal.access_expiry") {
		t.Errorf("retention shorter than expiry: %v", err)
	}
	var c Config
	c.Portal.PublicURL = "https://portal.clinic.example/"
	if got := c.dlrCallback(); got != "https://portal.clinic.example/hooks/vonage/dlr" {
		t.Errorf("callback %q", got)
	}
}
