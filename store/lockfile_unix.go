//go:build unix

package store

import (
	"errors"
	"os"
	"syscall"
)

// lockFile creates the file at path if need be (readable by its owner
// only) and takes an exclusive flock on it without waiting: errLocked when
// another open file holds it, in this process or another. Closing the
// file releases it; so does the death of the process.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
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
