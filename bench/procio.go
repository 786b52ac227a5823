package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// What a server writes per message (issue 15): the kernel's I/O counters of
// its processes, the fsyncs they call, and, for servers on SQLite, the WAL
// frames their commits append.

// ioCount is a process's (or a tree's) counters from /proc/PID/io.
type ioCount struct {
	wchar      float64 // bytes passed to write syscalls (files, sockets, pipes)
	syscw      float64 // write syscalls
	writeBytes float64 // bytes the process caused to be sent to the disk
}

func (a ioCount) sub(b ioCount) ioCount {
	return ioCount{a.wchar - b.wchar, a.syscw - b.syscw, a.writeBytes - b.writeBytes}
}

func (a ioCount) add(b ioCount) ioCount {
	return ioCount{a.wchar + b.wchar, a.syscw + b.syscw, a.writeBytes + b.writeBytes}
}

// procIO reads /proc/PID/io: the whole thread group, with the children
// the process has reaped (the kernel adds a child's counters to its
// parent's when the parent waits for it, as it does CPU time).
func procIO(pid int) (ioCount, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return ioCount{}, false
	}
	var c ioCount
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
		switch k {
		case "wchar":
			c.wchar = n
		case "syscw":
			c.syscw = n
		case "write_bytes":
			c.writeBytes = n
		}
	}
	return c, true
}

// processTree returns root and its live descendants.
func processTree(root int) []int {
	parent := map[int]int{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if pp, _, ok := procStat(pid); ok {
			parent[pid] = pp
		}
	}
	var out []int
	for pid := range parent {
		for p := pid; p > 1; p = parent[p] {
			if p == root {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// treeIO sums the counters of root's live tree; what its reaped children
// wrote is in their parents' counters, so a run's difference counts the
// work of short-lived processes too (Postfix's smtpd and cleanup).
func treeIO(root int) ioCount {
	var sum ioCount
	for _, pid := range processTree(root) {
		if c, ok := procIO(pid); ok {
			sum = sum.add(c)
		}
	}
	return sum
}

// monotonic is CLOCK_MONOTONIC, the clock perf stamps its events with
// (perf record -k CLOCK_MONOTONIC).
func monotonic() time.Duration {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1 /* CLOCK_MONOTONIC */, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

// syncTrace records, machine-wide, every fsync and fdatasync call and
// every fork while a run goes (perf record on the syscall and scheduler
// tracepoints: no slowdown of the traced processes), so that the calls of
// a server's whole process tree are counted, children forked during the
// run included, and nothing else's.
type syncTrace struct {
	cmd  *exec.Cmd
	data string
}

// startSyncTrace starts perf record in dir; nil when perf is missing or
// refuses.
func startSyncTrace(dir string) *syncTrace {
	data := filepath.Join(dir, fmt.Sprintf("syncs-%d.data", time.Now().UnixNano()))
	cmd := exec.Command("perf", "record", "-q", "-a", "-k", "CLOCK_MONOTONIC", "-m", "16M",
		"-e", "syscalls:sys_enter_fsync", "-e", "syscalls:sys_enter_fdatasync", "-e", "sched:sched_process_fork",
		"-o", data)
	if err := cmd.Start(); err != nil {
		return nil
	}
	time.Sleep(300 * time.Millisecond) // attached to every CPU
	return &syncTrace{cmd: cmd, data: data}
}

// stop ends the recording and counts the fsync and fdatasync calls of the
// trees of roots (as they were at the start, with every process forked
// from them since) between from and to (monotonic); -1 when unknown.
func (t *syncTrace) stop(from, to time.Duration, roots [][]int) []int {
	counts := make([]int, len(roots))
	for i := range counts {
		counts[i] = -1
	}
	if t == nil {
		return counts
	}
	t.cmd.Process.Signal(os.Interrupt)
	t.cmd.Wait()
	defer os.Remove(t.data)
	out, err := exec.Command("perf", "script", "-i", t.data, "--show-lost-events", "-F", "pid,time,event,trace").Output()
	if err != nil || bytes.Contains(out, []byte("LOST")) {
		// A count with events lost (a busy machine filling perf's
		// buffers) would be too low: none is better.
		logf("perf script: %v, lost events: %v", err, bytes.Contains(out, []byte("LOST")))
		return counts
	}
	trees := make([]map[int]bool, len(roots))
	for i, pids := range roots {
		trees[i] = map[int]bool{}
		for _, p := range pids {
			trees[i][p] = true
		}
		counts[i] = 0
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// "  1234  38192.112764: sched:sched_process_fork: comm=x pid=1234 child_comm=x child_pid=1240"
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		secs, err := strconv.ParseFloat(strings.TrimSuffix(f[1], ":"), 64)
		if err != nil {
			continue
		}
		at := time.Duration(secs * 1e9)
		switch event := strings.TrimSuffix(f[2], ":"); event {
		case "sched:sched_process_fork":
			child := 0
			for _, kv := range f[3:] {
				if v, ok := strings.CutPrefix(kv, "child_pid="); ok {
					child, _ = strconv.Atoi(v)
				}
			}
			for _, tree := range trees {
				if tree[pid] {
					tree[child] = true
				}
			}
		case "syscalls:sys_enter_fsync", "syscalls:sys_enter_fdatasync":
			if at < from || at > to {
				continue
			}
			for i, tree := range trees {
				if tree[pid] {
					counts[i]++
				}
			}
		}
	}
	return counts
}

// walCounter follows a SQLite database's WAL through its wal-index (the
// -shm file) while a run goes, and counts the frames appended: the
// header's mxFrame grows with each commit and starts again from zero, with
// new salts, when a writer restarts the WAL after a complete checkpoint,
// which happens only after a checkpoint has copied every frame into the
// database. It polls every 2 ms: a poll every quarter millisecond, tried
// first, cost the machine's two cores enough to slow every server measured
// beside it. A restart between two polls loses the frames appended since
// the last one, at most 2 ms of a WAL that restarts every 4,000 pages:
// under 1% at these rates.
type walCounter struct {
	stopc  chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	frames int64
	page   int64
}

// startWALCounter polls the wal-index of the database at dbPath; nil when
// it has none.
func startWALCounter(dbPath string) *walCounter {
	f, err := os.Open(dbPath + "-shm")
	if err != nil {
		return nil
	}
	w := &walCounter{stopc: make(chan struct{}), done: make(chan struct{})}
	var hdr [48]byte
	var salt uint64
	restarted := false
	read := func() (mx uint32, page uint16, ok bool) {
		// The header is in the machine's byte order: szPage at offset 14,
		// mxFrame at 16, the WAL's salts (new at each restart) at 32.
		if _, err := f.ReadAt(hdr[:], 0); err != nil {
			return 0, 0, false
		}
		s := binary.NativeEndian.Uint64(hdr[32:])
		restarted = s != salt
		salt = s
		return binary.NativeEndian.Uint32(hdr[16:]), binary.NativeEndian.Uint16(hdr[14:]), true
	}
	last, page, _ := read()
	go func() {
		defer close(w.done)
		defer f.Close()
		var total int64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stopc:
				mx, _, ok := read()
				if ok && !restarted && mx >= last {
					total += int64(mx - last)
				} else if ok {
					total += int64(mx)
				}
				w.mu.Lock()
				w.frames, w.page = total, int64(page)
				if w.page == 1 {
					w.page = 65536 // SQLite's encoding of 64 KiB pages
				}
				w.mu.Unlock()
				return
			case <-tick.C:
			}
			mx, p, ok := read()
			if !ok {
				continue
			}
			if p != 0 {
				page = p
			}
			if !restarted && mx >= last {
				total += int64(mx - last)
			} else {
				total += int64(mx) // restarted: these are the new WAL's
			}
			last = mx
		}
	}()
	return w
}

// stop ends the poll and returns the frames appended and the page size;
// -1 frames when unknown.
func (w *walCounter) stop() (frames, page int64) {
	if w == nil {
		return -1, 0
	}
	close(w.stopc)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.frames, w.page
}

// commitWrites is what store's TestSmallCommitWrites measured: the WAL
// frames small messages' commits appended, by table and index.
type commitWrites struct {
	Messages int            `json:"messages"`
	Group    int            `json:"group"`
	Frames   int            `json:"frames"`
	Page     int            `json:"page"`
	Wchar    int64          `json:"wchar"`
	Owners   map[string]int `json:"owners"`
	// Savepoints: the groups ran with a savepoint per commit (one of
	// each failed, as the group commit does only then).
	Savepoints bool `json:"savepoints"`
	// Phones: commits in the shape of the ingest runs (1,000 phones,
	// each message joining its conversation), on pages of Page bytes.
	Phones bool `json:"phones"`
}

// probeCommitWrites runs the store's probe of what a small message's
// commit writes (go test, SQLite, in the work directory's temporary
// files) and reads what it found; nil when it failed.
func probeCommitWrites(root, work string) []commitWrites {
	out := filepath.Join(work, "commit-writes.json")
	cmd := exec.Command("go", "test", "-count=1", "-run", "^TestSmallCommitWrites$", "./store")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SECURETEXTD_COMMIT_WRITES="+out, "SECURETEXTD_TEST_ENGINE=", "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		logf("commit writes probe: %v\n%s", err, b)
		return nil
	}
	b, err := os.ReadFile(out)
	if err != nil {
		logf("commit writes probe: %v", err)
		return nil
	}
	var cw []commitWrites
	if err := json.Unmarshal(b, &cw); err != nil {
		logf("commit writes probe: %v", err)
		return nil
	}
	return cw
}
