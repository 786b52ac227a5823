package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/securetextd/securetextd/store"
)

// writeTestConfig writes the test configuration (with extra appended) and
// returns its path and the parsed configuration.
func writeTestConfig(t *testing.T, vonageURL, extra string) (string, Config) {
	t.Helper()
	return writeConfigText(t, testConfigText(t, vonageURL)+extra)
}

// writeConfigText writes a configuration file in a new directory and
// returns its path and the parsed configuration.
func writeConfigText(t *testing.T, text string) (string, Config) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "securetextd.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

func runCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(args, strings.NewReader(stdin), &out, io.Discard); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

// readAll opens every part of every message and returns their contents.
func readAll(t *testing.T, m *Main) map[string]bool {
	t.Helper()
	ctx := t.Context()
	n, _ := m.db.CountMessages(ctx)
	got := map[string]bool{}
	for id := int64(1); id <= int64(n); id++ {
		msg, err := m.db.Message(ctx, id)
		if err != nil {
			t.Fatalf("message %d: %v", id, err)
		}
		for i := range msg.Parts {
			ra, size, err := m.db.OpenPart(ctx, id, i)
			if err != nil {
				t.Fatalf("message %d part %d: %v", id, i, err)
			}
			b, err := io.ReadAll(io.NewSectionReader(ra, 0, size))
			if err != nil {
				t.Fatalf("message %d part %d: %v", id, i, err)
			}
			got[string(b)] = true
		}
	}
	return got
}

// TestKeyRotation rotates the key as an operator would: keygen on the key
// file, restart, rekey while the gateway runs, remove the old identity,
// restart; every message, old and new, still opens.
func TestKeyRotation(t *testing.T) {
	vonage := newFakeVonage(t)
	cfgPath, cfg := writeTestConfig(t, vonage.URL, "")
	runCLI(t, "correct horse battery\n", "user", "add", "dr.who@clinic.example", "--config", cfgPath, "--password-stdin")
	keyPath := cfg.Path(cfg.Store.KeyFile)
	attachment := strings.Repeat("scan data, line after line of it\r\n", 20000) // 660 KB: several chunk rows
	sendOne := func(m *Main, body string) {
		t.Helper()
		msg := "From: dr.who@clinic.example\r\nSubject: Rotation\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: text/plain\r\n\r\n" + body + "\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=scan.bin\r\n\r\n" +
			attachment + "\r\n--b--\r\n"
		if err := send(t, m.SubmissionAddr, tlsConfigFor(t, cfg), sasl.NewPlainClient("", "dr.who@clinic.example", "correct horse battery"),
			"dr.who@clinic.example", []string{"2125550123@secure.text"}, msg); err != nil {
			t.Fatal(err)
		}
	}
	start := func() *Main {
		m := &Main{Config: cfg, Logger: testLogger(t)}
		if err := m.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		return m
	}

	m := start()
	sendOne(m, "sealed to the old key")
	m.Close(t.Context())

	if out := runCLI(t, "", "keygen", "--out", keyPath); !strings.Contains(out, "added a new identity") {
		t.Errorf("keygen on an existing file: %s", out)
	}
	m = start()
	if got := readAll(t, m); !got["sealed to the old key"] || !got[attachment] {
		t.Fatal("an old message does not open after keygen")
	}
	sendOne(m, "sealed to the new key")
	// Online: the gateway keeps running while rekey works.
	if out := runCLI(t, "", "rekey", "--config", cfgPath); !strings.Contains(out, "re-wrapped 2 message parts") {
		t.Errorf("rekey: %s", out)
	}
	sendOne(m, "after the rekey")
	m.Close(t.Context())

	// Remove the old identity: keep what comes before the second one.
	b, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	first := strings.Index(string(b), "AGE-SECRET-KEY-")
	second := strings.Index(string(b)[first+1:], "AGE-SECRET-KEY-")
	if first < 0 || second < 0 {
		t.Fatalf("key file:\n%s", b)
	}
	cut := first + 1 + second
	cut = strings.LastIndex(string(b)[:cut], "\n") + 1
	if err := os.WriteFile(keyPath, b[:cut], 0o600); err != nil {
		t.Fatal(err)
	}
	m = start()
	defer m.Close(t.Context())
	got := readAll(t, m)
	for _, want := range []string{"sealed to the old key", "sealed to the new key", "after the rekey", attachment} {
		if !got[want] {
			t.Errorf("%.30q does not open with the new key alone", want)
		}
	}
}

func testLogger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(testWriter{t}, nil)) }

// TestBackupCLI takes a backup with the command while the gateway runs
// and takes messages, and checks the copy. The command uses SQLite's
// backup API, so the test runs on SQLite whatever the tests' engine
// (TestBackupPostgres says what it does on PostgreSQL).
func TestBackupCLI(t *testing.T) {
	vonage := newFakeVonage(t)
	cfgPath, cfg := writeConfigText(t, sqliteConfigText(vonage.URL)+"[limits]\nper_phone_per_hour = 0\ndaily_per_sender = 0\n[api]\nrate = 1000.0\nburst = 1000\n")
	m := startMain(t, cfg)
	if err := m.db.CreateSender(t.Context(), "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	key, _, err := m.db.CreateAPIKey(t.Context(), "dr.who@clinic.example", "")
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var sent atomic.Int64
	wg.Go(func() {
		for i := 0; i < 500 && !stop.Load(); i++ {
			status, _, body := apiCall(t, "POST", "http://"+m.PortalAddr+"/api/v1/messages", key, "application/json",
				strings.NewReader(fmt.Sprintf(`{"to":["2125550123"],"text":"load %d %s"}`, i, strings.Repeat("x", 20000))))
			if status != http.StatusCreated {
				t.Errorf("send under load: %d %s", status, body)
				return
			}
			sent.Add(1)
		}
	})
	for sent.Load() < 5 {
		time.Sleep(10 * time.Millisecond)
	}
	out := filepath.Join(t.TempDir(), "copy.db")
	text := runCLI(t, "", "backup", "--config", cfgPath, "--out", out)
	stop.Store(true)
	wg.Wait()
	if !strings.Contains(text, "integrity_check ok") {
		t.Errorf("backup said: %s", text)
	}
	db, err := sql.Open("sqlite3", "file:"+out+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := store.IntegrityCheck(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	var n int
	db.QueryRow(`SELECT count(*) FROM messages`).Scan(&n)
	if n == 0 || int64(n) > sent.Load() {
		t.Errorf("the copy holds %d messages of %d", n, sent.Load())
	}
	// The copy opens with the key.
	keys, err := store.LoadKeyFile(cfg.Path(cfg.Store.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	c, err := store.Open(out, keys)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Message(t.Context(), int64(n)); err != nil {
		t.Errorf("last message of the copy: %v", err)
	}
}

// TestAPIKeyCLI makes, lists and revokes keys with the command line.
func TestAPIKeyCLI(t *testing.T) {
	cfgPath, _ := writeTestConfig(t, "http://127.0.0.1:9", "")
	runCLI(t, "correct horse battery\n", "user", "add", "dr.who@clinic.example", "--config", cfgPath, "--password-stdin")
	out := runCLI(t, "", "apikey", "create", "--sender", "dr.who@clinic.example", "--name", "EHR", "--config", cfgPath)
	if !strings.Contains(out, "stx_") || !strings.Contains(out, "only this once") {
		t.Errorf("create: %s", out)
	}
	token := strings.Fields(out[strings.Index(out, "stx_"):])[0]
	list := runCLI(t, "", "apikey", "list", "--config", cfgPath)
	if strings.Contains(list, token) || !strings.Contains(list, token[:12]) || !strings.Contains(list, "live") {
		t.Errorf("list: %s", list)
	}
	runCLI(t, "", "apikey", "revoke", "1", "--config", cfgPath)
	if list := runCLI(t, "", "apikey", "list", "--config", cfgPath); !strings.Contains(list, "revoked") {
		t.Errorf("after revoke: %s", list)
	}
	if err := run([]string{"apikey", "create", "--sender", "nobody@clinic.example", "--config", cfgPath}, nil, io.Discard, io.Discard); err == nil {
		t.Error("a key for a missing sender")
	}
}

// TestDoctor checks a good installation and a broken one.
func TestDoctor(t *testing.T) {
	balance := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/account/get-balance" {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("api_secret") != "s3cret-s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"value": 10.5, "autoReload": false}`)
	})
	vonage := httptest.NewServer(balance)
	defer vonage.Close()
	relay := newTestRelay(t)
	cfgPath, cfg := writeTestConfig(t, vonage.URL, fmt.Sprintf("[mail]\nrelay = %q\n", relay.addr))
	// Creates the key and the database.
	runCLI(t, "correct horse battery\n", "user", "add", "dr.who@clinic.example", "--config", cfgPath, "--password-stdin")

	var out bytes.Buffer
	err := doctor(cfgPath, &out, doctorEnv{MailTLS: relay.client})
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out.String())
	}
	wants := []string{"ok    config:", "ok    key file:", "ok    database:", "(current)", "ok    mail relay", "STARTTLS", "ok    vonage: credentials ok, balance 10.50",
		"warn  scan.clamd: empty: messages and replies are not scanned for malware",
		"ok    sms texts: en: 1 segment, GSM-7; es: 1 segment, GSM-7"}
	if cfg.Store.Driver == store.Postgres {
		wants = append(wants, "ok    database: PostgreSQL at postgres://127.0.0.1:", "answers: PostgreSQL 1")
	} else {
		wants = append(wants, "db.sqlite, SQLite 3.")
	}
	for _, want := range wants {
		if !strings.Contains(out.String(), want) {
			t.Errorf("doctor lacks %q:\n%s", want, out.String())
		}
	}

	// Break it: an open key file, wrong Vonage secret, a relay that is down.
	os.Chmod(cfg.Path(cfg.Store.KeyFile), 0o644)
	text := strings.Replace(testConfigText(t, vonage.URL), "s3cret-s3cret", "wrong", 1) + "[mail]\nrelay = \"127.0.0.1:9\"\n"
	os.WriteFile(cfgPath, []byte(text), 0o600)
	out.Reset()
	if err := doctor(cfgPath, &out, doctorEnv{Timeout: 2 * time.Second}); err == nil {
		t.Error("doctor passed a broken installation")
	}
	for _, want := range []string{"FAIL  key file:", "chmod 600", "FAIL  vonage: credentials refused", "FAIL  mail relay 127.0.0.1:9: cannot connect"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("doctor lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "wrong") {
		t.Error("doctor printed the Vonage secret")
	}
}

// TestHelp: every command has a manual, by "help CMD" and "CMD --help".
func TestHelp(t *testing.T) {
	for _, cmd := range []string{"serve", "keygen", "user", "apikey", "backup", "rekey", "doctor", "version", "purge", "revoke", "audit", "report", "mail"} {
		a := runCLI(t, "", "help", cmd)
		b := runCLI(t, "", cmd, "--help")
		if !strings.HasPrefix(a, "NAME\n    securetextd "+cmd) || a != b {
			t.Errorf("%s: manual %q", cmd, a)
		}
	}
}

// TestReload changes the configuration under a running gateway: the text
// template, brand and API limits apply at once; a listen address needs a
// restart and is left as it was.
func TestReload(t *testing.T) {
	vonage := newFakeVonage(t)
	cfgPath, cfg := writeTestConfig(t, vonage.URL, "")
	m := startMain(t, cfg)
	if err := m.db.CreateSender(t.Context(), "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	key, _, _ := m.db.CreateAPIKey(t.Context(), "dr.who@clinic.example", "")
	text := testConfigText(t, vonage.URL) + "[brand]\ncolor = \"#aa0000\"\n[api]\nburst = 1\nrate = 0.001\n"
	text = strings.Replace(text, `org = "Test Clinic"`, "org = \"Test Clinic\"\ntemplate = \"{org} wrote to you: {link}\"", 1)
	text = strings.Replace(text, `listen = "127.0.0.1:0"`, `listen = "127.0.0.1:1"`, 1)
	os.WriteFile(cfgPath, []byte(text), 0o600)
	if err := m.Reload(cfgPath); err != nil {
		t.Fatal(err)
	}
	if m.Config.Portal.Listen != "127.0.0.1:0" && m.Config.SMTP.SubmissionListen != "127.0.0.1:0" {
		t.Error("a listen address changed without a restart")
	}
	css := get(t, http.DefaultClient, "http://"+m.PortalAddr+"/brand.css", http.StatusOK)
	if !strings.Contains(css, "#aa0000") {
		t.Errorf("brand.css after reload: %s", css)
	}
	body := `{"to":["2125550123"],"text":"x"}`
	if s, _, b := apiCall(t, "POST", "http://"+m.PortalAddr+"/api/v1/messages", key, "application/json", strings.NewReader(body)); s != http.StatusCreated {
		t.Fatalf("send: %d %s", s, b)
	}
	s, h, b := apiCall(t, "POST", "http://"+m.PortalAddr+"/api/v1/messages", key, "application/json", strings.NewReader(body))
	wantProblem(t, "over the reloaded rate", s, h, b, http.StatusTooManyRequests, "rate-limited")
	if h.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	texts := vonage.waitTexts(t, 1, 10*time.Second)
	if len(texts) != 1 || !strings.HasPrefix(texts[0].Text, "Test Clinic wrote to you: ") {
		t.Errorf("text after reload: %+v", texts)
	}
	// A configuration that does not validate changes nothing.
	os.WriteFile(cfgPath, []byte("[sms]\nrate = -1\n"), 0o600)
	if err := m.Reload(cfgPath); err == nil {
		t.Error("an invalid configuration was reloaded")
	}
}

// TestSystemdUnit keeps contrib/securetextd.service in step with the
// command line and the shutdown deadline.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "contrib", "securetextd.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{
		"ExecStart=/usr/local/bin/securetextd serve --config /etc/securetextd/securetextd.toml",
		"ExecReload=/bin/kill -HUP $MAINPID",
		"KillSignal=SIGTERM",
		"TimeoutStopSec=45", // longer than the 30-second drain in runServe
		"NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "UMask=0077",
	} {
		if !strings.Contains(unit, want+"\n") {
			t.Errorf("the unit lacks %q", want)
		}
	}
}

// TestBackupPostgres: on PostgreSQL, backup refuses, naming PostgreSQL's
// own tools, and never quotes the DSN's password. No server is needed:
// the command refuses before it connects.
func TestBackupPostgres(t *testing.T) {
	cfgPath, _ := writeConfigText(t, "[store]\ndriver = \"postgres\"\ndsn = \"postgres://securetextd:hunter2-hunter2@db.internal:5432/securetextd?sslmode=verify-full\"\nkey_file = \"data/key.txt\"\n")
	var out, errb bytes.Buffer
	err := run([]string{"backup", "--config", cfgPath, "--out", filepath.Join(t.TempDir(), "copy.db")}, strings.NewReader(""), &out, &errb)
	if err == nil {
		t.Fatalf("backup on PostgreSQL succeeded: %s", out.String())
	}
	all := err.Error() + out.String() + errb.String()
	for _, want := range []string{"PostgreSQL", "pg_dump", "pg_basebackup", "postgres://db.internal:5432/securetextd", "key.txt"} {
		if !strings.Contains(all, want) {
			t.Errorf("backup's refusal lacks %q: %s", want, all)
		}
	}
	if strings.Contains(all, "hunter2") || strings.Contains(all, "sslmode") {
		t.Errorf("backup quoted the DSN's password or parameters: %s", all)
	}
}

// TestDoctorPostgresDown: doctor says that PostgreSQL does not answer,
// without quoting the DSN's password, and looks at no database file.
func TestDoctorPostgresDown(t *testing.T) {
	cfgPath, _ := writeConfigText(t, "[store]\ndriver = \"postgres\"\ndsn = \"postgres://securetextd:hunter2-hunter2@127.0.0.1:1/securetextd?connect_timeout=5\"\nkey_file = \"data/key.txt\"\n")
	os.Mkdir(filepath.Join(filepath.Dir(cfgPath), "data"), 0o700)
	runCLI(t, "", "keygen", "--out", filepath.Join(filepath.Dir(cfgPath), "data", "key.txt"))
	var out bytes.Buffer
	if err := doctor(cfgPath, &out, doctorEnv{Timeout: 5 * time.Second}); err == nil {
		t.Errorf("doctor passed with the database down:\n%s", out.String())
	}
	if !regexp.MustCompile(`(?m)^FAIL  database: PostgreSQL at postgres://127\.0\.0\.1:1/securetextd: .*unreachable`).MatchString(out.String()) {
		t.Errorf("doctor does not say that the database is unreachable:\n%s", out.String())
	}
	if strings.Contains(out.String(), "hunter2") {
		t.Errorf("doctor quoted the DSN's password:\n%s", out.String())
	}
	if strings.Contains(out.String(), "sqlite") || strings.Contains(out.String(), "does not exist yet") {
		t.Errorf("doctor looked for a database file:\n%s", out.String())
	}
}
