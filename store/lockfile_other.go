//go:build !unix

package store

import "os"

// lockFile opens the file at path; without flock, it locks nothing.
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
}
