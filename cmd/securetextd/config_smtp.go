package main

import (
	"fmt"
	"time"
)

// smtpLimitDefaults sets the defaults of the keys that keep a flood of
// connections from taking the SMTP listeners down.
func smtpLimitDefaults(c *Config) {
	c.SMTP.MaxConnections = 1000
	c.SMTP.MaxConnectionsPerIP = 20
	c.SMTP.IdleTimeout = time.Minute
}

// validateSMTPLimits checks smtp.max_connections,
// smtp.max_connections_per_ip and smtp.idle_timeout.
func (c *Config) validateSMTPLimits() []string {
	var p []string
	bad := func(key, format string, args ...any) {
		p = append(p, key+": "+fmt.Sprintf(format, args...))
	}
	if n := c.SMTP.MaxConnections; n < 1 || n > 1000000 {
		bad("smtp.max_connections", "%d is out of range (1 to 1000000)", n)
	}
	if n := c.SMTP.MaxConnectionsPerIP; n < 1 || n > max(c.SMTP.MaxConnections, 1) {
		bad("smtp.max_connections_per_ip", "%d is out of range (1 to smtp.max_connections)", n)
	}
	// Past five minutes, the read timeout that follows AUTH ends the wait
	// first.
	if d := c.SMTP.IdleTimeout; d < time.Second || d > 5*time.Minute {
		bad("smtp.idle_timeout", "%v is out of range (1s to 5m)", d)
	}
	return p
}
