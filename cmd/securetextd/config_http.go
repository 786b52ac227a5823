package main

import "fmt"

// The HTTP listeners' connection caps (portal.max_connections,
// ops.max_connections): each listener serves at most so many connections
// at once (portal.LimitListener), so that a flood of one cannot take the
// file descriptors the others, SMTP and the store need.
const (
	defaultPortalMaxConnections = 1000
	defaultOpsMaxConnections    = 64
	maxHTTPConnections          = 1 << 20
)

func httpDefaults(c *Config) {
	c.Portal.MaxConnections = defaultPortalMaxConnections
	c.Ops.MaxConnections = defaultOpsMaxConnections
}

// validateHTTP checks the HTTP listeners' caps.
func (c *Config) validateHTTP() []string {
	var p []string
	for _, k := range []struct {
		key string
		n   int
	}{
		{"portal.max_connections", c.Portal.MaxConnections},
		{"ops.max_connections", c.Ops.MaxConnections},
	} {
		if k.n < 1 || k.n > maxHTTPConnections {
			p = append(p, fmt.Sprintf("%s: %d is out of range (1 to %d connections at once)", k.key, k.n, maxHTTPConnections))
		}
	}
	return p
}
