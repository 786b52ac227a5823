//go:build linux && cgo

package store

/*
#include <malloc.h>

// fixHeap fixes glibc's threshold above which malloc maps memory of its
// own for a block (and unmaps it at free) at mmap bytes, and the free
// memory an arena keeps at its top before giving it back to the kernel at
// trim bytes. Elsewhere (musl) it does nothing.
static void fixHeap(int mmap, int trim) {
#if defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
	mallopt(M_MMAP_THRESHOLD, mmap);
	mallopt(M_TRIM_THRESHOLD, trim);
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

// Fixing the mmap threshold also fixes the trim threshold, which the
// dynamic rule would have raised with it, at glibc's default of 128 KiB:
// whenever the free memory at the top of an arena passed 128 KiB, free
// gave it back to the kernel (madvise, or brk for the main arena), and
// the next statements faulted it in again. SQLite's page caches and
// statements go up and down by more than that within one portal page or
// one commit, so that was 0.6 madvise calls per conversation page and 0.3
// per small message, each a TLB shootdown on every core and page faults
// after it: 3-4% of the page's profile in the kernel alone, and the page
// served 25-50% more requests a second without it (issue 15, measured
// with GLIBC_TUNABLES before this was written). 1 MiB stopped the calls in
// BenchmarkConversationPage; 2 MiB leaves room, and is at most 2 MiB kept
// per arena, all of it memory SQLite has used.
const trimThreshold = 2 << 20

var mallocOnce sync.Once

// tuneMalloc sets the C allocator for the blobs SQLite copies and for the
// churn of its page caches, once per process.
func tuneMalloc() {
	mallocOnce.Do(func() { C.fixHeap(mmapThreshold, trimThreshold) })
}
