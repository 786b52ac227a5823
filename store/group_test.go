package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/securetextd/securetextd"
)

// TestGroupCommit commits from many goroutines at once: every commit that
// returns nil is stored with its job, the ones that fail (here: into an
// unknown conversation) store nothing, and the failures do not spoil the
// other commits that shared their transaction.
func TestGroupCommit(t *testing.T) {
	db := openTestDB(t)
	const n = 120
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := db.NewDraft()
			defer d.Discard()
			w, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
			if err != nil {
				t.Error(err)
				return
			}
			fmt.Fprintf(w, "message %d", i)
			w.Close()
			target := Target{Phone: securetextd.Phone(fmt.Sprintf("+1212555%04d", i))}
			if i%7 == 0 {
				target.ConversationID = 1 << 40 // no such conversation
			}
			m := &securetextd.Message{Sender: "dr@clinic.example", Subject: fmt.Sprint(i)}
			_, err = d.CommitTargets(context.Background(), m, []Target{target})
			switch {
			case err == nil:
				ok.Add(1)
			case i%7 == 0:
				refused.Add(1)
			default:
				t.Errorf("commit %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	want := int64(n - (n+6)/7)
	if ok.Load() != want || refused.Load() != n-want {
		t.Errorf("%d committed, %d refused; want %d and %d", ok.Load(), refused.Load(), want, n-want)
	}
	if got := count(t, db, "messages"); got != int(want) {
		t.Errorf("%d messages stored, want %d", got, want)
	}
	if got := count(t, db, "jobs"); got != int(want) {
		t.Errorf("%d jobs, want %d", got, want)
	}
	if got := count(t, db, "parts"); got != int(want) {
		t.Errorf("%d parts, want %d", got, want)
	}
	var orphans int
	if err := db.read.QueryRow(`SELECT count(*) FROM blobs WHERE id NOT IN (SELECT blob_id FROM parts)`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Errorf("%d blobs without a part", orphans)
	}
}
