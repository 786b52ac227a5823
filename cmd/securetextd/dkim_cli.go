package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// dkimManuals is the manual of the dkim command (help.go reads it).
var dkimManuals = map[string]string{
	"dkim": `NAME
    securetextd dkim - make the key that signs the notice emails

SYNOPSIS
    securetextd dkim keygen --out FILE [--algorithm rsa|ed25519]
                            [--config FILE] [--selector S] [--domain D]

DESCRIPTION
    keygen writes a new DKIM private key (PEM, PKCS#8) to FILE, mode
    0600, and prints the DNS TXT record to publish for it, at
    SELECTOR._domainkey.DOMAIN. Set mail.dkim_key to FILE and
    mail.dkim_selector and mail.dkim_domain to the same SELECTOR and
    DOMAIN, publish the record, then restart securetextd: the notice
    emails to email recipients are signed from then on. An existing FILE
    is never overwritten.

    The selector and domain are taken from --selector and --domain, or
    from the configuration's mail.dkim_selector and mail.dkim_domain, or
    else are securetextdYYYYMM (this month) and mail.from's domain.

OPTIONS
    --out FILE        The key file to create.
    --algorithm A     rsa (2048 bits, the default, which every receiver
                      checks) or ed25519 (RFC 8463: a short key, not yet
                      checked by every receiver).
    --config FILE     The configuration to take the selector and domain
                      from.
    --selector S      The selector.
    --domain D        The signing domain.
`,
}

func runDKIM(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "keygen" {
		return errUsage{"dkim needs a subcommand: keygen"}
	}
	fs := flag.NewFlagSet("dkim keygen", flag.ContinueOnError)
	out := fs.String("out", "", "file to create (mode 0600)")
	algorithm := fs.String("algorithm", "rsa", "rsa or ed25519")
	configPath := fs.String("config", "", "configuration file")
	selector := fs.String("selector", "", "DKIM selector")
	domain := fs.String("domain", "", "signing domain")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if *out == "" || len(pos) > 0 {
		return errUsage{"dkim keygen needs --out FILE and nothing else"}
	}
	if *algorithm != "rsa" && *algorithm != "ed25519" {
		return errUsage{fmt.Sprintf("--algorithm %q: use rsa or ed25519", *algorithm)}
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	if *selector == "" {
		*selector = cfg.Mail.DKIMSelector
	}
	if *selector == "" {
		*selector = "securetextd" + time.Now().UTC().Format("200601")
	}
	if *domain == "" {
		*domain = cfg.Mail.DKIMDomain
	}
	if *domain == "" {
		_, *domain, _ = strings.Cut(cfg.Mail.From, "@")
	}
	if !dkimSelector.MatchString(*selector) {
		return errUsage{fmt.Sprintf("--selector %q: lowercase letters, digits, - and . as in a DNS name", *selector)}
	}
	record, err := writeDKIMKey(*out, *algorithm)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s (%s); publish this DNS record:\n\n", *out, *algorithm)
	fmt.Fprintf(stdout, "%s._domainkey.%s. 3600 IN TXT %s\n", *selector, strings.ToLower(*domain), quoteTXT(record))
	return nil
}

// writeDKIMKey makes a key of algorithm, writes it to path (which must not
// exist) as PKCS#8 PEM, mode 0600, and returns the DKIM key record of its
// public key: "v=DKIM1; k=rsa; p=…".
func writeDKIMKey(path, algorithm string) (string, error) {
	var priv, pub any
	k := "rsa"
	switch algorithm {
	case "ed25519":
		p, s, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return "", err
		}
		priv, pub, k = s, p, "ed25519"
	default:
		s, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", err
		}
		priv, pub = s, &s.PublicKey
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", err
	}
	var p []byte
	if k == "ed25519" {
		// RFC 8463: the bare 32-byte key, not SubjectPublicKeyInfo.
		p = pub.(ed25519.PublicKey)
	} else if p, err = x509.MarshalPKIXPublicKey(pub); err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("%s exists already: a key is never overwritten", path)
	}
	if err != nil {
		return "", err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		os.Remove(path)
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", err
	}
	return "v=DKIM1; k=" + k + "; p=" + base64.StdEncoding.EncodeToString(p), nil
}

// quoteTXT writes a TXT value as zone files take it: quoted strings of at
// most 255 bytes each (an RSA-2048 record is longer), which resolvers
// join back.
func quoteTXT(v string) string {
	var parts []string
	for len(v) > 255 {
		parts = append(parts, `"`+v[:255]+`"`)
		v = v[255:]
	}
	parts = append(parts, `"`+v+`"`)
	if len(parts) == 1 {
		return parts[0]
	}
	return "( " + strings.Join(parts, " ") + " )"
}
