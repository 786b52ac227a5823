package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd/store"
)

// TestServeOnceOnSQLite: a SQLite store has one serving process. A second
// gateway on the same file refuses to start, saying why; the file is
// served again once the first has stopped. (Several nodes share a
// PostgreSQL database instead.)
func TestServeOnceOnSQLite(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "http://127.0.0.1:9")
	cfg.Store.Driver, cfg.Store.DSN = store.SQLite, ""
	first := &Main{Config: cfg, Logger: slog.New(slog.DiscardHandler)}
	if err := first.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	second := &Main{Config: cfg, Logger: slog.New(slog.DiscardHandler)}
	err := second.Run(t.Context())
	second.Close(t.Context())
	if err == nil {
		first.Close(t.Context())
		t.Fatal("a second gateway started on the same SQLite file")
	}
	for _, want := range []string{"another securetextd process serves", "db.sqlite-serve.lock", `store.driver = "postgres"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	startMain(t, cfg)
}
