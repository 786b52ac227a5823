package main

import (
	"fmt"
)

// APIConfig is the [api] section: the limits of the REST API.
type APIConfig struct {
	MaxJSONBytes int64   `toml:"max_json_bytes"`
	MaxBodyBytes int64   `toml:"max_body_bytes"`
	Rate         float64 `toml:"rate"`
	Burst        int     `toml:"burst"`
}

// OpsConfig is the [ops] section: where metrics and health are served.
type OpsConfig struct {
	Listen         string `toml:"listen"`
	MaxConnections int    `toml:"max_connections"` // config_http.go
}

func defaultAPIConfig() APIConfig {
	return APIConfig{MaxJSONBytes: 16 << 20, MaxBodyBytes: 100 << 20, Rate: 5, Burst: 20}
}

// validateOps checks [api] and [ops].
func (c *Config) validateOps() []string {
	var p []string
	bad := func(key, format string, args ...any) {
		p = append(p, key+": "+fmt.Sprintf(format, args...))
	}
	if n := c.API.MaxJSONBytes; n < 64<<10 || n > 1<<30 {
		bad("api.max_json_bytes", "%d is out of range (65536 to 1073741824)", n)
	}
	if n := c.API.MaxBodyBytes; n < 1<<20 || n > 1<<30 {
		bad("api.max_body_bytes", "%d is out of range (1048576 to 1073741824)", n)
	}
	if r := c.API.Rate; r <= 0 || r > 10000 {
		bad("api.rate", "%g is out of range (requests per second per key, above 0 and at most 10000)", r)
	}
	if b := c.API.Burst; b < 1 || b > 100000 {
		bad("api.burst", "%d is out of range (1 to 100000)", b)
	}
	if c.Ops.Listen != "" {
		if err := checkListen(c.Ops.Listen); err != nil {
			bad("ops.listen", "%v", err)
		} else if c.Ops.Listen == c.Portal.Listen && !isPortZero(c.Ops.Listen) {
			bad("ops.listen", "%q is also portal.listen: leave ops.listen empty to serve both there", c.Ops.Listen)
		}
	}
	return p
}

func isPortZero(addr string) bool {
	return len(addr) >= 2 && addr[len(addr)-2:] == ":0"
}
