package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// validateHostname checks smtp.hostname: empty (the host's own name, found
// at start) or a host name as RFC 1123 writes one, since it is announced
// in every SMTP greeting and ends every Message-ID the gateway makes.
func (c *Config) validateHostname() []string {
	if h := c.SMTP.Hostname; h != "" && !validHostname(h) {
		return []string{fmt.Sprintf("smtp.hostname: %q is not a host name (letters, digits and hyphens in dot-separated labels, as in \"mx.clinic.example\")", h)}
	}
	return nil
}

// validHostname reports whether h is a host name by RFC 1123 (section
// 2.1): dot-separated labels of 1 to 63 letters, digits and hyphens,
// neither starting nor ending with a hyphen, 253 characters at most, the
// last not all digits. A trailing dot, an address and an underscore are
// refused.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	// "The highest-level component label will be alphabetic": 192.0.2.1
	// is an address, not a name.
	if top := h[strings.LastIndexByte(h, '.')+1:]; strings.Trim(top, "0123456789") == "" {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// hostnameLookupTimeout bounds the lookup of the host's canonical name at
// start: a resolver that does not answer must not hold the gateway up.
const hostnameLookupTimeout = 2 * time.Second

// smtpHostname is the name the gateway goes by: smtp.hostname, or when it
// is empty the host's fully qualified name (resolveFQDN).
func (c *Config) smtpHostname(ctx context.Context) string {
	if c.SMTP.Hostname != "" {
		return c.SMTP.Hostname
	}
	return resolveFQDN(ctx, os.Hostname, net.DefaultResolver.LookupCNAME)
}

// resolveFQDN finds the host's fully qualified name as `hostname -f`
// does: the kernel's host name, then its canonical name (from /etc/hosts
// or DNS). It falls back to the host name when the lookup fails or gives
// something that is not a host name, and to "localhost" when even the
// host name is unusable.
func resolveFQDN(ctx context.Context, hostname func() (string, error), lookupCNAME func(context.Context, string) (string, error)) string {
	host, err := hostname()
	if err != nil || !validHostname(host) {
		return "localhost"
	}
	if strings.Contains(host, ".") {
		return host // already qualified
	}
	ctx, cancel := context.WithTimeout(ctx, hostnameLookupTimeout)
	defer cancel()
	cname, err := lookupCNAME(ctx, host)
	if cname = strings.TrimSuffix(cname, "."); err != nil || !validHostname(cname) {
		return host
	}
	return cname
}
