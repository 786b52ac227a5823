package main

import (
	"testing"
	"time"

	"github.com/securetextd/securetextd/store"
)

// TestLimitSweep: the daemon deletes the shared limits' rows that count
// nothing any more on its timer, without a new strike to do it, so that a
// quiet gateway forgets phone numbers and addresses too.
func TestLimitSweep(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "http://127.0.0.1:9")
	cfg.Portal.IdleTimeout = time.Second // the sweep's timer: every second
	m := startMain(t, cfg)
	brief := store.StrikeRule{Max: 5, Window: time.Millisecond}
	if _, _, err := m.db.Strike(t.Context(), "login", brief, "phone:+12125550123", "addr:192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.db.AuthFailed(t.Context(), store.AuthRule{Window: time.Millisecond, Known: time.Millisecond},
		"192.0.2.1/32", "dr.who@clinic.example"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for n := 1; n != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d expired limit rows left after 30 s", n)
		}
		time.Sleep(100 * time.Millisecond)
		countRows(t, m, "SELECT (SELECT count(*) FROM limit_strikes) + (SELECT count(*) FROM auth_failures)", &n)
	}
}
