package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd/internal/need"
)

// The fault tests run the gateway in process against peers that fail the
// way real ones do: an SMS provider that answers 500, never answers, says
// "throttled" or refuses a number for good; a mail relay that is down or
// refuses with 4xx for a while; a disk that fills up. Each checks what the
// people involved would see. The outbox retries after 10 s at first, so
// the tests run in parallel.

// faultMode is how the fake Vonage server answers one attempt.
type faultMode string

const (
	answerOK        faultMode = "ok"
	answer500       faultMode = "500"
	answerHang      faultMode = "hang"      // no answer until the client gives up
	answerThrottled faultMode = "throttled" // Vonage status 1: try again later
	answerBarred    faultMode = "barred"    // Vonage status 7: never
)

type vonageAttempt struct {
	to     string
	at     time.Time
	answer faultMode
}

// faultyVonage speaks Vonage's SMS API and answers each attempt as mode
// says, given the phone and the attempt's number for that phone.
type faultyVonage struct {
	*httptest.Server
	mode func(to string, attempt int) faultMode

	mu       sync.Mutex
	attempts []vonageAttempt
	accepted map[string]int // texts accepted, per phone (digits)
}

func newFaultyVonage(t *testing.T, mode func(to string, attempt int) faultMode) *faultyVonage {
	f := &faultyVonage{mode: mode, accepted: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/sms/json" || r.ParseForm() != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		to := r.PostForm.Get("to")
		f.mu.Lock()
		n := 1
		for _, a := range f.attempts {
			if a.to == to {
				n++
			}
		}
		answer := f.mode(to, n)
		f.attempts = append(f.attempts, vonageAttempt{to: to, at: time.Now(), answer: answer})
		if answer == answerOK {
			f.accepted[to]++
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch answer {
		case answer500:
			http.Error(w, "internal error", http.StatusInternalServerError)
		case answerHang:
			<-r.Context().Done()
		case answerThrottled:
			fmt.Fprintf(w, `{"message-count":"1","messages":[{"to":%q,"status":"1","error-text":"Throttled"}]}`, to)
		case answerBarred:
			fmt.Fprintf(w, `{"message-count":"1","messages":[{"to":%q,"status":"7","error-text":"Number barred"}]}`, to)
		default:
			fmt.Fprintf(w, `{"message-count":"1","messages":[{"to":%q,"message-id":"0C%014d","status":"0","remaining-balance":"3.14","message-price":"0.03","network":"12345"}]}`, to, n)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *faultyVonage) snapshot() ([]vonageAttempt, map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	acc := map[string]int{}
	for k, v := range f.accepted {
		acc[k] = v
	}
	return slices.Clone(f.attempts), acc
}

// waitAccepted waits until every phone has a text accepted.
func (f *faultyVonage) waitAccepted(t *testing.T, phones []string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, acc := f.snapshot()
		missing := 0
		for _, p := range phones {
			if acc[p] == 0 {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			attempts, _ := f.snapshot()
			t.Fatalf("%d of %d texts never went out; attempts: %+v", missing, len(phones), attempts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const faultSender, faultPassword = "dr.who@clinic.example", "correct horse battery"

// faultConfigText is a gateway with plain-text AUTH on loopback, texts at
// rate texts per second to vonageURL, mail to relay (STARTTLS required, as
// by default), and its store at storeDir.
func faultConfigText(vonageURL, relay, storeDir string, rate float64) string {
	return fmt.Sprintf(`
[smtp]
submission_listen = "127.0.0.1:0"
allow_insecure_auth = true
[store]
path = %q
key_file = %q
[console]
listen = "127.0.0.1:0"
[portal]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:9"
second_factor = "none"
[sms]
provider = "vonage"
rate = %g
org = "Test Clinic"
[sms.vonage]
api_key = "abcd1234"
api_secret = "s3cret-s3cret"
from = "TestClinic"
base_url = %q
[mail]
relay = %q
from = "securetextd@clinic.example"
[limits]
daily_per_sender = 0
per_phone_per_hour = 0
`, filepath.Join(storeDir, "db.sqlite"), filepath.Join(storeDir, "key.txt"), rate, vonageURL, relay)
}

// startFaultMain runs the gateway in process. Requests to the SMS provider
// give up after one second without an answer, and the mail relay's
// certificate is trusted through mailTLS.
func startFaultMain(t *testing.T, cfgText, dir string, mailTLS *tls.Config) *Main {
	t.Helper()
	cfg, err := ParseConfig([]byte(cfgText), dir)
	if err != nil {
		t.Fatal(err)
	}
	m := &Main{
		Config:     cfg,
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		HTTPClient: &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: time.Second}},
		MailTLS:    mailTLS,
	}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if n, _ := m.db.CountSenders(t.Context()); n == 0 {
		if err := m.db.CreateSender(t.Context(), faultSender, faultPassword); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// submitPlain sends one message to phone with AUTH PLAIN, subject subj,
// the header fields extra (each ending in CRLF) and a body of about size
// bytes, and returns the server's verdict.
func submitPlain(t *testing.T, addr, phone, subj string, size int, extra ...string) error {
	t.Helper()
	c, err := gosmtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", faultSender, faultPassword)); err != nil {
		return err
	}
	body := strings.Repeat("All normal. See you on Monday, and bring the forms.\r\n", max(1, size/53))
	msg := "From: Dr Who <" + faultSender + ">\r\nSubject: " + subj + "\r\n" + strings.Join(extra, "") + "\r\n" + body
	if err := c.SendMail(faultSender, []string{phone + "@secure.text"}, strings.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

// TestSMSProviderFaults: the provider answers 500, never answers, or says
// "throttled" at a text's first attempt. Every text still goes out, once,
// after the back-off, and no two attempts are closer than the configured
// rate allows.
func TestSMSProviderFaults(t *testing.T) {
	t.Parallel()
	const rate = 4 // texts per second
	faults := map[string]faultMode{
		"12125550101": answer500,
		"12125550102": answerHang,
		"12125550103": answerThrottled,
		"12125550104": answer500,
	}
	vonage := newFaultyVonage(t, func(to string, attempt int) faultMode {
		if f, ok := faults[to]; ok && attempt == 1 {
			return f
		}
		return answerOK
	})
	relay := newTestRelay(t)
	dir := t.TempDir()
	m := startFaultMain(t, withTestEngine(t, faultConfigText(vonage.URL, relay.addr, dir, rate)), dir, relay.client)

	phones := []string{"12125550101", "12125550102", "12125550103", "12125550104", "12125550105", "12125550106"}
	for _, p := range phones {
		if err := submitPlain(t, m.SubmissionAddr, p[1:], "Results "+p, 1000); err != nil {
			t.Fatalf("send to %s: %v", p, err)
		}
	}
	vonage.waitAccepted(t, phones, 40*time.Second)
	time.Sleep(time.Second) // a duplicate would show now
	attempts, accepted := vonage.snapshot()
	for _, p := range phones {
		if accepted[p] != 1 {
			t.Errorf("%s: %d texts accepted, want exactly 1", p, accepted[p])
		}
	}
	// Back-off: a failed first attempt is tried again, but not at once.
	first := map[string]time.Time{}
	for _, a := range attempts {
		if _, ok := first[a.to]; !ok {
			first[a.to] = a.at
			continue
		}
		if faults[a.to] == "" {
			t.Errorf("%s was tried again though its first attempt succeeded", a.to)
		}
		if gap := a.at.Sub(first[a.to]); gap < 9*time.Second {
			t.Errorf("%s was tried again after %v: want the 10 s back-off", a.to, gap)
		}
	}
	if len(attempts) != len(phones)+len(faults) {
		t.Errorf("%d attempts, want %d: %+v", len(attempts), len(phones)+len(faults), attempts)
	}
	// The rate, whatever failed before: no two attempts close together,
	// and no run of five faster than the rate (with slack for the HTTP
	// round trips on a busy machine).
	for i := 1; i < len(attempts); i++ {
		if gap := attempts[i].at.Sub(attempts[i-1].at); gap < time.Second/rate/2 {
			t.Errorf("attempts %d and %d are %v apart: faster than %d texts/s", i-1, i, gap, rate)
		}
		if i >= 4 {
			if span := attempts[i].at.Sub(attempts[i-4].at); span < 4*time.Second/rate-100*time.Millisecond {
				t.Errorf("attempts %d to %d took %v: faster than %d texts/s", i-4, i, span, rate)
			}
		}
	}
	// Each text's outcome is recorded once, as sent.
	var texted int
	if err := m.db.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	countRows(t, m, `SELECT count(*) FROM texts WHERE state = 'texted'`, &texted)
	if texted != len(phones) {
		t.Errorf("%d texts recorded as sent, want %d", texted, len(phones))
	}
}

// TestSMSPermanentFailure: the provider refuses a number for good. The
// text is not tried again, its job is failed, and the sender gets a
// "Not delivered" email; the other texts go out.
func TestSMSPermanentFailure(t *testing.T) {
	t.Parallel()
	const barred = "12125550111"
	vonage := newFaultyVonage(t, func(to string, attempt int) faultMode {
		if to == barred {
			return answerBarred
		}
		return answerOK
	})
	relay := newTestRelay(t)
	dir := t.TempDir()
	m := startFaultMain(t, withTestEngine(t, faultConfigText(vonage.URL, relay.addr, dir, 10)), dir, relay.client)
	if err := submitPlain(t, m.SubmissionAddr, barred[1:], "Scan results", 1000); err != nil {
		t.Fatal(err)
	}
	if err := submitPlain(t, m.SubmissionAddr, "2125550112", "Other results", 1000); err != nil {
		t.Fatal(err)
	}
	vonage.waitAccepted(t, []string{"12125550112"}, 20*time.Second)

	// The sender hears of it: a "Not delivered" email through the relay
	// (beside the "Texted" notice of the other message).
	var notice *relayedMail
	deadline := time.Now().Add(20 * time.Second)
	for notice == nil && time.Now().Before(deadline) {
		relay.mu.Lock()
		for i, rm := range relay.mail {
			if strings.HasPrefix(rm.header("Subject"), "Not delivered") {
				notice = &relay.mail[i]
			}
		}
		relay.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	if notice == nil {
		t.Fatal("the sender never got a \"Not delivered\" email")
	}
	if notice.header("Subject") != "Not delivered: Scan results" || len(notice.To) != 1 || notice.To[0] != faultSender || !notice.TLS {
		t.Errorf("notice: subject %q to %v (TLS %v)", notice.header("Subject"), notice.To, notice.TLS)
	}
	if !bytes.Contains(notice.Data, []byte("could not be texted")) {
		t.Errorf("notice body:\n%s", notice.Data)
	}
	attempts, _ := vonage.snapshot()
	n := 0
	for _, a := range attempts {
		if a.to == barred {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the barred number was tried %d times, want once", n)
	}
	var failed int
	countRows(t, m, `SELECT count(*) FROM jobs WHERE kind = 'text' AND state = 'failed'`, &failed)
	if failed != 1 {
		t.Errorf("%d text jobs failed, want 1", failed)
	}
}

// TestMailRelayFaults: the organization's relay is down, then comes back;
// or it refuses with 451 for a while. The "Texted" notice of a message
// and a recipient's reply from the portal go out once it takes mail,
// each exactly once.
func TestMailRelayFaults(t *testing.T) {
	t.Parallel()
	for _, fault := range []string{"down", "refusing"} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			serverTLS, clientTLS := testTLS(t)
			addr := reserveAddr(t)
			var refuse atomic.Bool
			relay := &testRelay{addr: addr, client: clientTLS}
			startRelay := func() {
				s := gosmtp.NewServer(refusingBackend{relayBackend{relay}, &refuse})
				s.TLSConfig = serverTLS
				s.Domain = "relay.test"
				l, err := net.Listen("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				go s.Serve(l)
				t.Cleanup(func() { s.Close() })
			}
			if fault == "refusing" {
				refuse.Store(true)
				startRelay()
			}

			vonage := newFakeVonage(t)
			dir := t.TempDir()
			m := startFaultMain(t, withTestEngine(t, faultConfigText(vonage.URL, addr, dir, 10)), dir, clientTLS)
			// The sender asks for a read receipt (as Outlook's "Request a
			// read receipt" does).
			if err := submitPlain(t, m.SubmissionAddr, "2125550121", "Lab results", 1000,
				"Disposition-Notification-To: <"+faultSender+">\r\n"); err != nil {
				t.Fatal(err)
			}
			texts := vonage.waitTexts(t, 1, 10*time.Second)
			if len(texts) != 1 {
				t.Fatalf("%d texts", len(texts))
			}
			token := linkRE.FindStringSubmatch(texts[0].Text)[1]
			// The recipient reads the message, then replies.
			replyViaPortal(t, "http://"+m.PortalAddr, token, "Thank you, REPLYMARKER")

			time.Sleep(2 * time.Second) // the first attempts fail
			relay.mu.Lock()
			early := len(relay.mail)
			relay.mu.Unlock()
			if early != 0 {
				t.Fatalf("%d emails went through a relay that is %s", early, fault)
			}
			if fault == "down" {
				startRelay()
			} else {
				refuse.Store(false)
			}
			// The mail drain tries again after its 10 s back-off.
			relayedCount(t, relay, 3, 30*time.Second)
			time.Sleep(time.Second) // a duplicate would show now
			got := relayedCount(t, relay, 3, 0)
			subjects := map[string]int{}
			for _, rm := range got {
				subjects[rm.header("Subject")]++
				if len(rm.To) != 1 || rm.To[0] != faultSender || !rm.TLS {
					t.Errorf("email %q to %v, TLS %v", rm.header("Subject"), rm.To, rm.TLS)
				}
			}
			if len(got) != 3 || subjects["Texted: Lab results"] != 1 || subjects["Read: Lab results"] != 1 || subjects["Re: Lab results"] != 1 {
				t.Errorf("the relay got %d emails: %v; want the delivery notice, the read receipt and the reply, once each", len(got), subjects)
			}
		})
	}
}

// relayedCount waits until the relay has at least n emails and returns
// them all.
func relayedCount(t *testing.T, r *testRelay, n int, within time.Duration) []relayedMail {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r.mu.Lock()
		got := slices.Clone(r.mail)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay received %d emails, want %d", len(got), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// refusingBackend answers 451 to MAIL FROM while refuse is set.
type refusingBackend struct {
	gosmtp.Backend
	refuse *atomic.Bool
}

func (b refusingBackend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	s, err := b.Backend.NewSession(c)
	if err != nil {
		return nil, err
	}
	return refusingSession{s, b.refuse}, nil
}

type refusingSession struct {
	gosmtp.Session
	refuse *atomic.Bool
}

func (s refusingSession) Mail(from string, opts *gosmtp.MailOptions) error {
	if s.refuse.Load() {
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 2}, Message: "Try again later"}
	}
	return s.Session.Mail(from, opts)
}

// reserveAddr returns a loopback address on which nothing listens.
func reserveAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// replyViaPortal signs in as the recipient of the link token (first visit:
// a new password, without a recovery address, so that the relay gets
// only the sender's emails), reads the conversation and sends a reply, as
// a browser without JavaScript would.
func replyViaPortal(t *testing.T, base, token, text string) {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.PostForm(base+"/m/"+token+"/setup", url.Values{
		"password": {"a long enough passphrase"}, "confirm": {"a long enough passphrase"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	conv := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 || !strings.HasPrefix(conv, "/c/") {
		t.Fatalf("setup: %s, Location %q", resp.Status, conv)
	}
	view, _ := http.NewRequest("GET", base+conv, nil)
	for _, c := range resp.Cookies() {
		view.AddCookie(c)
	}
	vresp, err := hc.Do(view)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(vresp.Body)
	vresp.Body.Close()
	if vresp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte("All normal")) {
		t.Fatalf("conversation page: %s\n%s", vresp.Status, page)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("text", text)
	mw.Close()
	req, _ := http.NewRequest("POST", base+conv+"/reply", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	for _, c := range resp.Cookies() {
		req.AddCookie(c)
	}
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reply: %s\n%s", resp.Status, b)
	}
}

func countRows(t *testing.T, m *Main, query string, n *int) {
	t.Helper()
	if err := rawDB(t, m.Config).QueryRow(query).Scan(n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// TestDiskFull puts the store on a small tmpfs and fills it. A message
// that cannot be stored gets a 4xx (the client keeps it and tries again
// later), nothing of it is left behind, and once there is space again the
// daemon takes mail without a restart.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	need.Root(t, "to mount a tmpfs")
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	vonage := newFakeVonage(t)
	relay := newTestRelay(t)
	dir := t.TempDir()
	// The store stays on SQLite: what fills up is its file system.
	cfgText := faultConfigText(vonage.URL, relay.addr, mnt, 10)
	m := startFaultMain(t, cfgText, dir, relay.client)
	if err := submitPlain(t, m.SubmissionAddr, "2125550131", "Before", 1000); err != nil {
		t.Fatalf("before the disk filled: %v", err)
	}
	vonage.waitTexts(t, 1, 10*time.Second)

	// Fill the disk, to the last byte.
	filler := filepath.Join(mnt, "filler")
	fill(t, filler)

	// A message larger than any space SQLite kept: refused with 452
	// 4.3.1, insufficient system storage, so the sender keeps it.
	err := submitPlain(t, m.SubmissionAddr, "2125550132", "During", 3<<20)
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) || se.Code != 452 || se.EnhancedCode != (gosmtp.EnhancedCode{4, 3, 1}) {
		t.Fatalf("a 3 MiB message on a full disk: %v, want 452 4.3.1", err)
	}
	t.Logf("full disk: %v", err)
	// Not ready while commits fail for lack of space, even with room
	// enough for the readiness probe's one-row write but not for mail.
	if fi, err := os.Stat(filler); err != nil || os.Truncate(filler, fi.Size()-1<<20) != nil {
		t.Fatalf("free 1 MiB: %v", err)
	}
	if status, body := getReadyz(t, m); status != http.StatusServiceUnavailable || !strings.Contains(body, "lack of space") {
		t.Errorf("/readyz on a disk too full for mail: %d\n%s", status, body)
	}
	// Small ones may fit in space SQLite already holds; if not, 4xx too.
	for i := range 5 {
		if err := submitPlain(t, m.SubmissionAddr, fmt.Sprintf("21255501%02d", 40+i), "During small", 1000); err != nil {
			if !errors.As(err, &se) || se.Code/100 != 4 {
				t.Fatalf("a small message on a full disk: %v, want 250 or a 4xx reply", err)
			}
		}
	}

	// Space returns: the daemon takes mail again, no restart needed.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := submitPlain(t, m.SubmissionAddr, "2125550133", "After", 3<<20)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon does not take mail once space returned: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if status, body := getReadyz(t, m); status != http.StatusOK {
		t.Errorf("/readyz once mail is taken again: %d\n%s", status, body)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		got := map[string]bool{}
		for _, tx := range vonage.sent() {
			got[tx.To] = true
		}
		if got["12125550133"] {
			if got["12125550132"] {
				t.Error("the refused 3 MiB message got a text")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no text for the message sent once space returned")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Nothing half-stored: after a clean restart (whose sweep removes
	// uploads that were cut short), no pending blob, no message without
	// its parts or its text job, and the refused message is not there.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	m2 := startFaultMain(t, cfgText, dir, relay.client)
	greeted(t, m2.SubmissionAddr) // see greeted
	for _, c := range []struct {
		what, query string
	}{
		{"pending blobs", `SELECT count(*) FROM blobs WHERE state = 'pending'`},
		{"committed blobs that no part uses", `SELECT count(*) FROM blobs WHERE state = 'committed' AND id NOT IN (SELECT blob_id FROM parts)`},
		{"messages missing parts", `SELECT count(*) FROM messages m WHERE part_count != (SELECT count(*) FROM parts p WHERE p.message_id = m.id)`},
		{"messages without their text job", `SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM texts x WHERE x.message_id = m.id)`},
		{"conversations of the refused message", `SELECT count(*) FROM conversations WHERE phone = '+12125550132'`},
	} {
		var n int
		countRows(t, m2, c.query, &n)
		if n != 0 {
			t.Errorf("%d %s", n, c.what)
		}
	}
	var integrity string
	db, err := sql.Open("sqlite3", "file:"+m2.Config.Path(m2.Config.Store.Path)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Errorf("integrity_check: %q, %v", integrity, err)
	}
}

// fill writes zeros to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			break
		}
	}
	for _, n := range []int{4096, 512, 1} { // the last partial blocks
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
}
