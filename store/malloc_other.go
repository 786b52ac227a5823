//go:build !linux || !cgo

package store

// tuneMalloc does nothing where the C allocator is not glibc's
// (malloc_glibc.go).
func tuneMalloc() {}
