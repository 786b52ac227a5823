package main

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/notify"
	"github.com/securetextd/securetextd/portal"
)

// EmailRecipientsConfig is the [email_recipients] section: whether a
// message may name email addresses beside phone numbers. Each gets a
// notice email with the portal's link (notify/email_notice.go), never the
// content; their accounts are keyed by the address.
type EmailRecipientsConfig struct {
	Enabled bool `toml:"enabled"`
}

// dkimSelector is what a selector may be: DNS labels.
var dkimSelector = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// validateEmail checks [email_recipients], mail.dkim_* and
// limits.per_address_per_hour. The DKIM key is loaded here, so that a key
// that will not sign stops the start, naming the key.
func (c *Config) validateEmail() []string {
	var p []string
	bad := func(key, format string, args ...any) { p = append(p, key+": "+fmt.Sprintf(format, args...)) }
	if n := c.Limits.PerAddressPerHour; n < 0 || n > 1000 {
		bad("limits.per_address_per_hour", "%d is out of range (0 for no limit, up to 1000)", n)
	}
	m := c.Mail
	set := 0
	for _, v := range []string{m.DKIMDomain, m.DKIMSelector, m.DKIMKey} {
		if v != "" {
			set++
		}
	}
	if set == 0 {
		return p
	}
	if set < 3 {
		for key, v := range map[string]string{"mail.dkim_domain": m.DKIMDomain, "mail.dkim_selector": m.DKIMSelector, "mail.dkim_key": m.DKIMKey} {
			if v == "" {
				bad(key, "is empty: set mail.dkim_domain, mail.dkim_selector and mail.dkim_key together, or none of them")
			}
		}
		return p
	}
	if !dkimSelector.MatchString(strings.ToLower(m.DKIMDomain)) || !strings.Contains(m.DKIMDomain, ".") {
		bad("mail.dkim_domain", "%q is not a domain name", m.DKIMDomain)
	} else if _, from, _ := strings.Cut(m.From, "@"); !aligned(strings.ToLower(from), strings.ToLower(m.DKIMDomain)) {
		bad("mail.dkim_domain", "%q does not match mail.from's domain %q: receivers judge a signature by the From address's domain (DMARC alignment)", m.DKIMDomain, from)
	}
	if !dkimSelector.MatchString(m.DKIMSelector) {
		bad("mail.dkim_selector", "%q is not a selector: lowercase letters, digits, - and . as in a DNS name", m.DKIMSelector)
	}
	if _, err := loadDKIMKey(c.Path(m.DKIMKey)); err != nil {
		bad("mail.dkim_key", "%v", err)
	}
	return p
}

// aligned reports whether the From domain and the signing domain are the
// same or one is under the other (relaxed alignment, near enough for a
// configuration check).
func aligned(from, d string) bool {
	return from == d || strings.HasSuffix(from, "."+d) || strings.HasSuffix(d, "."+from)
}

// loadDKIMKey reads a PEM private key for DKIM: PKCS#8 (RSA or Ed25519,
// as `securetextd dkim keygen` and opendkim-genkey write them) or PKCS#1
// RSA. An RSA key under 1024 bits is refused (RFC 8301).
func loadDKIMKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s holds no PEM block", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%s holds a %q, not a private key", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 1024 {
			return nil, fmt.Errorf("%s: an RSA key of %d bits is too weak for DKIM: make one of 2048 (securetextd dkim keygen)", path, k.N.BitLen())
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, errors.New(path + ": an RSA or Ed25519 key is needed")
}

// dkim returns the Mailer's DKIM settings, or nil without mail.dkim_*.
func (c *Config) dkim() (*notify.DKIM, error) {
	if c.Mail.DKIMKey == "" {
		return nil, nil
	}
	key, err := loadDKIMKey(c.Path(c.Mail.DKIMKey))
	if err != nil {
		return nil, fmt.Errorf("mail.dkim_key: %w", err)
	}
	return &notify.DKIM{Domain: strings.ToLower(c.Mail.DKIMDomain), Selector: c.Mail.DKIMSelector, Signer: key}, nil
}

// parseRecipient reads what a recipient typed into the portal's reset
// form: their phone number, or, with email recipients on, their address.
func (c *Config) parseRecipient(phones securetextd.PhoneRules) func(string) (securetextd.Phone, error) {
	return func(s string) (securetextd.Phone, error) {
		if c.EmailRecipients.Enabled && strings.Contains(s, "@") {
			return securetextd.ParseEmail(s)
		}
		return phones.Parse(s)
	}
}

// brandColors are the colour of the brand and the text colour on it, for
// the notice emails' HTML.
func (c *Config) brandColors() (string, string) {
	return c.Brand.Color, portal.OnBrand(c.Brand.Color)
}
