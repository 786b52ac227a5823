package smtp

import (
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
)

// loginServer is the server side of the LOGIN mechanism, which Outlook and
// Thunderbird use and go-sasl only implements as a client. It is the
// obsolete draft-murchison-sasl-login: the server asks for the username and
// then the password, each base64-encoded by the SMTP layer.
type loginServer struct {
	authenticate func(username, password string) error
	step         int
	username     string
}

var _ sasl.Server = (*loginServer)(nil)

// maxCredential bounds a username or password, so that a client cannot make
// the gateway hash megabytes.
const maxCredential = 1024

func (s *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.step {
	case 0:
		s.step++
		// An initial response ("AUTH LOGIN dXNlcg==") carries the username.
		if response != nil {
			if len(response) > maxCredential {
				return nil, true, errCredentialTooLong
			}
			s.username = string(response)
			s.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		if len(response) > maxCredential {
			return nil, true, errCredentialTooLong
		}
		s.username = string(response)
		s.step++
		return []byte("Password:"), false, nil
	case 2:
		s.step++
		if len(response) > maxCredential {
			return nil, true, errCredentialTooLong
		}
		return nil, true, s.authenticate(s.username, string(response))
	}
	return nil, true, errors.New("smtp: unexpected LOGIN response")
}

var errCredentialTooLong = errors.New("smtp: credential too long")

// authThrottle slows down clients that fail to authenticate. Each failure
// from an address within the window adds a second to the delay before the
// next failure is answered, up to maxDelay; a success clears the address.
// Slowing the answer (rather than locking the account) makes guessing
// expensive without letting an attacker lock a clinician out.
type authThrottle struct {
	window   time.Duration
	maxDelay time.Duration
	maxAddrs int // bound on tracked addresses; the oldest are dropped

	mu       sync.Mutex
	failures map[netip.Addr]*failureRecord
}

type failureRecord struct {
	count int
	last  time.Time
}

func newAuthThrottle() *authThrottle {
	return &authThrottle{
		window:   15 * time.Minute,
		maxDelay: 10 * time.Second,
		maxAddrs: 10000,
		failures: make(map[netip.Addr]*failureRecord),
	}
}

// fail records a failure from addr and returns how long to wait before
// answering it.
func (t *authThrottle) fail(addr netip.Addr, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.failures[addr]
	if r == nil || now.Sub(r.last) > t.window {
		if len(t.failures) >= t.maxAddrs {
			t.prune(now)
		}
		r = &failureRecord{}
		t.failures[addr] = r
	}
	r.count++
	r.last = now
	return min(time.Duration(r.count)*time.Second, t.maxDelay)
}

// succeed forgets addr's failures.
func (t *authThrottle) succeed(addr netip.Addr) {
	t.mu.Lock()
	delete(t.failures, addr)
	t.mu.Unlock()
}

// prune drops expired records, and if that is not enough, all of them: the
// map stays bounded under a flood of addresses.
func (t *authThrottle) prune(now time.Time) {
	for a, r := range t.failures {
		if now.Sub(r.last) > t.window {
			delete(t.failures, a)
		}
	}
	if len(t.failures) >= t.maxAddrs {
		clear(t.failures)
	}
}
