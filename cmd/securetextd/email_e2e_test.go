package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/emersion/go-message/mail"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/dnstest"
	"github.com/securetextd/securetextd/internal/need"
)

// smtpSink is Postfix's smtp-sink on loopback, the organization's mail
// relay of these tests: it accepts everything over plain SMTP and keeps
// each transaction in a file of its own (-d), headed by X-Mail-Args and
// X-Rcpt-Args.
type smtpSink struct {
	addr, dir string
}

func startSink(t *testing.T) *smtpSink {
	t.Helper()
	path := need.Program(t, "smtp-sink", "postfix")
	// smtp-sink drops to nobody: its directory must be writable by it, and
	// reachable (a test's TempDir is 0700 under a 0700 parent).
	dir, err := os.MkdirTemp("", "securetextd-sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	args := []string{"-d", dir + "/%H%M%S.", addr, "50"}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...)
	}
	cmd := exec.Command(path, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink does not listen on %s: %v\n%s", addr, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &smtpSink{addr: addr, dir: dir}
}

// waitFor returns the first whole mail for rcpt, waiting up to 20 s.
// smtp-sink writes a transaction as it arrives; a mail is whole once its
// last MIME boundary (or, for a single part, the end of the data) is in.
func (s *smtpSink) waitFor(t *testing.T, rcpt string, whole func([]byte) bool) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(s.dir, "*"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err == nil && bytes.Contains(data, []byte("X-Rcpt-Args: <"+rcpt+">")) && whole(data) {
				return data
			}
		}
		if time.Now().After(deadline) {
			for _, f := range files {
				data, _ := os.ReadFile(f)
				t.Logf("%s:\n%.400s", filepath.Base(f), data)
			}
			t.Fatalf("no mail to %s reached the sink (%d files)", rcpt, len(files))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// multipartDone reports whether a multipart mail has its closing boundary.
func multipartDone(data []byte) bool {
	m := regexp.MustCompile(`boundary="?([^";\r\n]+)`).FindSubmatch(data)
	return m != nil && bytes.Contains(data, append(append([]byte("--"), m[1]...), '-', '-'))
}

// dkimVerify runs python3-dkim (the dkimpy library that dkimverify is)
// over data, looking the key up on the loopback DNS server: dkimverify
// itself reads only the system's resolver. It returns dkimpy's verdict and
// what it printed.
func dkimVerify(t *testing.T, dns *dnstest.Server, data []byte) (bool, string) {
	t.Helper()
	need.Program(t, "dkimverify", "python3-dkim")
	host, port, _ := net.SplitHostPort(dns.Addr())
	script := `
import sys, logging, dkim, dns.resolver
r = dns.resolver.Resolver(configure=False)
r.nameservers = [sys.argv[1]]
r.port = int(sys.argv[2])
def txt(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    return b"".join(b"".join(rr.strings) for rr in r.resolve(name, "TXT", lifetime=timeout))
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)
ok = dkim.verify(sys.stdin.buffer.read(), logger=logging.getLogger("dkim"), dnsfunc=txt)
print("signature ok" if ok else "signature verification failed")
sys.exit(0 if ok else 1)
`
	cmd := exec.Command("/usr/bin/python3", "-c", script, host, port)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.CombinedOutput()
	return err == nil, string(out)
}

// emailGateway starts a gateway with email recipients on, its mail going
// to sink, its configuration in a file (for the commands); extra is added
// to the file's [mail] section, and each of edits changes its text.
func emailGateway(t *testing.T, sink *smtpSink, vonageURL, extra string, edits ...func(string) string) (*Main, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "securetextd.toml")
	text := testConfigText(t, vonageURL)
	for _, edit := range edits {
		text = edit(text)
	}
	text = strings.Replace(text, "[smtp]\n", "[smtp]\nhostname = \"gw.clinic.example\"\n", 1)
	text = strings.Replace(text, "[sms]\n", fmt.Sprintf(`[mail]
relay = %q
require_tls = false
from = "securetextd@clinic.example"
%s
[email_recipients]
enabled = true

[sms]
`, sink.addr, extra), 1)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m.Close(ctx)
	})
	if err := m.db.CreateSender(t.Context(), "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	return m, path
}

// checkNotice holds a notice email to what it must be: from the
// organization, Auto-Submitted, a Message-ID on smtp.hostname, a text and
// an HTML part naming the sender and carrying a portal link, and nothing
// of the message (the secrets). It returns the link's token.
func checkNotice(t *testing.T, data []byte, secrets ...string) string {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(bytes.ToLower(data), []byte(strings.ToLower(s))) {
			t.Errorf("the notice holds %q:\n%s", s, data)
		}
	}
	mr, err := mail.CreateReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	h := mr.Header
	if v := h.Get("Auto-Submitted"); v != "auto-generated" {
		t.Errorf("Auto-Submitted %q", v)
	}
	if id, _ := h.MessageID(); !strings.HasSuffix(id, "@gw.clinic.example") {
		t.Errorf("Message-ID %q, want one on smtp.hostname", id)
	}
	if from, _ := h.AddressList("From"); len(from) != 1 || from[0].Address != "securetextd@clinic.example" || from[0].Name != "Test Clinic secure messages" {
		t.Errorf("From %v", from)
	}
	var types []string
	var token string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := p.Header.(*mail.InlineHeader).ContentType()
		types = append(types, ct)
		b, _ := io.ReadAll(p.Body)
		if !bytes.Contains(b, []byte("dr.who@clinic.example")) || !bytes.Contains(b, []byte("Test Clinic")) {
			t.Errorf("%s part does not say who writes through whom:\n%s", ct, b)
		}
		match := linkRE.FindSubmatch(b)
		if match == nil {
			t.Fatalf("%s part without a portal link:\n%s", ct, b)
		}
		token = string(match[1])
	}
	if strings.Join(types, ",") != "text/plain,text/html" {
		t.Errorf("parts %v, want text/plain and text/html", types)
	}
	return token
}

// TestEmailRecipientEndToEnd: a message to a phone and to an email
// address through submission. The phone gets a text; the address gets a
// notice email at a real SMTP sink (Postfix's smtp-sink), DKIM-signed with
// a key made by `dkim keygen` and published on a loopback DNS server, which
// python3-dkim accepts; it holds no subject, body or file name. Jane opens
// it in Chromium, sets a password, reads the message and replies; the
// reply is stored in her conversation and goes to the sender.
func TestEmailRecipientEndToEnd(t *testing.T) {
	sink := startSink(t)
	ctx := newBrowser(t)
	dns := dnstest.New(t)
	keyDir := t.TempDir()
	var out strings.Builder
	if err := run([]string{"dkim", "keygen", "--out", filepath.Join(keyDir, "dkim.pem"), "--selector", "s1", "--domain", "clinic.example"},
		nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	record := regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(out.String(), -1)
	var value string
	for _, r := range record {
		value += r[1]
	}
	dns.Set("s1._domainkey.clinic.example", value)
	vonage := newFakeVonage(t)
	m, _ := emailGateway(t, sink, vonage.URL, fmt.Sprintf("dkim_domain = \"clinic.example\"\ndkim_selector = \"s1\"\ndkim_key = %q\n",
		filepath.Join(keyDir, "dkim.pem")))

	msg := "From: Dr Who <dr.who@clinic.example>\r\n" +
		"To: 2125550123@secure.text, Jane <jane@example.net>\r\n" +
		"Subject: Your biopsy results\r\n" +
		"Message-ID: <biopsy-1@clinic.example>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b1\r\n" +
		"\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe biopsy shows nothing to worry about.\r\n" +
		"--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"pathology-report.pdf\"\r\n\r\n%PDF-1.4 report\r\n" +
		"--b1--\r\n"
	if err := sendAs(t, m, []string{"2125550123@secure.text", "Jane@Example.NET"}, msg); err != nil {
		t.Fatal(err)
	}

	// The phone gets its text.
	texts := vonage.waitTexts(t, 1, 10*time.Second)
	if len(texts) != 1 || texts[0].To != "12125550123" {
		t.Fatalf("texts %+v", texts)
	}
	// Jane's notice arrives, signed.
	notice := sink.waitFor(t, "jane@example.net", multipartDone)
	token := checkNotice(t, notice, "biopsy", "nothing to worry", "pathology", "report.pdf")
	if ok, out := dkimVerify(t, dns, notice); !ok {
		t.Fatalf("python3-dkim refuses the notice's signature:\n%s\n%s", out, notice)
	}
	if ok, _ := dkimVerify(t, dns, bytes.Replace(notice, []byte("has sent you"), []byte("has sent us!"), 1)); ok {
		t.Error("python3-dkim accepts an altered notice")
	}

	// Jane reads the message in the portal and replies.
	base := "http://" + m.PortalAddr
	navigate(t, ctx, base+"/m/"+token)
	if body := pageText(t, ctx); !strings.Contains(body, "choose a password") || strings.Contains(body, "biopsy") {
		t.Fatalf("link page: %s", body)
	}
	step(t, ctx, "fill setup",
		chromedp.SendKeys(chromedp.ID("password"), "maple syrup on pancakes"),
		chromedp.SendKeys(chromedp.ID("confirm"), "maple syrup on pancakes"))
	submit(t, ctx, "main form button[type=submit]")
	if body := pageText(t, ctx); !strings.Contains(body, "The biopsy shows nothing to worry about.") || !strings.Contains(body, "pathology-report.pdf") {
		t.Fatalf("conversation page:\n%s", body)
	}
	shot(t, ctx, "email-recipient-conversation")
	step(t, ctx, "fill reply", chromedp.SendKeys(chromedp.ID("text"), "Thank you, doctor. Relieved."))
	submit(t, ctx, "#reply button[type=submit]")
	if body := pageText(t, ctx); !strings.Contains(body, "Relieved.") {
		t.Fatalf("reply not shown:\n%s", body)
	}

	// The reply is in Jane's conversation, and goes to the sender with a
	// Reply-To that answers into it.
	c, err := m.db.ConversationByToken(t.Context(), token)
	if err != nil || c.Phone != "jane@example.net" {
		t.Fatalf("conversation %+v, %v", c, err)
	}
	msgs, err := m.db.ConversationMessages(t.Context(), c.ID)
	if err != nil || len(msgs) != 2 || msgs[1].Direction != securetextd.Reply {
		t.Fatalf("conversation messages %d, %v", len(msgs), err)
	}
	reply := sink.waitFor(t, "dr.who@clinic.example", func(b []byte) bool {
		return bytes.Contains(b, []byte("Reply-To: <email+"+fmt.Sprint(c.ID)+"@secure.text>")) && bytes.Contains(b, []byte("replied at"))
	})
	// mail.reply_mode is "notice" (the default): who replied, masked, and
	// none of Jane's words.
	if !bytes.Contains(reply, []byte("j***@example.net replied at")) || bytes.Contains(reply, []byte("Relieved")) {
		t.Errorf("the reply notice does not say who wrote it, or holds the reply:\n%s", reply)
	}
}

// TestEmailFallbackDLR: a text sent through the API with a fallback_email
// whose delivery report says failed: the notice goes by email to that
// address, opens the same conversation, is audited, and the sender's
// report shows it. The API takes an email address in to as well.
func TestEmailFallbackDLR(t *testing.T) {
	sink := startSink(t)
	vonage := newFakeVonage(t)
	m, path := emailGateway(t, sink, vonage.URL, "")
	key, _, err := m.db.CreateAPIKey(t.Context(), "dr.who@clinic.example", "test")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + m.PortalAddr
	status, _, resp := apiCall(t, "POST", base+"/api/v1/messages", key, "application/json", strings.NewReader(
		`{"to": [{"to": "202-555-0143", "fallback_email": "Sam@Example.NET"}, "lee@example.org"],
		  "subject": "Lab appointment", "text": "Fasting from midnight."}`))
	if status != http.StatusCreated || !strings.Contains(string(resp), `"to":"lee@example.org"`) {
		t.Fatalf("send: %d %s", status, resp)
	}
	// Lee, an email recipient, gets a notice; the phone a text.
	checkNotice(t, sink.waitFor(t, "lee@example.org", multipartDone), "Lab appointment", "Fasting")
	texts := vonage.waitTexts(t, 1, 10*time.Second)
	if len(texts) != 1 || texts[0].To != "12025550143" {
		t.Fatalf("texts %+v", texts)
	}
	// Wait until the text's outcome is recorded (the report knows the
	// provider's id), then Vonage reports it failed.
	p := newPortalClient(t, m)
	for deadline := time.Now().Add(10 * time.Second); ; {
		sent, err := m.db.SentMessages(t.Context(), "", time.Time{})
		if err == nil && len(sent) == 2 && sent[0].State == securetextd.TextSent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the text is not recorded as sent: %+v %v", sent, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status, body := p.do("POST", "/hooks/vonage/dlr", url.Values{
		"msisdn": {"12025550143"}, "to": {"TestClinic"}, "messageId": {"0A000000001"}, "status": {"failed"},
		"err-code": {"1"}, "message-timestamp": {"2026-03-02 09:01:03"},
	}); status != http.StatusNoContent {
		t.Fatalf("dlr: %d %s", status, body)
	}
	token := checkNotice(t, sink.waitFor(t, "sam@example.net", multipartDone), "Lab appointment", "Fasting")
	if status, _ := p.do("GET", "/m/"+token, nil); status != http.StatusOK {
		t.Errorf("the fallback's link: %d", status)
	}
	c, err := m.db.ConversationByToken(t.Context(), token)
	if err != nil || c.Phone != "+12025550143" {
		t.Errorf("the fallback's link opens %+v, %v; want the phone's conversation", c, err)
	}
	// The sender's report shows it.
	var report strings.Builder
	if err := run([]string{"report", "--config", path, "--sender", "dr.who@clinic.example"}, nil, &report, &report); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`text\.failed .*carrier: status=failed err-code=1`).MatchString(report.String()) ||
		!regexp.MustCompile(`text\.fallback +system.*: to=s\*\*\*@example\.net`).MatchString(report.String()) {
		t.Errorf("report:\n%s", report.String())
	}
}
