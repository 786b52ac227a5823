package smtp

import (
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/securetextd/securetextd/internal/storetest"
	"github.com/securetextd/securetextd/store"
)

// Several gateway nodes on one database: each test "node" is a
// submission server over a *store.DB handle of its own on the same
// database (SQLite's file, or a PostgreSQL database when
// SECURETEXTD_TEST_ENGINE=postgres).

// sharedDB is one database, holding testAccount, that nodes open
// handles to.
type sharedDB struct{ *storetest.Shared }

func newSharedDB(t *testing.T) *sharedDB {
	t.Helper()
	s := &sharedDB{storetest.NewShared(t)}
	if err := s.open().CreateSender(t.Context(), testAccount, testPassword); err != nil {
		t.Fatal(err)
	}
	return s
}

// open opens a handle, closed at the end of the test if not before.
func (s *sharedDB) open() *store.DB { return s.Open() }

// node starts a submission server whose failures are held (see
// heldServer) over a new handle on s.
func (s *sharedDB) node() *heldServer {
	s.T.Helper()
	return newHeldServerOn(s.T, s.open())
}

// stop shuts the node down, as a restart would.
func (h *heldServer) stop() {
	h.unhold()
	h.srv.Close()
	h.db.Close()
}

// TestThrottleAcrossNodes: failed logins on one node slow the account on
// the other, and after a restart; a success on one node clears its own
// failures everywhere.
func TestThrottleAcrossNodes(t *testing.T) {
	shared := newSharedDB(t)
	a, b := shared.node(), shared.node()
	for i := range 3 {
		if d := a.failOnce(t, "127.0.0.1", testAccount); d != time.Duration(i+1)*time.Second {
			t.Fatalf("failure %d on node A waited %v", i+1, d)
		}
	}
	if d := b.failOnce(t, "127.0.0.3", testAccount); d != 4*time.Second {
		t.Errorf("a failure on node B, after three on node A, waited %v, want 4s", d)
	}
	// The clinician mistypes on node A and logs in on node B: that
	// mistake is cleared, the guesser's count stands.
	if d := a.failOnce(t, "127.0.0.2", testAccount); d != 5*time.Second {
		t.Errorf("the clinician's mistake waited %v, want 5s", d)
	}
	b.login(t, "127.0.0.2")
	a.stop()
	b.stop()
	c := shared.node()
	if d := c.failOnce(t, "127.0.0.1", testAccount); d != 5*time.Second {
		t.Errorf("the guesser's next failure after a restart waited %v, want 5s", d)
	}
}

// TestKnownClientAcrossNodes: the client that logged in to an account on
// one node has a check of its own on another node while a guesser keeps
// the account's checks there busy.
func TestKnownClientAcrossNodes(t *testing.T) {
	shared := newSharedDB(t)
	a, b := shared.node(), shared.node()
	a.login(t, "127.0.0.2") // the clinician's usual client, on node A
	for range b.srv.throttle.perAccount {
		c := dialFrom(t, "127.0.0.1", b.addr)
		go c.Auth(sasl.NewPlainClient("", testAccount, "guess"))
		<-b.delays
	}
	stranger := dialFrom(t, "127.0.0.4", b.addr)
	wantCode(t, stranger.Auth(sasl.NewPlainClient("", testAccount, testPassword)), 454, "Too many login attempts")
	b.login(t, "127.0.0.2")
}
