package main

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd/internal/dnstest"
)

// TestConfigEmail checks the email recipients' keys: the defaults, a DKIM
// key that `dkim keygen` made loads (RSA and Ed25519, and the record it
// prints holds its public key), and every bad value is refused at start
// naming its key.
func TestConfigEmail(t *testing.T) {
	cfg, err := ParseConfig(nil, ".")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.EmailRecipients.Enabled || cfg.Mail.DKIMKey != "" || cfg.Limits.PerAddressPerHour != 10 {
		t.Errorf("defaults: %+v %+v %+v", cfg.EmailRecipients, cfg.Mail, cfg.Limits)
	}
	dir := t.TempDir()
	for _, alg := range []string{"rsa", "ed25519"} {
		var out strings.Builder
		if err := run([]string{"dkim", "keygen", "--out", filepath.Join(dir, alg+".pem"), "--algorithm", alg,
			"--selector", "s1", "--domain", "clinic.example"}, nil, &out, &out); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, alg+".pem"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s key: %v, %v", alg, fi, err)
		}
		text := "[mail]\nfrom = \"securetextd@clinic.example\"\ndkim_domain = \"clinic.example\"\ndkim_selector = \"s1\"\ndkim_key = \"" + alg + ".pem\"\n"
		cfg, err := ParseConfig([]byte(text), dir)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		d, err := cfg.dkim()
		if err != nil {
			t.Fatal(err)
		}
		// The record printed is the key's.
		var pub []byte
		switch k := d.Signer.(type) {
		case *rsa.PrivateKey:
			pub, _ = x509.MarshalPKIXPublicKey(&k.PublicKey)
		case ed25519.PrivateKey:
			pub = k.Public().(ed25519.PublicKey)
		}
		record := strings.ReplaceAll(strings.ReplaceAll(out.String(), `" "`, ""), "\n", "")
		if !strings.Contains(out.String(), "s1._domainkey.clinic.example. 3600 IN TXT") ||
			!strings.Contains(record, "k="+alg+"; p="+base64.StdEncoding.EncodeToString(pub)) {
			t.Errorf("%s: printed %s", alg, out.String())
		}
		// Never over an existing key.
		if err := run([]string{"dkim", "keygen", "--out", filepath.Join(dir, alg+".pem")}, nil, &out, &out); err == nil || !strings.Contains(err.Error(), "exists already") {
			t.Errorf("keygen over a key: %v", err)
		}
	}
	os.WriteFile(filepath.Join(dir, "weak.pem"), []byte("not a key\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), 0o600)
	const dkim = "[mail]\nfrom = \"securetextd@clinic.example\"\ndkim_domain = \"clinic.example\"\ndkim_selector = \"s1\"\n"
	for text, want := range map[string]string{
		dkim + "dkim_key = \"missing.pem\"\n": "mail.dkim_key: open " + filepath.Join(dir, "missing.pem") + ": no such file",
		dkim + "dkim_key = \"weak.pem\"\n":    "mail.dkim_key: " + filepath.Join(dir, "weak.pem") + " holds no PEM block",
		dkim + "dkim_key = \"cert.pem\"\n":    `holds a "CERTIFICATE", not a private key`,
		"[mail]\ndkim_key = \"rsa.pem\"\n":    "mail.dkim_domain: is empty: set mail.dkim_domain, mail.dkim_selector and mail.dkim_key together",
		strings.Replace(dkim, "clinic.example\"\nd", "bank.example\"\nd", 1) + "dkim_key = \"rsa.pem\"\n": `mail.dkim_domain: "clinic.example" does not match mail.from's domain "bank.example"`,
		strings.Replace(dkim, `"s1"`, `"S 1"`, 1) + "dkim_key = \"rsa.pem\"\n":                            `mail.dkim_selector: "S 1" is not a selector`,
		"[limits]\nper_address_per_hour = -1\n":                                                           "limits.per_address_per_hour: -1 is out of range",
		"[email_recipients]\nenabled = \"yes\"\n":                                                         "email_recipients.enabled",
	} {
		_, err := ParseConfig([]byte(text), dir)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", text, err, want)
		}
	}
}

// TestDoctorDKIM: doctor finds the notices' DKIM key published, another
// key published, none, or no key while email recipients are on.
func TestDoctorDKIM(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	if err := run([]string{"dkim", "keygen", "--out", filepath.Join(dir, "k.pem"), "--selector", "s1", "--domain", "clinic.example"}, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	var record string
	for _, m := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(out.String(), -1) {
		record += m[1]
	}
	dns := dnstest.New(t)
	check := func(text string) string {
		t.Helper()
		cfg, err := ParseConfig([]byte(text), dir)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		doctorDKIM(cfg, 5*time.Second, func(level, what, detail string) { fmt.Fprintf(&b, "%s %s: %s\n", level, what, detail) })
		return b.String()
	}
	signed := fmt.Sprintf("[relay]\ndns_server = %q\n[mail]\nfrom = \"securetextd@clinic.example\"\ndkim_domain = \"clinic.example\"\ndkim_selector = \"s1\"\ndkim_key = \"k.pem\"\n", dns.Addr())
	if got := check(signed); !strings.HasPrefix(got, "FAIL mail.dkim_key: no DKIM record at s1._domainkey.clinic.example") {
		t.Errorf("unpublished: %s", got)
	}
	dns.Set("s1._domainkey.clinic.example", record)
	if got := check(signed); !strings.HasPrefix(got, "ok mail.dkim_key: the notices are signed as clinic.example") {
		t.Errorf("published: %s", got)
	}
	dns.Set("s1._domainkey.clinic.example", "v=DKIM1; k=ed25519; p=WfKAct8sS1dJ8Msb59LKH+jPV6Gff7BRYMJ43h1yOX8=")
	if got := check(signed); !strings.Contains(got, "publishes another key than k.pem") {
		t.Errorf("another key: %s", got)
	}
	if got := check("[email_recipients]\nenabled = true\n"); !strings.HasPrefix(got, "warn mail.dkim_key: empty") {
		t.Errorf("unsigned: %s", got)
	}
	if got := check(""); got != "" {
		t.Errorf("off: %s", got)
	}
}
