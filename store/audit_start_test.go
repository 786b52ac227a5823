package store

import (
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// TestRecordStart: each start records the configuration; the sealing key
// is recorded the first time (key.loaded), not again while it stays the
// same, and as key.changed when it differs from the last one recorded.
func TestRecordStart(t *testing.T) {
	db, _ := lifecycleDB(t, Policy{})
	ctx := securetextd.WithOrigin(t.Context(), securetextd.Origin{Actor: "operator"})
	for _, start := range []struct{ config, key string }{
		{"sha256:aa", "age1first"},
		{"sha256:aa", "age1first"},
		{"sha256:bb", "age1second"},
		{"sha256:bb", "age1second"},
	} {
		if err := db.RecordStart(ctx, start.config, start.key); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if err := db.AuditTrail(ctx, time.Time{}, func(ev securetextd.AuditEvent) error {
		got = append(got, ev.Event+" "+ev.Detail+" by "+ev.Actor)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"config.loaded sha256:aa by operator", "key.loaded age1first by operator",
		"config.loaded sha256:aa by operator",
		"config.loaded sha256:bb by operator", "key.changed age1second by operator",
		"config.loaded sha256:bb by operator",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("trail\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
