package main

import (
	"fmt"
	"net"
	"net/url"

	"github.com/securetextd/securetextd/console"
)

// ConsoleConfig is the [console] section: the clinician's console, a web
// listener of its own apart from the portal (console.go). Its sessions
// and lockouts follow the portal's keys (portal.idle_timeout,
// portal.session_lifetime, portal.lockout_failures,
// portal.lockout_window), and its connection cap portal.max_connections.
type ConsoleConfig struct {
	// Listen is where the console is served; "" turns it off.
	Listen string `toml:"listen"`
	// PublicURL is how clinicians reach it; https:// makes its cookie
	// __Host- and Secure and sends HSTS.
	PublicURL string `toml:"public_url"`
	// HTTPS of its own, and the proxies in front, as the portal has them.
	TLSCert        string   `toml:"tls_cert"`
	TLSKey         string   `toml:"tls_key"`
	TrustedProxies []string `toml:"trusted_proxies"`
	// RequireTOTP is whose sign-in needs TOTP: "admins", "all" or "none".
	RequireTOTP string `toml:"require_totp"`
}

func consoleDefaults(c *Config) {
	c.Console = ConsoleConfig{
		Listen:         "127.0.0.1:8081",
		PublicURL:      "http://127.0.0.1:8081",
		TrustedProxies: []string{},
		RequireTOTP:    console.RequireAdmins,
	}
}

// validateConsole checks [console].
func (c *Config) validateConsole() []string {
	var p []string
	bad := func(key, format string, args ...any) {
		p = append(p, key+": "+fmt.Sprintf(format, args...))
	}
	cc := c.Console
	if cc.Listen != "" {
		if err := checkListen(cc.Listen); err != nil {
			bad("console.listen", "%v", err)
		} else if cc.Listen == c.Portal.Listen && !isPortZero(cc.Listen) {
			bad("console.listen", "%q is portal.listen too: give the console an address of its own", cc.Listen)
		}
	}
	if u, err := url.Parse(cc.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("console.public_url", "%q is not an http:// or https:// URL", cc.PublicURL)
	} else if u.Scheme == "http" && !isLoopback(net.JoinHostPort(u.Hostname(), "80")) {
		bad("console.public_url", "%q: use https:// (plain http:// is only for a console on loopback, in development)", cc.PublicURL)
	}
	switch cc.RequireTOTP {
	case console.RequireAdmins, console.RequireAll, console.RequireNone:
	default:
		bad("console.require_totp", "%q: use \"admins\", \"all\" or \"none\"", cc.RequireTOTP)
	}
	return append(p, validateEdge("console", cc.TLSCert, cc.TLSKey, cc.TrustedProxies)...)
}
