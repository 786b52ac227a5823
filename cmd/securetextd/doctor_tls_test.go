package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeTestCert writes a self-signed certificate for cn, valid until
// notAfter, and its key.
func writeTestCert(t *testing.T, certFile, keyFile, cn string, notAfter time.Time) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Test Clinic"}},
		NotBefore:    notAfter.AddDate(-1, 0, 0),
		NotAfter:     notAfter,
		DNSNames:     []string{cn},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(certFile), 0o700)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// doctorLines picks the lines of doctor's output about the given checks.
func doctorLines(out string, whats ...string) []string {
	var got []string
	for l := range strings.SplitSeq(out, "\n") {
		for _, w := range whats {
			if len(l) > 6 && strings.HasPrefix(l[6:], w+":") {
				got = append(got, l)
			}
		}
	}
	return got
}

func expiry(c *x509.Certificate) string { return c.NotAfter.UTC().Format("2006-01-02 15:04 UTC") }

// compareLines reports each line that differs from the one wanted.
func compareLines(t *testing.T, out string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d lines, want %d; whole output:\n%s", len(got), len(want), out)
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

// TestDoctorCertificatesAndBrand: doctor prints the subject and expiry of
// each configured certificate, warns 30 days ahead, fails once expired or
// unreadable, says what relative paths are relative to, and measures the
// brand colour's contrast where the portal uses it.
func TestDoctorCertificatesAndBrand(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	smtpCert := writeTestCert(t, filepath.Join(dir, "certs/smtp.pem"), filepath.Join(dir, "certs/smtp.key"), "mail.clinic.example", now.Add(90*24*time.Hour+time.Hour))
	portalCert := writeTestCert(t, filepath.Join(dir, "certs/portal.pem"), filepath.Join(dir, "certs/portal.key"), "portal.clinic.example", now.Add(10*24*time.Hour+time.Hour))
	config := func(smtpCert, portalCert, color string) string {
		portalTLS := ""
		if portalCert != "" {
			portalTLS = fmt.Sprintf("tls_cert = %q\ntls_key = \"certs/portal.key\"", portalCert)
		}
		return fmt.Sprintf(`
[smtp]
submission_listen = "127.0.0.1:0"
tls_cert = %q
tls_key = "certs/smtp.key"
[store]
path = "data/db.sqlite"
key_file = "data/key.txt"
[portal]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:9"
%s
[console]
listen = "127.0.0.1:0"
tls_cert = "certs/smtp.pem"
tls_key = "certs/smtp.key"
[brand]
color = %q
`, smtpCert, portalTLS, color)
	}
	cfgPath := filepath.Join(dir, "securetextd.toml")
	doctorOut := func(text string) string {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		run([]string{"doctor", "--config", cfgPath}, nil, &out, io.Discard)
		return out.String()
	}

	// Good and soon due; a light brand colour under dark text.
	out := doctorOut(config("certs/smtp.pem", "certs/portal.pem", "#7fdbff"))
	compareLines(t, out, doctorLines(out, "config", "smtp.tls_cert", "portal.tls_cert", "console.tls_cert", "brand.color"), []string{
		"ok    config: " + cfgPath + "; relative paths in it are relative to its directory, " + dir,
		"ok    smtp.tls_cert: " + dir + "/certs/smtp.pem: subject CN=mail.clinic.example,O=Test Clinic, expires " + expiry(smtpCert) + " (in 90 days)",
		"warn  portal.tls_cert: " + dir + "/certs/portal.pem: subject CN=portal.clinic.example,O=Test Clinic, expires " + expiry(portalCert) + ", in 10 days: renew it, then send SIGHUP",
		"ok    console.tls_cert: " + dir + "/certs/smtp.pem: subject CN=mail.clinic.example,O=Test Clinic, expires " + expiry(smtpCert) + " (in 90 days)",
		"warn  brand.color: #7fdbff as the portal's link colour on white has contrast 1.6:1; WCAG 2 asks for at least 4.5:1 — pick a darker colour (the portal writes dark text on it in the top bar and buttons: 12.1:1)",
	})

	// Expired, missing, and a colour under white text that is too light.
	expired := writeTestCert(t, filepath.Join(dir, "certs/old.pem"), filepath.Join(dir, "certs/smtp.key"), "mail.clinic.example", now.Add(-49*time.Hour))
	out = doctorOut(config("certs/old.pem", "certs/none.pem", "#ff0000"))
	compareLines(t, out, doctorLines(out, "smtp.tls_cert", "portal.tls_cert", "brand.color"), []string{
		"FAIL  smtp.tls_cert: " + dir + "/certs/old.pem: subject CN=mail.clinic.example,O=Test Clinic, expired on " + expiry(expired) + ": renew it, then send SIGHUP",
		"FAIL  portal.tls_cert: cannot read it: open " + dir + "/certs/none.pem: no such file or directory",
		"warn  brand.color: #ff0000 under the portal's white text (top bar, buttons), and as its link colour on white, has contrast 4.0:1; WCAG 2 asks for at least 4.5:1 — pick a darker colour",
	})

	// A certificate with another certificate's key.
	out = doctorOut(config("certs/portal.pem", "", "#1d4e89"))
	compareLines(t, out, doctorLines(out, "smtp.tls_cert", "portal.tls_cert", "brand.color"), []string{
		"FAIL  smtp.tls_cert: " + dir + "/certs/portal.pem with its key " + dir + "/certs/smtp.key: tls: private key does not match public key",
		"ok    brand.color: #1d4e89 under the portal's white text (top bar, buttons), and as its link colour on white, has contrast 8.4:1 (WCAG 2 asks for at least 4.5:1)",
	})
}

// TestDoctorEmbeddedDefault: without --config, relative paths are relative
// to the working directory, and the self-signed certificate serve makes is
// named before it exists and described once it does.
func TestDoctorEmbeddedDefault(t *testing.T) {
	wd := t.TempDir()
	stdout, _, _ := runBinaryIn(t, wd, "doctor")
	compareLines(t, stdout, doctorLines(stdout, "config", "smtp.tls_cert"), []string{
		"ok    config: the embedded default (config.example.toml); relative paths in it are relative to the working directory, " + wd,
		"ok    smtp.tls_cert: empty: serve makes a self-signed certificate in " + wd + "/data on first start",
	})

	self := writeTestCert(t, filepath.Join(wd, "data/tls-selfsigned.crt"), filepath.Join(wd, "data/tls-selfsigned.key"), "vm", time.Now().Add(5*365*24*time.Hour+time.Hour))
	stdout, _, _ = runBinaryIn(t, wd, "doctor")
	compareLines(t, stdout, doctorLines(stdout, "smtp.tls_cert"), []string{
		"ok    smtp.tls_cert: empty, so self-signed: " + wd + "/data/tls-selfsigned.crt: subject CN=vm,O=Test Clinic, expires " + expiry(self) + " (in 1825 days)",
	})
}

// TestDoctorConfigProblems: doctor lists a configuration's problems under
// its one FAIL line, without saying "config" twice.
func TestDoctorConfigProblems(t *testing.T) {
	wd := t.TempDir()
	path := filepath.Join(wd, "bad.toml")
	if err := os.WriteFile(path, []byte("[smtp]\ndomian = \"x\"\nidle_timeout = 15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, _, _ := runBinaryIn(t, wd, "doctor", "--config", path)
	want := "FAIL  config: " + path + ": 2 problems:\n" +
		"  smtp.domian: unknown key (did you mean smtp.domain?)\n" +
		"  smtp.idle_timeout: a duration in quotes, with its unit, like \"15s\" or \"15m\", not the bare number 15\n"
	if stdout != want {
		t.Errorf("doctor printed\n%s\nwant\n%s", stdout, want)
	}
}
