//go:build unix

package store

import (
	"errors"
	"os"
	"syscall"
)

// lockFile creates the file at path if need be and takes an exclusive
// flock on it without waiting: errLocked when another open file holds it,
// in this process or another. Closing the file releases it; so does the
// death of the process. The file stays empty; it is opened read-only and
// made readable by all (in the store's own 0700 directory), so that a
// lock file an operator's command made as root still locks for the
// daemon's user.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, err
	}
	return f, nil
}
