package store

import (
	"context"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
)

// TestLifecycleSweeps: ExpireSweep records an expiry and PurgeSweep
// deletes content past the retention period, each as its sweep; while
// another node runs a sweep, the same sweep here does nothing and says
// so.
func TestLifecycleSweeps(t *testing.T) {
	db, clk := lifecycleDB(t, Policy{Retention: 720 * time.Hour, AccessExpiry: 72 * time.Hour})
	ctx := t.Context()
	commitTest(t, db, &securetextd.Message{Sender: drWho, Subject: "old", Auth: "smtp-auth"},
		[]testPart{{securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"}, []byte("Old news.")}}, patient)
	clk.advance(721 * time.Hour)

	expired, ran, err := db.ExpireSweep(ctx)
	if err != nil || !ran || expired != 1 {
		t.Errorf("expire sweep: %d expired, ran %v, %v; want 1, true", expired, ran, err)
	}
	res, ran, err := db.PurgeSweep(ctx)
	if err != nil || !ran || res.Messages != 1 {
		t.Errorf("purge sweep: %+v, ran %v, %v; want 1 message, true", res, ran, err)
	}
	if n := countEvent(t, db, securetextd.AuditPurged); n != 1 {
		t.Errorf("%d purge events, want 1", n)
	}
}

// TestLifecycleSweepsOneAtATime: while one node runs the expire or purge
// sweep, another's ExpireSweep or PurgeSweep does not run it.
func TestLifecycleSweepsOneAtATime(t *testing.T) {
	nodes := openNodes(t, 2)
	ranExpire, err := nodes[0].Exclusive(t.Context(), SweepExpire, func(ctx context.Context) error {
		_, ran, err := nodes[1].ExpireSweep(ctx)
		if err == nil && ran {
			t.Error("ExpireSweep ran beside the expire sweep of another node")
		}
		return err
	})
	if err != nil || !ranExpire {
		t.Fatalf("expire sweep: ran %v, %v", ranExpire, err)
	}
	ranPurge, err := nodes[0].Exclusive(t.Context(), SweepPurge, func(ctx context.Context) error {
		_, ran, err := nodes[1].PurgeSweep(ctx)
		if err == nil && ran {
			t.Error("PurgeSweep ran beside the purge sweep of another node")
		}
		return err
	})
	if err != nil || !ranPurge {
		t.Fatalf("purge sweep: ran %v, %v", ranPurge, err)
	}
}
