package store

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// TestTextSlotsAcrossNodes: many workers on two nodes take send slots at
// the same moment; the slots are one interval apart, none given twice,
// whichever node asked.
func TestTextSlotsAcrossNodes(t *testing.T) {
	nodes := openNodes(t, 2)
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	const interval, takers = 250 * time.Millisecond, 40
	slots := make([]time.Time, takers)
	var wg sync.WaitGroup
	errs := make(chan error, takers)
	for i := range takers {
		db := nodes[i%2]
		wg.Go(func() {
			s, err := db.TakeTextSlot(t.Context(), now, interval)
			if err != nil {
				errs <- err
			}
			slots[i] = s
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.SortFunc(slots, func(a, b time.Time) int { return a.Compare(b) })
	for i, s := range slots {
		if want := now.Add(time.Duration(i) * interval); !s.Equal(want) {
			t.Fatalf("slot %d at %v, want %v: two texts would share a slot", i, s.Sub(now), want.Sub(now))
		}
	}
}

// TestTextSlots: after a quiet spell a slot is now; an unused slot given
// back is taken again if it was the last; a throttle holds every slot.
func TestTextSlots(t *testing.T) {
	nodes := openNodes(t, 2)
	a, b := nodes[0], nodes[1]
	ctx := t.Context()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	const interval = time.Second
	take := func(db *DB, at time.Time, want time.Duration) time.Time {
		t.Helper()
		s, err := db.TakeTextSlot(ctx, at, interval)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Sub(now); got != want {
			t.Fatalf("slot at +%v, want +%v", got, want)
		}
		return s
	}
	take(a, now, 0)
	s := take(b, now, time.Second)
	if err := a.ReturnTextSlot(ctx, s, interval); err != nil {
		t.Fatal(err)
	}
	s = take(a, now, time.Second) // given back: the same slot again
	take(b, now, 2*time.Second)
	if err := a.ReturnTextSlot(ctx, s, interval); err != nil { // not the last: lost
		t.Fatal(err)
	}
	take(a, now, 3*time.Second)
	s = take(a, now, 4*time.Second) // given back by the node that took it
	if err := a.ReturnTextSlot(ctx, s, interval); err != nil {
		t.Fatal(err)
	}
	take(a, now, 4*time.Second)
	take(b, now.Add(time.Minute), time.Minute) // a quiet spell

	if err := a.HoldTexts(ctx, now.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	take(b, now.Add(2*time.Minute), 10*time.Minute)
	take(a, now.Add(2*time.Minute), 10*time.Minute+time.Second)
	if err := b.HoldTexts(ctx, now.Add(5*time.Minute)); err != nil { // earlier: no change
		t.Fatal(err)
	}
	take(b, now.Add(2*time.Minute), 10*time.Minute+2*time.Second)
	if _, err := a.TakeTextSlot(ctx, now, 0); err == nil {
		t.Error("a slot without an interval")
	}
}
