package smtp

import (
	"net/netip"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// authThrottle slows down password guessing on the submission listener.
//
// A failed AUTH is answered only after a delay that grows by a second with
// each failure counted, within window, against the client (its address:
// an IPv4 address or an IPv6 /64, see clientKey) and against the account
// it named, up to maxDelay: the larger count decides. A password check in
// progress counts as a failure until it succeeds, and it stays in progress
// through the delay of its failure. An address may have perAddr checks in
// progress at once, an account perAccount; past either, AUTH is answered
// 454 4.7.0 at once, without a check. So however many connections a
// guesser opens, from however many addresses, one account sees at most
// perAccount guesses per maxDelay once the delay has grown, and one
// address at most perAddr: parallel connections no longer multiply the
// rate.
//
// Slowing, not locking: nothing here refuses a correct password for good,
// and a success is answered at once whatever the counts. A guesser who
// keeps an account's checks busy can make its logins wait (454, which mail
// programs retry), but the client that last logged in to the account from
// the same address has a check of its own beyond the account's cap, for a
// day after that success.
//
// A success clears the failures of its own (address, account) pair from
// both counts: a clinician who mistyped once is not slowed at the next
// mistake. It does not clear the failures that other addresses made
// against the account, nor those that the address made against other
// accounts: a guesser who holds an account of their own cannot reset the
// counts by logging in to it.
//
// Each map is bounded by maxRecords: when one is full, records with
// nothing left to remember go first, then the one with the fewest
// failures; a record with a check in progress is never dropped.
type authThrottle struct {
	window     time.Duration // a failure counts this long after the last one
	known      time.Duration // how long a success gives its pair a check of its own
	maxDelay   time.Duration
	perAddr    int // checks in progress at once from one address
	perAccount int // checks in progress at once for one account
	maxRecords int // bound on each map

	mu       sync.Mutex
	addrs    map[netip.Prefix]*throttleRecord
	accounts map[string]*throttleRecord
	pairs    map[throttlePair]*throttleRecord
}

// throttleRecord is what the throttle knows of an address, an account, or
// an address's use of an account.
type throttleRecord struct {
	failures int
	inFlight int       // checks in progress, their delays included
	last     time.Time // the last failure
	success  time.Time // pairs only: the last success
}

type throttlePair struct {
	addr    netip.Prefix
	account string
}

func newAuthThrottle() *authThrottle {
	return &authThrottle{
		window:     15 * time.Minute,
		known:      24 * time.Hour,
		maxDelay:   10 * time.Second,
		perAddr:    10,
		perAccount: 3,
		maxRecords: 10000,
		addrs:      make(map[netip.Prefix]*throttleRecord),
		accounts:   make(map[string]*throttleRecord),
		pairs:      make(map[throttlePair]*throttleRecord),
	}
}

// errAuthBusy answers AUTH when the address or the account already has as
// many password checks in progress as it may.
var errAuthBusy = &gosmtp.SMTPError{
	Code:         454,
	EnhancedCode: gosmtp.EnhancedCode{4, 7, 0},
	Message:      "Too many login attempts in progress for this account or from your address; try again in a minute",
}

// authAttempt is one password check in progress.
type authAttempt struct {
	t                   *authThrottle
	addr, account, pair *throttleRecord
	ended               bool
}

// begin starts a password check by addr for account, or returns nil when
// the address or the account has too many in progress. The caller must
// end the attempt (succeed ends it).
func (t *authThrottle) begin(addr netip.Addr, account string, now time.Time) *authAttempt {
	key := clientKey(addr)
	account = strings.ToLower(strings.TrimSpace(account))
	t.mu.Lock()
	defer t.mu.Unlock()
	a := &authAttempt{
		t:       t,
		addr:    throttleGet(t, t.addrs, key, now),
		account: throttleGet(t, t.accounts, account, now),
		pair:    throttleGet(t, t.pairs, throttlePair{key, account}, now),
	}
	known := !a.pair.success.IsZero() && now.Sub(a.pair.success) <= t.known
	if a.addr.inFlight >= t.perAddr {
		return nil
	}
	if a.account.inFlight >= t.perAccount && !(known && a.pair.inFlight == 0) {
		return nil
	}
	for _, r := range a.records() {
		r.inFlight++
	}
	return a
}

func (a *authAttempt) records() [3]*throttleRecord {
	return [3]*throttleRecord{a.addr, a.account, a.pair}
}

// fail records that the check failed and returns how long to wait before
// answering. The attempt stays in progress until end.
func (a *authAttempt) fail(now time.Time) time.Duration {
	a.t.mu.Lock()
	defer a.t.mu.Unlock()
	for _, r := range a.records() {
		r.failures++
		r.last = now
	}
	// This failure, the earlier ones, and the other checks in progress.
	n := max(a.addr.failures+a.addr.inFlight-1, a.account.failures+a.account.inFlight-1)
	return min(time.Duration(n)*time.Second, a.t.maxDelay)
}

// succeed records that the check succeeded, and ends the attempt.
func (a *authAttempt) succeed(now time.Time) {
	a.t.mu.Lock()
	defer a.t.mu.Unlock()
	f := a.pair.failures
	a.addr.failures = max(0, a.addr.failures-f)
	a.account.failures = max(0, a.account.failures-f)
	a.pair.failures = 0
	a.pair.success = now
	a.endLocked()
}

// end ends the attempt; later calls do nothing.
func (a *authAttempt) end() {
	a.t.mu.Lock()
	defer a.t.mu.Unlock()
	a.endLocked()
}

func (a *authAttempt) endLocked() {
	if a.ended {
		return
	}
	a.ended = true
	for _, r := range a.records() {
		r.inFlight--
	}
}

// throttleGet returns the record of k in m, made if need be, with failures
// past the window forgotten. It keeps m within maxRecords.
func throttleGet[K comparable](t *authThrottle, m map[K]*throttleRecord, k K, now time.Time) *throttleRecord {
	r := m[k]
	if r == nil {
		if len(m) >= t.maxRecords {
			throttleEvict(t, m, now)
		}
		r = &throttleRecord{}
		m[k] = r
	}
	if r.failures > 0 && now.Sub(r.last) > t.window {
		r.failures = 0
	}
	return r
}

// throttleEvict drops the records of m that remember nothing any more, and
// when that frees no room, the one with the fewest failures (of those,
// the oldest), keeping pairs that logged in over those that only failed.
// Records with a check in progress stay.
func throttleEvict[K comparable](t *authThrottle, m map[K]*throttleRecord, now time.Time) {
	var victim K
	var v *throttleRecord
	weight := func(r *throttleRecord) int {
		if !r.success.IsZero() && now.Sub(r.success) <= t.known {
			return r.failures + 1<<30
		}
		return r.failures
	}
	for k, r := range m {
		if r.inFlight > 0 {
			continue
		}
		forgotten := (r.failures == 0 || now.Sub(r.last) > t.window) &&
			(r.success.IsZero() || now.Sub(r.success) > t.known)
		if forgotten {
			delete(m, k)
			continue
		}
		if v == nil || weight(r) < weight(v) || (weight(r) == weight(v) && r.last.Before(v.last)) {
			victim, v = k, r
		}
	}
	if len(m) >= t.maxRecords && v != nil {
		delete(m, victim)
	}
}
