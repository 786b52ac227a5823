//go:build linux && cgo

package store

/*
#include <malloc.h>

// fixMmapThreshold fixes glibc's threshold above which malloc maps memory
// of its own for a block (and unmaps it at free) at n bytes. Elsewhere
// (musl) it does nothing.
static void fixMmapThreshold(int n) {
#ifdef M_MMAP_THRESHOLD
	mallopt(M_MMAP_THRESHOLD, n);
#endif
}
*/
import "C"

import "sync"

// SQLite copies every blob it is given (mattn/go-sqlite3 binds with
// SQLITE_TRANSIENT): a chunk row's 256 KiB of ciphertext is a malloc of
// 256 KiB, on whichever thread the write runs. glibc maps a block that
// large on its own and unmaps it at free, but the first such free raises
// its threshold to the block's size (its "dynamic mmap threshold"), so
// every later chunk is carved from the arena of its thread instead, and
// an arena keeps what is freed inside it. A 50 MiB attachment so left
// 4 MiB more resident in SQLite's arenas than before it came. Fixing the
// threshold at glibc's own default keeps each chunk's copy in a mapping
// of its own, returned at once, at the cost of a map and an unmap per
// 256 KiB written.
const mmapThreshold = 128 << 10

var mallocOnce sync.Once

// tuneMalloc sets the C allocator for the blobs SQLite copies, once per
// process.
func tuneMalloc() {
	mallocOnce.Do(func() { C.fixMmapThreshold(mmapThreshold) })
}
