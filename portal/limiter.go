package portal

import (
	"sync"
	"time"
)

// maxLimiterKeys bounds the memory of a limiter: past it, forgotten
// entries are swept, and then the longest quiet one is dropped.
const maxLimiterKeys = 10_000

// limiter counts strikes (wrong passwords, reset requests) per key in a
// sliding window; max strikes within the window lock the key for one
// window. It lives in memory: a restart forgets it, which costs an
// attacker a restart they cannot cause.
type limiter struct {
	max     int
	window  time.Duration
	maxKeys int

	mu   sync.Mutex
	keys map[string]*strikes
}

type strikes struct {
	times []time.Time // strikes within the window, oldest first
	until time.Time   // locked until then
	last  time.Time
}

func newLimiter(max int, window time.Duration, maxKeys int) *limiter {
	return &limiter{max: max, window: window, maxKeys: maxKeys, keys: make(map[string]*strikes)}
}

// lockedUntil returns the time until which any of keys is locked, or the
// zero time when none is.
func (l *limiter) lockedUntil(now time.Time, keys ...string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var until time.Time
	for _, k := range keys {
		if s := l.keys[k]; s != nil && s.until.After(now) && s.until.After(until) {
			until = s.until
		}
	}
	return until
}

// strike records one strike against each key and returns the time until
// which they are now locked (zero when none is), and how many strikes are
// left before the first of them locks.
func (l *limiter) strike(now time.Time, keys ...string) (until time.Time, left int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	left = l.max
	for _, k := range keys {
		s := l.keys[k]
		if s == nil {
			l.makeRoom(now)
			s = &strikes{}
			l.keys[k] = s
		}
		s.last = now
		s.times = append(s.recent(now, l.window), now)
		if len(s.times) >= l.max {
			s.until, s.times = now.Add(l.window), nil
		}
		if s.until.After(until) {
			until = s.until
		}
		left = min(left, l.max-len(s.times))
	}
	if !until.After(now) {
		until = time.Time{}
	}
	return until, left
}

// allow counts one request against each key and reports whether it may
// proceed: false while any key is locked.
func (l *limiter) allow(now time.Time, keys ...string) bool {
	if !l.lockedUntil(now, keys...).IsZero() {
		return false
	}
	l.strike(now, keys...)
	return true
}

// forget clears a key, after a success.
func (l *limiter) forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, key)
}

// recent returns the strikes still within the window.
func (s *strikes) recent(now time.Time, window time.Duration) []time.Time {
	i := 0
	for i < len(s.times) && now.Sub(s.times[i]) >= window {
		i++
	}
	return s.times[i:]
}

// makeRoom keeps the map under maxKeys: it sweeps keys with nothing left
// to remember, then drops the one quiet for longest, sparing locked keys
// while it can, so that a flood of fresh keys cannot lift a lockout.
func (l *limiter) makeRoom(now time.Time) {
	if len(l.keys) < l.maxKeys {
		return
	}
	for k, s := range l.keys {
		if !s.until.After(now) && len(s.recent(now, l.window)) == 0 {
			delete(l.keys, k)
		}
	}
	for len(l.keys) >= l.maxKeys {
		var victim string
		var victimLocked bool
		var t time.Time
		for k, s := range l.keys {
			locked := s.until.After(now)
			if victim == "" || (victimLocked && !locked) || (locked == victimLocked && s.last.Before(t)) {
				victim, victimLocked, t = k, locked, s.last
			}
		}
		delete(l.keys, victim)
	}
}
