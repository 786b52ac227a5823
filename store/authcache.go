package store

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// authCache spares a mail program that connects for every message (Outlook
// does, with AUTH each time) an argon2id hash per connection: after a
// successful login, it remembers, for a few minutes, an HMAC of the password
// under a key made at random when the process started, next to the stored
// hash it was checked against. A later login with the same password and the
// same stored hash succeeds without hashing; a changed password (a new
// stored hash), a wrong password or an expired entry goes the slow way.
// Failures are never remembered, so guessing stays as slow as before. The
// HMAC key never leaves memory; neither does the cache.
//
// It is not one of the limits that nodes share (strikes.go,
// authfailures.go), and it stays in memory on purpose: it limits nothing
// (a miss only costs the hash that a cacheless gateway would compute), it
// spares the CPU of the node that did the check, and what it keeps is
// close to a password: an HMAC under a key that exists only in this
// process, whose guesses could be checked offline by whoever had both.
// Written to the database, the key would have to go there too, or be
// shared among nodes, and a stolen database would confirm guesses at
// HMAC speed instead of argon2id's. With several nodes, a mail program
// whose connections land on different nodes is hashed once on each.
type authCache struct {
	once    sync.Once
	key     []byte
	mu      sync.Mutex
	entries map[string]authEntry // by address
}

type authEntry struct {
	mac     []byte
	encoded string // the stored hash the password was checked against
	expires time.Time
}

const (
	authCacheTTL = 5 * time.Minute
	authCacheMax = 10000
)

func (c *authCache) mac(password string) []byte {
	c.once.Do(func() {
		c.key = make([]byte, 32)
		rand.Read(c.key)
	})
	h := hmac.New(sha256.New, c.key)
	h.Write([]byte(password))
	return h.Sum(nil)
}

// hit reports whether address logged in with password, checked against
// encoded, within the last ttl.
func (c *authCache) hit(address, encoded, password string, now time.Time) bool {
	c.mu.Lock()
	e, ok := c.entries[address]
	c.mu.Unlock()
	return ok && now.Before(e.expires) && e.encoded == encoded && hmac.Equal(e.mac, c.mac(password))
}

// remember records a successful login.
func (c *authCache) remember(address, encoded, password string, now time.Time) {
	mac := c.mac(password)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= authCacheMax {
		c.entries = make(map[string]authEntry)
	}
	c.entries[address] = authEntry{mac: mac, encoded: encoded, expires: now.Add(authCacheTTL)}
}
