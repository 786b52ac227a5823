package store

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// Running out of space. A commit that fails because the disk is full is
// not a bug: the store marks it ESTORAGE (storageFull), SMTP answers 452
// and the sender keeps the message. It also matters to whoever routes work
// to this gateway: while commits fail for lack of space, readiness
// (ProbeWrite) says so. The store remembers when a commit last failed that
// way; the next commit that succeeds clears it.

// resumeRoom is the free space that ProbeWrite asks for, while commits are
// failing for lack of space, before it commits its own probe (which would
// clear the failure). Its one-row write can fit in space SQLite already
// holds while a message cannot, so it proves nothing on a disk that is
// still full; with this much free, a commit is worth trying again.
const resumeRoom = 8 << 20

// spaceState is whether the last commit failed for lack of space.
type spaceState struct {
	mu   sync.Mutex
	at   time.Time // when a commit last failed for lack of space
	full bool
	// room, when not zero, replaces resumeRoom (tests).
	room int64
	// dir is the directory of SQLite's file, whose free space decides
	// when a commit may clear full; empty on PostgreSQL, whose disk the
	// gateway cannot see (there any commit that succeeds clears it).
	dir string
}

// roomy reports whether the file system that holds the database has room
// enough to take mail again, and how much it has free.
func (s *spaceState) roomy() (free int64, ok bool) {
	if s.dir == "" {
		return 0, true
	}
	room := int64(resumeRoom)
	if s.room != 0 {
		room = s.room
	}
	free, err := freeBytes(s.dir)
	return free, err == nil && free >= room
}

// note records the outcome of a commit (err nil: it succeeded). Errors
// that are not about space change nothing: a constraint violation says
// nothing of the disk.
func (s *spaceState) note(err error, now time.Time) {
	switch {
	case err == nil:
		s.mu.Lock()
		if s.full {
			if _, ok := s.roomy(); ok {
				s.full = false
			}
		}
		s.mu.Unlock()
	case errors.Is(err, errStorageFull):
		s.mu.Lock()
		s.full, s.at = true, now
		s.mu.Unlock()
	}
}

// StorageFull reports whether the last commit failed because the disk (or
// SQLite's file) was full, and when it did. The next commit that succeeds
// clears it, unless it was a small commit that fit while the file system
// still has less than resumeRoom free (SQLite: the outbox recording an
// outcome in a page SQLite already held must not make a gateway that
// cannot take a message look ready).
func (db *DB) StorageFull() (at time.Time, full bool) {
	db.space.mu.Lock()
	defer db.space.mu.Unlock()
	return db.space.at, db.space.full
}

// checkRoom is ProbeWrite's first step while commits fail for lack of
// space: an error, unless the file system now has resumeRoom free.
func (db *DB) checkRoom() error {
	at, full := db.StorageFull()
	if !full {
		return nil
	}
	db.space.mu.Lock()
	free, ok := db.space.roomy()
	db.space.mu.Unlock()
	if ok {
		return nil
	}
	return fmt.Errorf("store: commits fail for lack of space (last at %s, %d MiB free): %w",
		at.UTC().Format(time.RFC3339), free>>20, errStorageFull)
}

// freeBytes returns the space available to this process on the file
// system that holds dir.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
