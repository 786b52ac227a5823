package main

import (
	"fmt"
	"net/url"

	"github.com/securetextd/securetextd/store"
)

// The store's engine: [store] driver, dsn and max_conns. SQLite (a file
// beside the gateway) is the default; PostgreSQL is for several gateway
// nodes sharing one database, which its own replication keeps safe.

// validateStore checks the engine's keys.
func (c *Config) validateStore() []string {
	var p []string
	bad := func(key, format string, args ...any) {
		p = append(p, key+": "+fmt.Sprintf(format, args...))
	}
	switch c.Store.Driver {
	case store.SQLite:
		if c.Store.DSN != "" {
			bad("store.dsn", "is set, but store.driver is %q: set driver = %q to use PostgreSQL", store.SQLite, store.Postgres)
		}
	case store.Postgres:
		if err := checkDSN(c.Store.DSN); err != nil {
			bad("store.dsn", "%v", err)
		}
	default:
		bad("store.driver", "%q: use %q (a file, the default) or %q (a server that several nodes share)", c.Store.Driver, store.SQLite, store.Postgres)
	}
	if n := c.Store.MaxConns; n < 0 || n > 1000 {
		bad("store.max_conns", "%d is out of range (0 for the default of %d, up to 1000)", n, store.DefaultMaxConns)
	}
	return p
}

// checkDSN checks that dsn is a PostgreSQL URL naming a host and a
// database, without quoting it: it may hold a password.
func checkDSN(dsn string) error {
	if dsn == "" {
		return fmt.Errorf("must be set when store.driver is %q, as postgres://user@host:5432/database", store.Postgres)
	}
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" || len(u.Path) < 2 {
		return fmt.Errorf("is not a URL like postgres://user@host:5432/database")
	}
	return nil
}

// storeOptions says where the configured store lives.
func (c *Config) storeOptions() store.Options {
	return store.Options{
		Driver:   c.Store.Driver,
		Path:     c.Path(c.Store.Path),
		DSN:      c.Store.DSN,
		MaxConns: c.Store.MaxConns,
	}
}
