package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ).
const clockTick = 10 * time.Millisecond

// procStat returns a process's parent and its CPU time: its own user and
// system time, and that of its children that it has waited for.
func procStat(pid int) (ppid int, cpu time.Duration, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// The command name, in parentheses, may hold spaces: fields start
	// after its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime..cstime 14..17.
	if len(f) < 15 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	var ticks int64
	for _, k := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseInt(f[k], 10, 64)
		ticks += v
	}
	return ppid, time.Duration(ticks) * clockTick, true
}

// procCPU is the CPU time of one process (with its reaped children).
func procCPU(pid int) time.Duration {
	_, cpu, _ := procStat(pid)
	return cpu
}

// treeCPU is the CPU time of a process and all its descendants. A child
// that exits is counted in its parent's time once reaped, so the sum does
// not lose the work of short-lived processes (Postfix's smtpd, cleanup).
func treeCPU(root int) time.Duration {
	parent := map[int]int{}
	cpu := map[int]time.Duration{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if pp, c, ok := procStat(pid); ok {
			parent[pid], cpu[pid] = pp, c
		}
	}
	var total time.Duration
	for pid, c := range cpu {
		for p := pid; p > 1; p = parent[p] {
			if p == root {
				total += c
				break
			}
		}
	}
	return total
}

// procStatus reads a field of /proc/PID/status in KiB (VmHWM, VmRSS).
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// resetPeakRSS resets a process's VmHWM to its current RSS, so that one
// long-running server can be measured run after run.
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("listen: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitListen waits until addr accepts connections.
func waitListen(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// output runs a command and returns its trimmed output, or "" on failure.
func output(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// machine describes the machine the figures were measured on.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:"), "%d", &kb)
		mem = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
	}
	debian := output("cat", "/etc/debian_version")
	return fmt.Sprintf("%d cores (%s), %s, Debian %s, Linux %s", numCPU(), cpu, mem, debian, output("uname", "-r"))
}

func numCPU() int { return runtime.NumCPU() }

// mustMkdir makes a directory that the postfix user can also enter.
func mustMkdir(path ...string) string {
	p := filepath.Join(path...)
	if err := os.MkdirAll(p, 0o755); err != nil {
		fatalf("%v", err)
	}
	return p
}
