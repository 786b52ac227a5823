package store

import (
	"crypto/sha256"
	"sync"

	"filippo.io/age"
)

// fileKeys keeps the file keys of the parts opened most recently, so that
// a page that shows the same message again does not run the part's age
// header through age.DecryptHeader again. The unwrapping itself is one
// AEAD operation (datakey.go), but DecryptHeader parses the header into
// stanzas through a 4 KiB buffered reader and writes it out again for its
// MAC: 16 KB of garbage for each body a conversation page shows, a third
// of what the page allocated (issue 15).
//
// A key is used only for the header it came from: each entry holds the
// SHA-256 of the header bytes, as read from the part's blob row, and a
// header that differs (rekeyed, rewritten, another blob at the same id)
// is opened by age again. The header is read from the database at every
// open, so a part whose row is deleted does not open from here either:
// crypto-shredding is unchanged, since the only wrapped copy of the key is
// still the one in the row. Keys live in the process's memory, which
// holds the data keys that unwrap every part anyway, and never reach the
// disk. The map is bounded; when it is full an entry goes at random.
type fileKeys struct {
	mu sync.Mutex
	m  map[partPlace]fileKeyEntry
	// limit, when positive, replaces maxFileKeys (for tests).
	limit int
}

type fileKeyEntry struct {
	header [sha256.Size]byte
	key    []byte
}

// maxFileKeys bounds fileKeys: 4,096 keys of 16 bytes, about 300 KiB with
// the map's overhead.
const maxFileKeys = 4096

// fileKey returns the file key of the part at place whose age header is
// header, unwrapped with id when it is not kept.
func (c *fileKeys) fileKey(place partPlace, header []byte, id age.Identity) ([]byte, error) {
	sum := sha256.Sum256(header)
	c.mu.Lock()
	e, ok := c.m[place]
	c.mu.Unlock()
	if ok && e.header == sum {
		return e.key, nil
	}
	key, err := age.DecryptHeader(header, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[partPlace]fileKeyEntry)
	}
	limit := maxFileKeys
	if c.limit > 0 {
		limit = c.limit
	}
	if _, ok := c.m[place]; !ok && len(c.m) >= limit {
		for p := range c.m {
			delete(c.m, p)
			break
		}
	}
	c.m[place] = fileKeyEntry{header: sum, key: key}
	return key, nil
}
