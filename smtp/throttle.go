package smtp

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd/store"
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
// perAccount guesses per maxDelay on each node once the delay has grown,
// and one address at most perAddr: parallel connections no longer
// multiply the rate.
//
// Slowing, not locking: nothing here refuses a correct password for good,
// and a success is answered at once whatever the counts. A guesser who
// keeps an account's checks busy can make its logins wait (454, which mail
// programs retry), but the client that last logged in to the account from
// the same address has a check of its own beyond the account's cap, for a
// day after that success. And a login the store remembers, a password
// checked for the account in the last minutes (store/authcache.go), goes
// past both caps from any address (session.authenticate): it costs no
// hash, and no guess passes it, so that a mail server relaying over twenty
// connections at once, each with AUTH, is never told to wait.
//
// A success clears the failures of its own (address, account) pair from
// both counts: a clinician who mistyped once is not slowed at the next
// mistake. It does not clear the failures that other addresses made
// against the account, nor those that the address made against other
// accounts: a guesser who holds an account of their own cannot reset the
// counts by logging in to it.
//
// The counts (failures, and each pair's last success) are kept in the
// store (store/authfailures.go), which every node of a cluster shares:
// the delay a guesser meets is the same on every node and survives a
// restart, and a clinician's client is known on every node. What stays
// in this node's memory is the checks in progress: each is an argon2id
// hash on this node's CPU, and the caps bound this machine's work, as the
// store's own bound on concurrent hashes does. A cluster of N nodes thus
// runs at most N times perAccount checks of one account at once, each
// slowed by the cluster's count. The maps hold only checks in progress
// (an entry goes when its last check ends), so they are bounded by the
// listener's connections; the store bounds its rows itself.
type authThrottle struct {
	st         throttleStore
	rule       store.AuthRule // how long failures count, and a success lasts
	maxDelay   time.Duration
	perAddr    int // checks in progress at once from one address
	perAccount int // checks in progress at once for one account

	mu       sync.Mutex
	addrs    map[netip.Prefix]int // checks in progress on this node
	accounts map[string]int
	pairs    map[throttlePair]int
}

// throttleStore keeps the throttle's counts where every node sees them.
// *store.DB implements it.
type throttleStore interface {
	// AuthFailed counts a failed login by client for account, and
	// returns the failures now counted against each.
	AuthFailed(ctx context.Context, r store.AuthRule, client, account string) (byClient, byAccount int, err error)
	// AuthSucceeded takes the pair's own failures off every count and
	// records the success.
	AuthSucceeded(ctx context.Context, r store.AuthRule, client, account string) error
	// AuthKnown reports whether client logged in to account within
	// r.Known.
	AuthKnown(ctx context.Context, r store.AuthRule, client, account string) (bool, error)
}

var _ throttleStore = (*store.DB)(nil)

type throttlePair struct {
	addr    netip.Prefix
	account string
}

func newAuthThrottle(st throttleStore) *authThrottle {
	return &authThrottle{
		st:         st,
		rule:       store.AuthRule{Window: 15 * time.Minute, Known: 24 * time.Hour},
		maxDelay:   10 * time.Second,
		perAddr:    10,
		perAccount: 3,
		addrs:      make(map[netip.Prefix]int),
		accounts:   make(map[string]int),
		pairs:      make(map[throttlePair]int),
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
	t       *authThrottle
	addr    netip.Prefix
	account string
	ended   bool // guarded by t.mu
}

// begin starts a password check by addr for account, or returns nil when
// the address or the account has too many in progress on this node (and
// the error, when the store could not say whether the client is known).
// The caller must end the attempt.
func (t *authThrottle) begin(ctx context.Context, addr netip.Addr, account string) (*authAttempt, error) {
	a := &authAttempt{t: t, addr: clientKey(addr), account: strings.ToLower(strings.TrimSpace(account))}
	pair := throttlePair{a.addr, a.account}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.addrs[a.addr] >= t.perAddr {
		return nil, nil
	}
	if t.accounts[a.account] >= t.perAccount {
		// Only the account's known client may go past its cap, with one
		// check at a time. The store is asked only then: most logins
		// never reach the cap.
		if t.pairs[pair] > 0 {
			return nil, nil
		}
		t.mu.Unlock()
		known, err := t.st.AuthKnown(ctx, t.rule, a.addr.String(), a.account)
		t.mu.Lock()
		if err != nil || !known || t.addrs[a.addr] >= t.perAddr || t.pairs[pair] > 0 {
			return nil, err
		}
	}
	t.addrs[a.addr]++
	t.accounts[a.account]++
	t.pairs[pair]++
	return a, nil
}

// fail counts the failed check in the store and returns how long to wait
// before answering: a second for each failure counted against the
// address or the account (the larger) and each other check of theirs in
// progress here, up to maxDelay. The attempt stays in progress until end.
// When the failure cannot be counted, the wait is maxDelay.
func (a *authAttempt) fail(ctx context.Context) (time.Duration, error) {
	byAddr, byAccount, err := a.t.st.AuthFailed(ctx, a.t.rule, a.addr.String(), a.account)
	if err != nil {
		return a.t.maxDelay, err
	}
	a.t.mu.Lock()
	defer a.t.mu.Unlock()
	// This failure, the earlier ones, and the other checks in progress.
	n := max(byAddr+a.t.addrs[a.addr]-1, byAccount+a.t.accounts[a.account]-1)
	return min(time.Duration(n)*time.Second, a.t.maxDelay), nil
}

// succeed records in the store that the check succeeded. The attempt
// stays in progress until end.
func (a *authAttempt) succeed(ctx context.Context) error {
	return a.t.st.AuthSucceeded(ctx, a.t.rule, a.addr.String(), a.account)
}

// end ends the attempt; later calls do nothing.
func (a *authAttempt) end() {
	t := a.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if a.ended {
		return
	}
	a.ended = true
	release(t.addrs, a.addr)
	release(t.accounts, a.account)
	release(t.pairs, throttlePair{a.addr, a.account})
}

// release ends one check in progress of k, and forgets k when it was the
// last.
func release[K comparable](m map[K]int, k K) {
	if m[k] <= 1 {
		delete(m, k)
		return
	}
	m[k]--
}
