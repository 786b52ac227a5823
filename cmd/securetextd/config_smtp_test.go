package main

import (
	"strings"
	"testing"
	"time"
)

// TestConfigSMTPLimits checks the flood limits' defaults, and that a bad
// value is refused naming its key.
func TestConfigSMTPLimits(t *testing.T) {
	cfg, err := ParseConfig(nil, ".")
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.SMTP; s.MaxConnections != 1000 || s.MaxConnectionsPerIP != 20 || s.IdleTimeout != time.Minute {
		t.Errorf("defaults: max_connections %d, max_connections_per_ip %d, idle_timeout %v", s.MaxConnections, s.MaxConnectionsPerIP, s.IdleTimeout)
	}
	_, err = ParseConfig([]byte("[smtp]\nmax_connections = 0\nmax_connections_per_ip = 5000\nidle_timeout = \"1h\"\n"), ".")
	for _, w := range []string{"smtp.max_connections: 0", "smtp.max_connections_per_ip: 5000", "smtp.idle_timeout: 1h0m0s"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not name %s", err, w)
		}
	}
	_, err = ParseConfig([]byte("[smtp]\nmax_connections = 10\nmax_connections_per_ip = 11\n"), ".")
	if err == nil || !strings.Contains(err.Error(), "smtp.max_connections_per_ip: 11 is out of range (1 to smtp.max_connections)") {
		t.Errorf("per-client limit above the total: %v", err)
	}
}
