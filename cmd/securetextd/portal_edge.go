package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
)

// The portal's edge: HTTPS of its own (portal.tls_cert, portal.tls_key,
// with HTTP/2), or a reverse proxy in front whose word about the client's
// address is taken (portal.trusted_proxies, see portal.ResolveClient).

// maxTrustedProxies bounds portal.trusted_proxies: each request is
// checked against every entry.
const maxTrustedProxies = 256

// validatePortalEdge checks portal.tls_cert, portal.tls_key and
// portal.trusted_proxies. Whether the certificate can be read is checked
// when the portal starts (and at each reload), where it is used.
func (c *Config) validatePortalEdge() []string {
	return validateEdge("portal", c.Portal.TLSCert, c.Portal.TLSKey, c.Portal.TrustedProxies)
}

// validateEdge checks the TLS files and trusted proxies of a web
// listener, section.tls_cert, section.tls_key and
// section.trusted_proxies: the portal's, or the console's.
func validateEdge(section, cert, key string, proxies []string) []string {
	var p []string
	bad := func(key, format string, args ...any) {
		p = append(p, section+"."+key+": "+fmt.Sprintf(format, args...))
	}
	if (cert == "") != (key == "") {
		bad("tls_cert", "set both %s.tls_cert and %s.tls_key, or neither", section, section)
	}
	if len(proxies) > maxTrustedProxies {
		bad("trusted_proxies", "%d entries: at most %d", len(proxies), maxTrustedProxies)
	}
	for _, n := range proxies {
		switch pr, err := netip.ParsePrefix(n); {
		case err != nil || pr.Addr().Zone() != "":
			bad("trusted_proxies", "%q is not a CIDR such as \"127.0.0.1/32\" or \"10.0.0.0/8\"", n)
		case pr.Bits() == 0:
			bad("trusted_proxies", "%q trusts every address: anyone could then claim to be any client", n)
		}
	}
	return p
}

// liveCert is a certificate that a reload (SIGHUP) replaces: each new
// handshake gets the one in place, connections made keep theirs.
type liveCert struct {
	atomic.Pointer[tls.Certificate]
}

// config returns a server configuration that serves cert, or the one a
// reload put in its place, offering nextProtos (ALPN) in that order.
func (c *liveCert) config(cert tls.Certificate, nextProtos ...string) *tls.Config {
	c.Store(&cert)
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.Load(), nil
		},
	}
}

// loadKeyPair reads a certificate and its key, each error naming the
// configuration key of the file at fault.
func loadKeyPair(certKey, certFile, keyKey, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %w", certKey, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %w", keyKey, err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s and %s: %w", certKey, keyKey, err)
	}
	return c, nil
}

// portalTLS reads the portal's certificate and returns the TLS
// configuration the portal listener serves (HTTP/2 first, then
// HTTP/1.1), or nil when portal.tls_cert is not set: plain HTTP, behind a
// proxy or on loopback.
func (o *opsState) portalTLS(cfg Config) (*tls.Config, error) {
	if cfg.Portal.TLSCert == "" {
		return nil, nil
	}
	cert, err := loadKeyPair("portal.tls_cert", cfg.Path(cfg.Portal.TLSCert), "portal.tls_key", cfg.Path(cfg.Portal.TLSKey))
	if err != nil {
		return nil, err
	}
	return o.portalCert.config(cert, "h2", "http/1.1"), nil
}

// servePortalTLS wraps the portal's listener in TLS when tc is not nil.
// http.Server.Serve then speaks HTTP/2 to clients that ask for it (ALPN
// "h2") and HTTP/1.1 to the rest.
func servePortalTLS(l net.Listener, tc *tls.Config) net.Listener {
	if tc == nil {
		return l
	}
	return tls.NewListener(l, tc)
}

// reloadCert reads a listener's certificate again, for a reload: nil
// when that listener serves no TLS of its own (live holds none). section
// names the listener's configuration section ("portal", "console"), and
// certFile and keyFile are next's paths. Turning a listener's TLS on or
// off changes the listener, which takes a restart: such a reload is
// refused, so that nothing changes halfway.
func reloadCert(live *liveCert, section, certFile, keyFile string) (*tls.Certificate, error) {
	serving := live.Load() != nil
	if serving != (certFile != "") {
		return nil, fmt.Errorf("%s.tls_cert: turning the %s's own TLS on or off takes a restart", section, section)
	}
	if !serving {
		return nil, nil
	}
	cert, err := loadKeyPair(section+".tls_cert", certFile, section+".tls_key", keyFile)
	if err != nil {
		return nil, err
	}
	return &cert, nil
}
