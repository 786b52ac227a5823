package main

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
)

// greeting returns the first line a client reads from an SMTP listener.
func greeting(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("greeting of %s: %v", addr, err)
	}
	return strings.TrimRight(line, "\r\n")
}

// TestHostname checks smtp.hostname where a client sees it: the greeting
// of both SMTP listeners, the Message-ID given to a message that had none,
// and the Message-ID of the notice mailed to the sender.
func TestHostname(t *testing.T) {
	vonage := newFakeVonage(t)
	relay := newTestRelay(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "securetextd.toml")
	text := testConfigText(t, vonage.URL) + "\n[relay]\nlisten = \"127.0.0.1:0\"\nsender_domains = [\"clinic.example\"]\n"
	text = strings.Replace(text, "[smtp]\n", "[smtp]\nhostname = \"mx.clinic.example\"\n", 1)
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
	t.Cleanup(func() { m.Close(context.Background()) })
	if err := m.db.CreateSender(t.Context(), "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}

	for name, addr := range map[string]string{"submission": m.SubmissionAddr, "relay": m.RelayAddr} {
		if got, want := greeting(t, addr), "220 mx.clinic.example ESMTP Service Ready"; got != want {
			t.Errorf("%s greeting = %q, want %q", name, got, want)
		}
	}

	if err := send(t, m.SubmissionAddr, tlsConfigFor(t, cfg), sasl.NewPlainClient("", "dr.who@clinic.example", "correct horse battery"),
		"dr.who@clinic.example", []string{"2125550123@secure.text"},
		"From: dr.who@clinic.example\r\nSubject: No id\r\n\r\nHello.\r\n"); err != nil {
		t.Fatal(err)
	}
	msg, err := m.db.Message(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(msg.MessageID, "@mx.clinic.example") {
		t.Errorf("generated Message-ID = %q, want it to end with @mx.clinic.example", msg.MessageID)
	}
	notice := relay.waitFor(t, "a delivery notice", func(r relayedMail) bool { return r.header("In-Reply-To") != "" })
	if id := notice.header("Message-ID"); !strings.HasSuffix(id, "@mx.clinic.example>") {
		t.Errorf("notice's Message-ID = %q, want it to end with @mx.clinic.example>", id)
	}
}

// TestHostnameRefused checks that a bad smtp.hostname is refused at start,
// naming the key.
func TestHostnameRefused(t *testing.T) {
	for _, h := range []string{"mx clinic", "mx_1.clinic.example", "-mx.clinic.example", "mx.clinic.example.", "192.0.2.1", "mx..clinic", strings.Repeat("a", 64) + ".example"} {
		_, err := ParseConfig([]byte("[smtp]\nhostname = \""+h+"\"\n"), ".")
		var ce *ConfigError
		if !errors.As(err, &ce) || len(ce.Problems) != 1 {
			t.Errorf("hostname %q: err = %v, want one problem", h, err)
			continue
		}
		want := `smtp.hostname: "` + h + `" is not a host name (letters, digits and hyphens in dot-separated labels, as in "mx.clinic.example")`
		if ce.Problems[0] != want {
			t.Errorf("hostname %q:\n got %q\nwant %q", h, ce.Problems[0], want)
		}
	}
	for _, h := range []string{"", "localhost", "mx.clinic.example", "MX-1.Clinic.Example", "a1"} {
		if _, err := ParseConfig([]byte("[smtp]\nhostname = \""+h+"\"\n"), "."); err != nil {
			t.Errorf("hostname %q refused: %v", h, err)
		}
	}
}

// TestResolveFQDN checks the default smtp.hostname: the host name's
// canonical name, as `hostname -f` finds it. The host name and the
// resolver are the machine's edge, given here.
func TestResolveFQDN(t *testing.T) {
	host := func(h string, err error) func() (string, error) { return func() (string, error) { return h, err } }
	cname := func(c string, err error) func(context.Context, string) (string, error) {
		return func(context.Context, string) (string, error) { return c, err }
	}
	for _, tc := range []struct {
		name     string
		hostname func() (string, error)
		lookup   func(context.Context, string) (string, error)
		want     string
	}{
		{"canonical name", host("vm", nil), cname("vm.clinic.example.", nil), "vm.clinic.example"},
		{"already qualified", host("gw.clinic.example", nil), cname("other.example.", nil), "gw.clinic.example"},
		{"lookup fails", host("vm", nil), cname("", errors.New("no such host")), "vm"},
		{"lookup gives no name", host("vm", nil), cname("_bad_.example", nil), "vm"},
		{"no host name", host("", errors.New("uname failed")), cname("x.example", nil), "localhost"},
		{"unusable host name", host("my host", nil), cname("x.example", nil), "localhost"},
	} {
		if got := resolveFQDN(t.Context(), tc.hostname, tc.lookup); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
