package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// doctorDKIM checks the signing of the notices to email recipients: that
// they are signed when email recipients are on, that the key loads, and
// that DNS publishes its public key at mail.dkim_selector._domainkey.
// mail.dkim_domain (asked of relay.dns_server, or the system's resolver).
func doctorDKIM(cfg Config, timeout time.Duration, line func(level, what, detail string)) {
	if cfg.Mail.DKIMKey == "" {
		if cfg.EmailRecipients.Enabled {
			line("warn", "mail.dkim_key", "empty: the notices to email recipients are not DKIM-signed, and their providers may take them for phishing; make a key with securetextd dkim keygen")
		}
		return
	}
	d, err := cfg.dkim()
	if err != nil {
		line("FAIL", "mail.dkim_key", err.Error())
		return
	}
	var want []byte
	switch k := d.Signer.(type) {
	case *rsa.PrivateKey:
		want, _ = x509.MarshalPKIXPublicKey(&k.PublicKey)
	case ed25519.PrivateKey:
		want = k.Public().(ed25519.PublicKey)
	}
	name := d.Selector + "._domainkey." + d.Domain
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	txts, err := resolver(cfg.Relay.DNSServer).LookupTXT(ctx, name)
	if err != nil || len(txts) == 0 {
		line("FAIL", "mail.dkim_key", fmt.Sprintf("no DKIM record at %s (%v): publish the one securetextd dkim keygen printed", name, err))
		return
	}
	for _, txt := range txts {
		for tag := range strings.SplitSeq(txt, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(tag), "=")
			if k != "p" {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v), ""))
			if err == nil && bytes.Equal(got, want) {
				line("ok", "mail.dkim_key", fmt.Sprintf("the notices are signed as %s; %s publishes the key", d.Domain, name))
				return
			}
		}
	}
	line("FAIL", "mail.dkim_key", fmt.Sprintf("%s publishes another key than %s: receivers would refuse the signatures", name, cfg.Mail.DKIMKey))
}
