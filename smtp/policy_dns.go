package smtp

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"blitiri.com.ar/go/spf"
)

// dnsLookupTimeout bounds one DNS lookup of a sender check.
const dnsLookupTimeout = 10 * time.Second

// checkResolver is the DNS the sender checks see. It puts every error in
// one of two kinds, because the checks' libraries (go-msgauth, spf) decide
// between "temporary" and "permanent" from the error alone, and a resolver
// that cannot reach its server says neither (connection refused is not
// Temporary for net): an answer that the name does not exist (or has no
// such records) stays a permanent *net.DNSError with IsNotFound; anything
// else, a server down, a timeout, SERVFAIL or a malformed answer, becomes
// a temporary one, so that the relaying server retries rather than bounces.
// Neither is ever a pass. The errors leave out the resolver's address,
// which replies must not show.
type checkResolver struct {
	r *net.Resolver
}

var _ spf.DNSResolver = checkResolver{}

func (c checkResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, dnsLookupTimeout)
	defer cancel()
	txt, err := c.r.LookupTXT(ctx, name)
	return txt, dnsError(name, err)
}

func (c checkResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	ctx, cancel := context.WithTimeout(ctx, dnsLookupTimeout)
	defer cancel()
	mx, err := c.r.LookupMX(ctx, name)
	return mx, dnsError(name, err)
}

func (c checkResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ctx, cancel := context.WithTimeout(ctx, dnsLookupTimeout)
	defer cancel()
	ips, err := c.r.LookupIPAddr(ctx, host)
	return ips, dnsError(host, err)
}

func (c checkResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, dnsLookupTimeout)
	defer cancel()
	names, err := c.r.LookupAddr(ctx, addr)
	return names, dnsError(addr, err)
}

// lookupTXTFunc adapts LookupTXT to go-msgauth's callback, which has no
// context.
func (c checkResolver) lookupTXTFunc(ctx context.Context) func(string) ([]string, error) {
	return func(name string) ([]string, error) { return c.LookupTXT(ctx, name) }
}

// dnsError returns err as a *net.DNSError that is either IsNotFound or
// temporary, without the server's address. (The spf package inspects the
// concrete type, so it must stay a *net.DNSError.)
func dnsError(name string, err error) error {
	if err == nil {
		return nil
	}
	var de *net.DNSError
	if !errors.As(err, &de) {
		return &net.DNSError{Err: "no usable answer", Name: name, IsTemporary: true, UnwrapErr: err}
	}
	if de.IsNotFound {
		return &net.DNSError{Err: de.Err, Name: de.Name, IsNotFound: true}
	}
	msg := "no usable answer"
	switch {
	case de.IsTimeout:
		msg = "timeout"
	case strings.Contains(de.Err, "server misbehaving"):
		msg = "server failure"
	}
	return &net.DNSError{Err: msg, Name: de.Name, IsTemporary: true, UnwrapErr: err}
}

// isTempDNS reports whether err is a temporary DNS failure.
func isTempDNS(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.Temporary()
}

// normalizeDomain returns a domain name as the checks compare it: lower
// case, without a final dot. It returns "" for anything that is not a
// plausible DNS name of at least two labels.
func normalizeDomain(d string) string {
	d = strings.TrimSuffix(strings.ToLower(d), ".")
	if len(d) == 0 || len(d) > 253 || !strings.Contains(d, ".") {
		return ""
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return ""
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return ""
			}
		}
	}
	return d
}
