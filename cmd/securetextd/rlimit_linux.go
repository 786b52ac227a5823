package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// raiseFileLimit raises the soft limit on open files (RLIMIT_NOFILE) to
// the hard limit and returns the limit now in force. Every connection is
// a file descriptor: with the soft limit of many systems (1024), a flood
// of idle connections on one listener would leave none for the others,
// for SQLite or for the outbox. The Go runtime raises it too, but only to
// one below the hard limit, and not at all when the hard limit is
// unlimited, which Linux refuses as a soft limit for files: then the
// kernel's ceiling (fs.nr_open) is used.
//
// Only `serve` calls it: a library has no business changing the limits of
// the process it runs in.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	want := lim.Max
	if want == rlimInfinity {
		if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
			if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
				want = n
			}
		}
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	lim.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return want, nil
}

// rlimInfinity is Linux's RLIM_INFINITY ("unlimited").
const rlimInfinity = ^uint64(0)
