package store

import (
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// TestRecordSenderChange: each change is one sender.changed row that says
// what was done to which address, by whom.
func TestRecordSenderChange(t *testing.T) {
	db, _ := lifecycleDB(t, Policy{})
	ctx := securetextd.WithOrigin(t.Context(), securetextd.Origin{Actor: "operator", Client: "cli"})
	for _, what := range []string{SenderAdded, SenderPassword, SenderRemoved} {
		if err := db.RecordSenderChange(ctx, what, drWho); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if err := db.AuditTrail(ctx, time.Time{}, func(ev securetextd.AuditEvent) error {
		got = append(got, ev.Event+": "+ev.Detail+" by "+ev.Actor+" from "+ev.Client)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"sender.changed: add dr.who@clinic.example by operator from cli",
		"sender.changed: passwd dr.who@clinic.example by operator from cli",
		"sender.changed: removed dr.who@clinic.example by operator from cli",
	}
	if len(got) != len(want) {
		t.Fatalf("trail %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: %q, want %q", i+1, got[i], want[i])
		}
	}
}
