package main

import (
	"errors"
	"strings"
	"testing"
)

// TestConfigStoreEngine refuses a bad [store] engine, naming each key, and
// never quotes a DSN, which may hold a password.
func TestConfigStoreEngine(t *testing.T) {
	for _, c := range []struct {
		name, toml string
		want       []string
	}{
		{"unknown driver", "driver = \"mysql\"\nmax_conns = -1", []string{`store.driver: "mysql"`, "store.max_conns: -1 is out of range"}},
		{"postgres without dsn", `driver = "postgres"`, []string{"store.dsn: must be set"}},
		{"not a URL", "driver = \"postgres\"\ndsn = \"host=db password=hunter22\"", []string{"store.dsn: is not a URL"}},
		{"no database", "driver = \"postgres\"\ndsn = \"postgres://u:hunter22@db:5432\"", []string{"store.dsn: is not a URL"}},
		{"dsn for sqlite", `dsn = "postgres://db/x"`, []string{`store.dsn: is set, but store.driver is "sqlite"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig([]byte("[store]\n"+c.toml+"\n"), ".")
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *ConfigError", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "hunter22") {
				t.Errorf("the error quotes the password: %v", err)
			}
		})
	}
	cfg, err := ParseConfig([]byte("[store]\ndriver = \"postgres\"\ndsn = \"postgres://securetextd@db.internal:5432/securetextd\"\nmax_conns = 12\n"), ".")
	if err != nil {
		t.Fatal(err)
	}
	if o := cfg.storeOptions(); o.Driver != "postgres" || o.MaxConns != 12 || o.DSN == "" {
		t.Errorf("storeOptions = %+v", o)
	}
}
