package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd/notify"
	"github.com/securetextd/securetextd/store"
)

// TestProductionRefusesDemoSettings: with an https portal, the
// configuration that serve loads first is refused without a mail relay or
// with the console SMS provider, naming each key at once; with both set,
// it loads. An http portal on loopback (the demo) keeps both.
func TestProductionRefusesDemoSettings(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "securetextd.toml")
	os.WriteFile(path, []byte("[portal]\npublic_url = \"https://portal.clinic.example\"\n"), 0o600)
	_, err := LoadConfig(path) // as runServe does, before anything else
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("LoadConfig = %v, want a configuration error", err)
	}
	for _, want := range []string{"mail.relay: must be set when portal.public_url is https", `sms.provider: "console" only prints texts`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}

	_, err = ParseConfig([]byte(`
[portal]
public_url = "https://portal.clinic.example"
[mail]
relay = "mail.clinic.example:587"
[sms]
provider = "vonage"
[sms.vonage]
api_key = "abcd1234"
api_secret = "s3cret-s3cret"
from = "Clinic"
`), dir)
	if err != nil {
		t.Errorf("a production configuration: %v", err)
	}
	if _, err := ParseConfig([]byte("[portal]\npublic_url = \"http://127.0.0.1:8080\"\n"), dir); err != nil {
		t.Errorf("the demo on loopback: %v", err)
	}
}

// TestMailCommands: without a relay, `mail list` shows the sealed emails
// (time, kind, recipient, size, file), `mail show` prints one as RFC 5322,
// doctor says mail is only kept sealed and warns about a plain .eml left
// from before (and deletes nothing), and `purge` deletes sealed emails
// older than store.retention.
func TestMailCommands(t *testing.T) {
	vonage := newFakeVonage(t)
	text := strings.NewReplacer("[portal]\n", "[portal]\naccess_expiry = \"1h\"\n", "[store]\n", "[store]\nretention = \"1h\"\n").
		Replace(testConfigText(t, vonage.URL)) + "[mail]\nfrom = \"securetextd@clinic.example\"\n"
	path := filepath.Join(t.TempDir(), "securetextd.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	m := startMain(t, cfg)
	if err := m.db.CreateSender(t.Context(), "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if err := sendAs(t, m, []string{"2125550123@secure.text"}, "From: Dr Who <dr.who@clinic.example>\r\nSubject: Your results\r\n\r\nAll normal.\r\n"); err != nil {
		t.Fatal(err)
	}
	keys, err := store.LoadKeyFile(cfg.Path(cfg.Store.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	mailDir := cfg.Path(cfg.Mail.Dir)
	waitMail(t, mailDir, keys, "notice")
	if err := m.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	list := runCLI(t, "", "mail", "list", "--config", path)
	row := regexp.MustCompile(`(?m)^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ)\s+notice\s+dr\.who@clinic\.example\s+\d+(\.\d)? (B|KiB|MiB)\s+(\S+\.eml\.age)$`).FindStringSubmatch(list)
	if !strings.HasPrefix(list, "TIME  ") || row == nil {
		t.Fatalf("mail list:\n%s", list)
	}
	file := row[4]
	shown := runCLI(t, "", "mail", "show", file, "--config", path)
	if !strings.Contains(shown, "\r\nSubject: Texted: Your results\r\n") || !strings.Contains(shown, "\r\nTo: \"Dr Who\" <dr.who@clinic.example>\r\n") {
		t.Errorf("mail show:\n%s", shown)
	}
	if shown2 := runCLI(t, "", "mail", "show", filepath.Join(mailDir, file), "--config", path); shown2 != shown {
		t.Error("mail show by path differs from by name")
	}
	for _, args := range [][]string{{"mail"}, {"mail", "send"}, {"mail", "show"}, {"mail", "list", "extra"}} {
		var ue errUsage
		if err := run(append(args, "--config", path), nil, io.Discard, io.Discard); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
	if err := run([]string{"mail", "show", "README", "--config", path}, nil, io.Discard, io.Discard); err == nil {
		t.Error("mail show of a file that is not a sealed email")
	}

	// Doctor: mail is kept sealed, not sent; a plain .eml from before is
	// reported with the command to remove it, and stays.
	plain := filepath.Join(mailDir, "1764000000000000000-9.eml")
	os.WriteFile(plain, []byte("Subject: Re: Your results\r\n\r\nThe patient's words.\r\n"), 0o600)
	var out bytes.Buffer
	doctor(path, &out, doctorEnv{})
	for _, want := range []string{
		"warn  mail relay: none: mail to senders is not sent but kept sealed in " + mailDir,
		"warn  mail.dir: 1 unsealed .eml file(s)", "rm " + filepath.Join(mailDir, "*.eml"),
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("doctor lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "ok    mail") {
		t.Errorf("doctor calls the mail directory ok:\n%s", out.String())
	}
	if _, err := os.Stat(plain); err != nil {
		t.Errorf("doctor removed the operator's file: %v", err)
	}
	if list := runCLI(t, "", "mail", "list", "--config", path); !strings.Contains(list, "1 unsealed .eml file(s)") {
		t.Errorf("mail list does not mention the plain file:\n%s", list)
	}

	// Retention: a sealed email two hours old goes; the recent ones and the
	// plain file stay.
	old := time.Now().UTC().Add(-2*time.Hour).Format("20060102T150405.000000000Z") + "-1.eml.age"
	if err := os.Rename(filepath.Join(mailDir, file), filepath.Join(mailDir, old)); err != nil {
		t.Fatal(err)
	}
	before, _ := notify.ReadMailDir(mailDir, keys)
	if out := runCLI(t, "", "purge", "--config", path); !strings.Contains(out, "sealed emails deleted from mail.dir: 1\n") {
		t.Errorf("purge:\n%s", out)
	}
	after, _ := notify.ReadMailDir(mailDir, keys)
	if len(after) != len(before)-1 {
		t.Errorf("%d sealed emails before the purge, %d after; want one fewer", len(before), len(after))
	}
	for _, f := range after {
		if f.Name == old {
			t.Error("the old email is still there")
		}
	}
	if _, err := os.Stat(plain); err != nil {
		t.Errorf("purge removed the operator's file: %v", err)
	}
}
