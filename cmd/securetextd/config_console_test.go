package main

import (
	"errors"
	"strings"
	"testing"
)

// TestConsoleConfig: bad [console] values are refused at start, each
// naming its key, with the others' problems.
func TestConsoleConfig(t *testing.T) {
	_, err := ParseConfig([]byte(`
[portal]
listen = "127.0.0.1:8080"
[console]
listen = "127.0.0.1:8080"
public_url = "http://console.clinic.example"
tls_cert = "cert.pem"
trusted_proxies = ["0.0.0.0/0", "nonsense"]
require_totp = "sometimes"
`), ".")
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *ConfigError", err)
	}
	for _, w := range []string{
		`console.listen: "127.0.0.1:8080" is portal.listen too`,
		`console.public_url: "http://console.clinic.example": use https://`,
		"console.tls_cert: set both console.tls_cert and console.tls_key, or neither",
		`console.trusted_proxies: "0.0.0.0/0" trusts every address`,
		`console.trusted_proxies: "nonsense" is not a CIDR`,
		`console.require_totp: "sometimes": use "admins", "all" or "none"`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q:\n%s", w, err)
		}
	}
	cfg, err := ParseConfig([]byte("[console]\nlisten = \"\"\nrequire_totp = \"all\"\n"), ".")
	if err != nil || cfg.Console.Listen != "" || cfg.Console.RequireTOTP != "all" {
		t.Errorf("console off, TOTP for all: %+v, %v", cfg.Console, err)
	}
	if d := DefaultConfig().Console; d.Listen != "127.0.0.1:8081" || d.RequireTOTP != "admins" {
		t.Errorf("defaults %+v", d)
	}
}
