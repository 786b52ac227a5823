package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// portalCertFiles writes a self-signed certificate for 127.0.0.1 into dir
// and returns its paths and a pool that trusts it.
func portalCertFiles(t *testing.T, dir, name string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := writeSelfSigned(certFile, keyFile, "portal.test"); err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("bad certificate")
	}
	return certFile, keyFile, pool
}

// h2Client is a client that speaks HTTP/2 over TLS, trusting pool only.
func h2Client(pool *x509.CertPool) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"},
		ForceAttemptHTTP2: true,
	}}
}

// TestPortalServesHTTPS: with portal.tls_cert and portal.tls_key the
// portal speaks HTTPS with HTTP/2 to a real client; a SIGHUP reload serves
// a renewed certificate to new connections.
func TestPortalServesHTTPS(t *testing.T) {
	vonage := newFakeVonage(t)
	dir := t.TempDir()
	_, _, pool := portalCertFiles(t, dir, "portal")
	path := filepath.Join(dir, "securetextd.toml")
	text := strings.Replace(testConfigText(t, vonage.URL), "[portal]\n",
		"[portal]\ntls_cert = \"portal.crt\"\ntls_key = \"portal.key\"\n", 1)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	m := startMain(t, cfg)

	resp, err := h2Client(pool).Get("https://" + m.PortalAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Secure messages") {
		t.Fatalf("GET / over TLS: %s %d\n%s", resp.Proto, resp.StatusCode, body)
	}
	// Plain HTTP/1.1 over TLS works too.
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}}
	if resp, err := h1.Get("https://" + m.PortalAddr + "/"); err != nil || resp.Proto != "HTTP/1.1" {
		t.Fatalf("HTTP/1.1 over TLS: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// A renewed certificate in the same files: SIGHUP serves it.
	_, _, pool2 := portalCertFiles(t, dir, "portal")
	if err := m.Reload(path); err != nil {
		t.Fatal(err)
	}
	resp, err = h2Client(pool2).Get("https://" + m.PortalAddr + "/")
	if err != nil {
		t.Fatalf("with the renewed certificate: %v", err)
	}
	resp.Body.Close()
	if _, err := h2Client(pool).Get("https://" + m.PortalAddr + "/"); err == nil {
		t.Error("the old certificate is still served after the reload")
	}

	// Turning the portal's TLS off takes a restart: such a reload is
	// refused, naming the key, and the certificate stays.
	plain := strings.Replace(text, "tls_cert = \"portal.crt\"\ntls_key = \"portal.key\"\n", "", 1)
	if err := os.WriteFile(path, []byte(plain), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(path); err == nil || !strings.Contains(err.Error(), "portal.tls_cert") {
		t.Errorf("reload turning TLS off: %v", err)
	}
}

// TestPortalCertificateRefused: a certificate or key that cannot be read
// stops the daemon at start, naming the key; so do a half-set pair and a
// trusted proxy that is not a CIDR.
func TestPortalCertificateRefused(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := portalCertFiles(t, dir, "good")
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not a certificate")}), 0o600)
	for _, tc := range []struct {
		name, cert, key, want string
	}{
		{"missing certificate", filepath.Join(dir, "missing.crt"), keyFile, "portal.tls_cert: open "},
		{"missing key", certFile, filepath.Join(dir, "missing.key"), "portal.tls_key: open "},
		{"garbage certificate", garbage, keyFile, "portal.tls_cert and portal.tls_key: "},
		{"key of another certificate", certFile, garbage, "portal.tls_cert and portal.tls_key: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir(), "http://127.0.0.1:9")
			cfg.Portal.TLSCert, cfg.Portal.TLSKey = tc.cert, tc.key
			m := &Main{Config: cfg, Logger: slog.New(slog.DiscardHandler)}
			err := m.Run(t.Context())
			if err == nil {
				m.Close(t.Context())
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to name %q", err, tc.want)
			}
			m.Close(t.Context())
		})
	}

	for _, tc := range []struct{ extra, want string }{
		{"tls_cert = \"a.crt\"\n", "portal.tls_cert: set both portal.tls_cert and portal.tls_key, or neither"},
		{"tls_key = \"a.key\"\n", "portal.tls_cert: set both"},
		{"trusted_proxies = [\"10.0.0.0/8\", \"10.0.0.1\"]\n", `portal.trusted_proxies: "10.0.0.1" is not a CIDR`},
		{"trusted_proxies = [\"nginx\"]\n", `portal.trusted_proxies: "nginx" is not a CIDR`},
		{"trusted_proxies = [\"fe80::/64%eth0\"]\n", `portal.trusted_proxies: "fe80::/64%eth0" is not a CIDR`},
		{"trusted_proxies = [\"0.0.0.0/0\"]\n", `portal.trusted_proxies: "0.0.0.0/0" trusts every address`},
		{"trusted_proxies = [\"::/0\"]\n", `portal.trusted_proxies: "::/0" trusts every address`},
	} {
		text := strings.Replace(testConfigText(t, "http://127.0.0.1:9"), "[portal]\n", "[portal]\n"+tc.extra, 1)
		_, err := ParseConfig([]byte(text), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", strings.TrimSpace(tc.extra), err, tc.want)
		}
	}
	text := strings.Replace(testConfigText(t, "http://127.0.0.1:9"), "[portal]\n", "[portal]\ntrusted_proxies = [\"127.0.0.1/32\", \"2001:db8::/32\"]\n", 1)
	if cfg, err := ParseConfig([]byte(text), t.TempDir()); err != nil || len(prefixes(cfg.Portal.TrustedProxies)) != 2 {
		t.Errorf("good trusted_proxies: %v", err)
	}
}

// TestSessionSweep: the daemon deletes ended sessions on its timer,
// without any request asking for them (the store's tests show that live
// ones stay).
func TestSessionSweep(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "http://127.0.0.1:9")
	cfg.Portal.IdleTimeout = time.Second // short, to see it end; swept every second
	m := startMain(t, cfg)
	phone := securetextd.Phone("+12125550123")
	if err := m.db.CreateRecipient(t.Context(), phone, "maple syrup on pancakes", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.db.CreateSession(t.Context(), phone); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for n := 1; n != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d ended sessions left after 30 s", n)
		}
		time.Sleep(100 * time.Millisecond)
		countRows(t, m, "SELECT count(*) FROM sessions", &n)
	}
}
