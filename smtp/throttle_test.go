package smtp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// dialFrom connects a go-smtp client to addr from the loopback address
// local (127.0.0.0/8 is all loopback on Linux), and says EHLO.
func dialFrom(t *testing.T, local, addr string) *gosmtp.Client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := gosmtp.NewClient(conn)
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

// heldServer is a submission server (AUTH without TLS, on loopback) whose
// password checks are counted, and whose failures wait, before they are
// answered, until the test releases them: what a guesser can do within
// one delay, however long it is, is then there to count.
type heldServer struct {
	*testServer
	checks  atomic.Int64
	delays  chan time.Duration // each failure's delay, as it starts
	release chan struct{}
}

func newHeldServer(t *testing.T) *heldServer { return newHeldServerOn(t, nil) }

// newHeldServerOn is newHeldServer over db (nil: a store of its own), which
// holds testAccount.
func newHeldServerOn(t *testing.T, db *store.DB) *heldServer {
	h := &heldServer{delays: make(chan time.Duration, 10000), release: make(chan struct{})}
	insecure := func(c *Config) { c.AllowInsecureAuth = true }
	h.testServer = newTestServerOnOrWith(t, db, insecure, func(s *Server) {
		check := s.checkPassword
		s.checkPassword = func(ctx context.Context, user, pass string) (*securetextd.Sender, error) {
			h.checks.Add(1)
			return check(ctx, user, pass)
		}
		s.sleep = func(ctx context.Context, d time.Duration) {
			h.delays <- d
			select {
			case <-h.release:
			case <-ctx.Done():
			}
		}
	})
	t.Cleanup(h.unhold)
	return h
}

// newTestServerOnOrWith is newTestServerOn over db, or newTestServerWith
// when db is nil.
func newTestServerOnOrWith(t *testing.T, db *store.DB, mutate func(*Config), setup func(*Server)) *testServer {
	if db == nil {
		return newTestServerWith(t, mutate, setup)
	}
	return newTestServerOn(t, db, mutate, setup)
}

func (h *heldServer) unhold() {
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

// TestAuthGuessingBounded sends 200 parallel real SMTP clients guessing
// passwords, and counts the password checks they get while the delays of
// the first failures run: perAccount for one account (from one address or
// from 200), perAddr for 200 accounts from one address. Without the caps,
// each client would get its check (200 guesses per delay).
func TestAuthGuessingBounded(t *testing.T) {
	const clients = 200
	th := newAuthThrottle(nil)
	tests := []struct {
		name    string
		from    func(i int) string
		account func(i int) string
		want    int
	}{
		{"one account from one address", func(int) string { return "127.0.0.1" },
			func(int) string { return testAccount }, th.perAccount},
		{"one account from many addresses", func(i int) string { return fmt.Sprintf("127.0.1.%d", i+1) },
			func(int) string { return testAccount }, th.perAccount},
		{"many accounts from one address", func(int) string { return "127.0.0.1" },
			func(i int) string { return fmt.Sprintf("user%d@clinic.example", i) }, th.perAddr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHeldServer(t)
			results := make(chan error, clients)
			for i := range clients {
				c := dialFrom(t, tt.from(i), h.addr)
				go func() {
					results <- c.Auth(sasl.NewPlainClient("", tt.account(i), fmt.Sprintf("guess %d", i)))
				}()
			}
			// Every client is answered at once (454) or waits out the
			// delay of its failure.
			busy, held := 0, 0
			for busy+held < clients {
				select {
				case err := <-results:
					wantCode(t, err, 454, "Too many login attempts in progress")
					busy++
				case <-h.delays:
					held++
				}
			}
			if n := h.checks.Load(); n != int64(tt.want) {
				t.Errorf("%d password checks by %d parallel clients within one delay, want %d", n, clients, tt.want)
			}
			h.unhold()
			for range held {
				wantCode(t, <-results, 535, "")
			}
		})
	}
}

// failOnce makes one failed login on a new connection from local, and
// returns the delay its answer waited.
func (h *heldServer) failOnce(t *testing.T, local, account string) time.Duration {
	t.Helper()
	h.unhold()
	c := dialFrom(t, local, h.addr)
	wantCode(t, c.Auth(sasl.NewPlainClient("", account, "wrong password")), 535, "")
	return <-h.delays
}

func (h *heldServer) login(t *testing.T, local string) {
	t.Helper()
	c := dialFrom(t, local, h.addr)
	if err := c.Auth(sasl.NewPlainClient("", testAccount, testPassword)); err != nil {
		t.Fatalf("login from %s: %v", local, err)
	}
}

// TestAuthFailuresPerAccount checks that failures count against the
// account as well as the address, and that a success clears only the
// failures of its own address against that account.
func TestAuthFailuresPerAccount(t *testing.T) {
	t.Run("a guesser's failures slow the account from everywhere", func(t *testing.T) {
		h := newHeldServer(t)
		for i := range 4 {
			if d := h.failOnce(t, "127.0.0.1", testAccount); d != time.Duration(i+1)*time.Second {
				t.Fatalf("failure %d from the guesser waited %v", i+1, d)
			}
		}
		// A new address guessing the same account starts where the
		// account is, not from nothing.
		if d := h.failOnce(t, "127.0.0.3", testAccount); d != 5*time.Second {
			t.Errorf("failure from another address waited %v, want 5s", d)
		}
		// The clinician logs in from elsewhere: the guesser's count stands.
		h.login(t, "127.0.0.2")
		if d := h.failOnce(t, "127.0.0.1", testAccount); d != 6*time.Second {
			t.Errorf("the guesser's next failure after a success elsewhere waited %v, want 6s", d)
		}
	})
	t.Run("a clinician who mistyped once is not slowed", func(t *testing.T) {
		h := newHeldServer(t)
		if d := h.failOnce(t, "127.0.0.2", testAccount); d != time.Second {
			t.Fatalf("first mistake waited %v", d)
		}
		h.login(t, "127.0.0.2")
		if d := h.failOnce(t, "127.0.0.2", testAccount); d != time.Second {
			t.Errorf("a mistake after logging in waited %v, want 1s", d)
		}
	})
	t.Run("a busy account still lets in its own client", func(t *testing.T) {
		db := newSharedDB(t).open()
		var later atomic.Int64
		db.Now = func() time.Time { return time.Now().Add(time.Duration(later.Load())) }
		h := newHeldServerOn(t, db)
		h.login(t, "127.0.0.2") // the clinician's usual client
		// Past the time a login is remembered (store/authcache.go): the
		// stranger's correct password must be checked, and is not.
		later.Store(int64(10 * time.Minute))
		h.checks.Store(0)
		// The guesser fills the account's checks and holds them.
		for range h.srv.throttle.perAccount {
			c := dialFrom(t, "127.0.0.1", h.addr)
			go c.Auth(sasl.NewPlainClient("", testAccount, "guess"))
			<-h.delays
		}
		stranger := dialFrom(t, "127.0.0.4", h.addr)
		wantCode(t, stranger.Auth(sasl.NewPlainClient("", testAccount, testPassword)), 454, "Too many login attempts")
		h.login(t, "127.0.0.2")
	})
}

// TestThrottleBounded floods the throttle with addresses and accounts:
// this node keeps only the checks in progress (none, once they end), and
// the account under attack keeps its count in the store until its window
// has passed. (The store's own bound: store.TestAuthFailuresBounded.)
func TestThrottleBounded(t *testing.T) {
	db := newSharedDB(t).open()
	now := time.Now()
	db.Now = func() time.Time { return now }
	th := newAuthThrottle(db)
	ctx := t.Context()
	try := func(addr netip.Addr, account string) time.Duration {
		t.Helper()
		a, err := th.begin(ctx, addr, account)
		if a == nil || err != nil {
			t.Fatalf("begin %v %s: %v, %v", addr, account, a, err)
		}
		defer a.end()
		d, err := a.fail(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	victim := netip.MustParseAddr("192.0.2.1")
	for range 20 {
		try(victim, testAccount)
	}
	for i := range 1000 {
		try(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), fmt.Sprintf("user%d@clinic.example", i))
	}
	if n, m, p := len(th.addrs), len(th.accounts), len(th.pairs); n+m+p != 0 {
		t.Errorf("tracking %d addresses, %d accounts, %d pairs with no check in progress", n, m, p)
	}
	if d := try(netip.MustParseAddr("198.51.100.7"), testAccount); d != th.maxDelay {
		t.Errorf("delay on the attacked account = %v, want the cap %v", d, th.maxDelay)
	}
	now = now.Add(time.Hour)
	if d := try(netip.MustParseAddr("198.51.100.7"), testAccount); d != time.Second {
		t.Errorf("delay after the window = %v, want 1s", d)
	}
}

// TestClientKey checks how clients are counted: IPv4 by address, IPv6
// by /64.
func TestClientKey(t *testing.T) {
	same := [][2]string{
		{"192.0.2.1", "::ffff:192.0.2.1"},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
	}
	for _, p := range same {
		if a, b := clientKey(netip.MustParseAddr(p[0])), clientKey(netip.MustParseAddr(p[1])); a != b {
			t.Errorf("%s and %s counted apart: %v, %v", p[0], p[1], a, b)
		}
	}
	differ := [][2]string{
		{"192.0.2.1", "192.0.2.2"},
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
	}
	for _, p := range differ {
		if a, b := clientKey(netip.MustParseAddr(p[0])), clientKey(netip.MustParseAddr(p[1])); a == b {
			t.Errorf("%s and %s counted together: %v", p[0], p[1], a)
		}
	}
}

// TestAuthRememberedPastCap: with the account's checks all in progress
// (three guessers waiting out their delays), a correct password that has
// not logged in lately gets 454, as a guess does; one that logged in a
// moment ago, from another address, logs in at once. A mail server
// relaying over many connections at once, each with AUTH, is so never
// told to wait for its own logins, and nothing is hashed for them.
func TestAuthRememberedPastCap(t *testing.T) {
	h := newHeldServer(t)
	fill := func() []chan error {
		var held []chan error
		for i := range h.testServer.srv.throttle.perAccount {
			c := dialFrom(t, fmt.Sprintf("127.0.3.%d", i+1), h.addr)
			done := make(chan error, 1)
			go func() { done <- c.Auth(sasl.NewPlainClient("", testAccount, "a guess")) }()
			<-h.delays // its failure waits: a check in progress
			held = append(held, done)
		}
		return held
	}
	drain := func(held []chan error) {
		h.unhold()
		for _, done := range held {
			wantCode(t, <-done, 535, "")
		}
		h.release = make(chan struct{})
	}

	held := fill()
	c := dialFrom(t, "127.0.4.1", h.addr)
	wantCode(t, c.Auth(sasl.NewPlainClient("", testAccount, testPassword)), 454, "Too many login attempts in progress")
	drain(held)

	h.login(t, "127.0.4.2") // checked, and remembered
	checks := h.checks.Load()
	held = fill()
	c = dialFrom(t, "127.0.4.3", h.addr)
	if err := c.Auth(sasl.NewPlainClient("", testAccount, testPassword)); err != nil {
		t.Errorf("a login remembered, past the account's cap: %v", err)
	}
	c = dialFrom(t, "127.0.4.4", h.addr)
	wantCode(t, c.Auth(sasl.NewPlainClient("", testAccount, "another guess")), 454, "Too many login attempts in progress")
	if n := h.checks.Load() - checks; n != int64(len(held)) {
		t.Errorf("%d password checks, want %d (the guessers' only)", n, len(held))
	}
	drain(held)
}
