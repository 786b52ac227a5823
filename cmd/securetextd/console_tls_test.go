package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConsoleServesHTTPS: with console.tls_cert and console.tls_key the
// console speaks HTTPS with HTTP/2 to a real client; a SIGHUP reload serves
// a renewed certificate to new connections, as the portal's does; turning
// the console's TLS off takes a restart, and such a reload is refused.
func TestConsoleServesHTTPS(t *testing.T) {
	vonage := newFakeVonage(t)
	dir := t.TempDir()
	_, _, pool := portalCertFiles(t, dir, "console")
	path := filepath.Join(dir, "securetextd.toml")
	text := strings.Replace(testConfigText(t, vonage.URL), "[console]\n",
		"[console]\ntls_cert = \"console.crt\"\ntls_key = \"console.key\"\n", 1)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	m := startMain(t, cfg)

	get := func(c *http.Client) (*http.Response, error) {
		resp, err := c.Get("https://" + m.ConsoleAddr + "/login")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	resp, err := get(h2Client(pool))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Proto != "HTTP/2.0" || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /login over TLS: %s %d", resp.Proto, resp.StatusCode)
	}

	// A renewed certificate in the same files: SIGHUP serves it.
	_, _, pool2 := portalCertFiles(t, dir, "console")
	if err := m.Reload(path); err != nil {
		t.Fatal(err)
	}
	if _, err := get(h2Client(pool2)); err != nil {
		t.Fatalf("with the renewed certificate: %v", err)
	}
	if _, err := get(h2Client(pool)); err == nil {
		t.Error("the old certificate is still served after the reload")
	}

	plain := strings.Replace(text, "tls_cert = \"console.crt\"\ntls_key = \"console.key\"\n", "", 1)
	if err := os.WriteFile(path, []byte(plain), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(path); err == nil || !strings.Contains(err.Error(), "console.tls_cert: turning the console's own TLS on or off takes a restart") {
		t.Errorf("reload turning the console's TLS off: %v", err)
	}
}
