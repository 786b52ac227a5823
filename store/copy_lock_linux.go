package store

import (
	"os"
	"syscall"
)

// sqliteHolder returns the id of a process that holds the SQLite database
// at path open, or 0 when none does. Every connection to a database in
// WAL mode keeps a shared lock on its file (in the range SQLite locks,
// from its pending byte at 1 GiB on) for as long as it is open; a
// gateway keeps its writer connection open while it runs. F_GETLK asks
// the kernel who holds a lock there, without taking one. A process's own
// locks never conflict with it: the caller's connections do not count.
func sqliteHolder(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	const pendingByte = 0x40000000
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: pendingByte, Len: 512}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return 0, err
	}
	if lk.Type == syscall.F_UNLCK {
		return 0, nil
	}
	return int(lk.Pid), nil
}
