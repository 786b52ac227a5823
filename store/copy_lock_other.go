//go:build !linux

package store

// sqliteHolder cannot tell, off Linux, whether another process holds the
// database open: store copy relies on the operator having stopped the
// gateway, and its final check.
func sqliteHolder(path string) (int, error) { return 0, nil }
