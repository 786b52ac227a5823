package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// fakeVonage is an HTTP server that speaks Vonage's SMS API: form posts to
// /sms/json, JSON answers in the real API's shape.
type fakeVonage struct {
	*httptest.Server

	mu    sync.Mutex
	texts []sentText
	// status, when not zero, is the HTTP status answered instead of 200.
	status int
	// hang makes the server hold requests without answering, until the
	// client goes away; attempts counts them.
	hang     bool
	attempts int
}

type sentText struct {
	To, From, Text string
	At             time.Time // when the fake server got it
}

func newFakeVonage(t *testing.T) *fakeVonage {
	f := &fakeVonage{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/sms/json" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.attempts++
		if f.hang {
			f.mu.Unlock()
			<-r.Context().Done()
			return
		}
		defer f.mu.Unlock()
		if f.status != 0 {
			http.Error(w, "unavailable", f.status)
			return
		}
		if r.PostForm.Get("api_key") != "abcd1234" || r.PostForm.Get("api_secret") != "s3cret-s3cret" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"message-count":"1","messages":[{"status":"4","error-text":"Bad Credentials"}]}`)
			return
		}
		to := r.PostForm.Get("to")
		f.texts = append(f.texts, sentText{To: to, From: r.PostForm.Get("from"), Text: r.PostForm.Get("text"), At: time.Now()})
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"message-count":"1","messages":[{"to":%q,"message-id":"0A00000%04d","status":"0","remaining-balance":"3.14159265","message-price":"0.03330000","network":"12345"}]}`, to, len(f.texts))
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeVonage) sent() []sentText {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentText(nil), f.texts...)
}

func (f *fakeVonage) setHang(hang bool) {
	f.mu.Lock()
	f.hang = hang
	f.mu.Unlock()
}

func (f *fakeVonage) attemptCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts
}

// waitTexts polls until n texts arrived or the deadline passes.
func (f *fakeVonage) waitTexts(t *testing.T, n int, within time.Duration) []sentText {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := f.sent()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testConfigText is the configuration file of a gateway on loopback with
// texts going to the fake Vonage server, its store on the tests' engine.
func testConfigText(t testing.TB, vonageURL string) string {
	t.Helper()
	return withTestEngine(t, sqliteConfigText(vonageURL))
}

// sqliteConfigText is testConfigText with the store on SQLite whatever
// the tests' engine, for the tests about SQLite's file.
func sqliteConfigText(vonageURL string) string {
	return fmt.Sprintf(`
[smtp]
submission_listen = "127.0.0.1:0"
[store]
path = "data/db.sqlite"
key_file = "data/key.txt"
[portal]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:9"
# These tests walk the link and the password; factor_test.go and the
# README's test walk the code (the default) before them.
second_factor = "none"
[console]
listen = "127.0.0.1:0"
[sms]
provider = "vonage"
rate = 50
org = "Test Clinic"
[sms.vonage]
api_key = "abcd1234"
api_secret = "s3cret-s3cret"
from = "TestClinic"
base_url = %q
`, vonageURL)
}

// testConfig returns testConfigText parsed, with its data in dir.
func testConfig(t *testing.T, dir, vonageURL string) Config {
	t.Helper()
	cfg, err := ParseConfig([]byte(testConfigText(t, vonageURL)), dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startMain(t *testing.T, cfg Config) *Main {
	t.Helper()
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
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
	return m
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// tlsConfigFor trusts the gateway's generated self-signed certificate.
func tlsConfigFor(t *testing.T, cfg Config) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(filepath.Dir(cfg.Path(cfg.Store.Path)), "tls-selfsigned.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("bad certificate")
	}
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// send submits one message with STARTTLS and the given SASL client, and
// returns the error of the first step that failed.
func send(t *testing.T, addr string, tc *tls.Config, auth sasl.Client, from string, to []string, msg string) error {
	t.Helper()
	c, err := gosmtp.DialStartTLS(addr, tc)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Auth(auth); err != nil {
		return err
	}
	if err := c.SendMail(from, to, strings.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

var linkRE = regexp.MustCompile(`http://127\.0\.0\.1:9/m/([A-Za-z0-9_-]+)`)

func TestEndToEnd(t *testing.T) {
	vonage := newFakeVonage(t)
	cfg := testConfig(t, t.TempDir(), vonage.URL)
	m := startMain(t, cfg)
	if err := m.db.CreateSender(t.Context(), "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	tc := tlsConfigFor(t, cfg)

	msg := "From: Dr Who <dr.who@clinic.example>\r\n" +
		"To: 2125550123@secure.text\r\n" +
		"Subject: Your results\r\n" +
		"Message-ID: <e2e-1@clinic.example>\r\n" +
		"\r\n" +
		"All normal.\r\n"

	// AUTH LOGIN (Outlook, Thunderbird) to two phones, then AUTH PLAIN to a third.
	if err := send(t, m.SubmissionAddr, tc, sasl.NewLoginClient("dr.who@clinic.example", "correct horse battery"),
		"dr.who@clinic.example", []string{"2125550123@secure.text", "202-555-0143@secure.text"}, msg); err != nil {
		t.Fatalf("send with LOGIN: %v", err)
	}
	if err := send(t, m.SubmissionAddr, tc, sasl.NewPlainClient("", "dr.who@clinic.example", "correct horse battery"),
		"dr.who@clinic.example", []string{"12014367789@secure.text"}, msg); err != nil {
		t.Fatalf("send with PLAIN: %v", err)
	}

	vonage.waitTexts(t, 3, 10*time.Second)
	time.Sleep(200 * time.Millisecond) // a duplicate would show up now
	texts := vonage.sent()
	if len(texts) != 3 {
		t.Fatalf("got %d texts, want 3: %+v", len(texts), texts)
	}
	perPhone := map[string]int{}
	client := &http.Client{}
	for _, tx := range texts {
		perPhone[tx.To]++
		if tx.From != "TestClinic" {
			t.Errorf("from = %q", tx.From)
		}
		if !strings.HasPrefix(tx.Text, "Test Clinic: you have a secure message. Open http://127.0.0.1:9/m/") {
			t.Errorf("text = %q", tx.Text)
		}
		for _, secret := range []string{"results", "normal", "dr.who", "clinic.example"} {
			if strings.Contains(tx.Text, secret) {
				t.Errorf("text %q carries %q", tx.Text, secret)
			}
		}
		match := linkRE.FindStringSubmatch(tx.Text)
		if match == nil {
			t.Fatalf("no link in %q", tx.Text)
		}
		if len(match[1]) < 22 {
			t.Errorf("token %q is shorter than 128 bits", match[1])
		}
		// The link opens: the portal answers 200 and shows no content.
		body := get(t, client, "http://"+m.PortalAddr+"/m/"+match[1], http.StatusOK)
		if !strings.Contains(body, "secure message") || strings.Contains(body, "normal") || strings.Contains(body, "results") {
			t.Errorf("link page: %s", body)
		}
		// An altered token gets the same 404 as an unknown one.
		altered := []byte(match[1])
		altered[3] ^= 1
		get(t, client, "http://"+m.PortalAddr+"/m/"+url.PathEscape(string(altered)), http.StatusNotFound)
	}
	for _, p := range []string{"12125550123", "12025550143", "12014367789"} {
		if perPhone[p] != 1 {
			t.Errorf("phone %s got %d texts, want 1 (all: %v)", p, perPhone[p], perPhone)
		}
	}
}

func get(t *testing.T, c *http.Client, u string, want int) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d", u, resp.StatusCode, want)
	}
	return string(b)
}

// TestConfigExample checks that config.example.toml parses, and that its
// values are the defaults (apart from the demo account it documents).
func TestConfigExample(t *testing.T) {
	cfg, err := LoadConfig(filepath.Join("..", "..", "config.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	def.dir = cfg.dir
	def.SMTP.DemoAccount = cfg.SMTP.DemoAccount
	def.SMS.Org = cfg.SMS.Org
	def.Mail.From = cfg.Mail.From
	a, _ := json.Marshal(cfg)
	b, _ := json.Marshal(def)
	if !bytes.Equal(a, b) {
		t.Errorf("config.example.toml differs from the defaults:\nfile:     %s\ndefaults: %s", a, b)
	}
}
