package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// profile is where the gateway's CPU time went during one load, as perf
// sampled it.
type profile struct {
	name   string
	figure string // the load's rate and CPU cost, as measured meanwhile
	// syncs is fsync and fdatasync calls per message (or request); -1
	// when they could not be counted.
	syncs   float64
	samples int
	groups  []profileLine // by kind of work
	top     []profileLine // by symbol
}

type profileLine struct {
	percent float64
	symbol  string
}

// profileGateway samples the gateway with perf (cpu-clock, 999 Hz) during
// each load, once the sessions are going, and sums the samples by kind of
// work.
func profileGateway(work string, gw *peer) []profile {
	var out []profile
	for _, c := range []struct {
		name    string
		size    int
		perConn bool
	}{
		{"1 KiB, connection reused", 1 << 10, false},
		{"1 KiB, one per connection", 1 << 10, true},
		{"1 MiB, connection reused", 1 << 20, false},
	} {
		var res loadResult
		syncs := -1
		p := perfDuring(work, gw.root, func() {
			syncs = syncsDuring(gw.root, func() {
				res = gw.run(load{conns: 20, perConn: c.perConn, msg: message(c.size), dur: 3 * time.Second, from: benchUser, to: patientTo})
			})
		})
		p.name = c.name
		p.syncs = perEach(syncs, int(res.msgs))
		p.figure = fmt.Sprintf("%s msg/s, %s ms CPU and %s fsyncs per message", num(res.rate()), num(res.cpuPerMsg()), num(p.syncs))
		logf("profile %s: %s, %d samples", c.name, p.figure, p.samples)
		out = append(out, p)
		time.Sleep(300 * time.Millisecond)
	}
	return out
}

// perfDuring runs load and samples pid for 2 s of it, starting 0.7 s in.
func perfDuring(work string, pid int, load func()) profile {
	done := make(chan struct{})
	go func() { load(); close(done) }()
	time.Sleep(700 * time.Millisecond)
	data := filepath.Join(work, fmt.Sprintf("perf-%d.data", time.Now().UnixNano()))
	defer os.Remove(data)
	rec := exec.Command("perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-p", strconv.Itoa(pid), "-o", data, "--", "sleep", "2")
	if out, err := rec.CombinedOutput(); err != nil {
		logf("perf record: %v: %s", err, out)
	}
	<-done
	var p profile
	p.top, p.groups, p.samples = perfReport(data)
	return p
}

// perfReport reads perf's report by symbol: the hottest symbols, and the
// shares of each kind of work.
func perfReport(data string) (top, groups []profileLine, samples int) {
	out, err := exec.Command("perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,symbol").Output()
	if err != nil {
		logf("perf report: %v", err)
		return nil, nil, 0
	}
	sum := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "# Samples: "); ok {
			if f := strings.Fields(v); len(f) > 0 {
				samples = parseCount(f[0])
			}
			continue
		}
		// "  12.34%  securetextd  [.] symbol" or "… [kernel.kallsyms]  [k] symbol"
		f := strings.Fields(line)
		if strings.HasPrefix(line, "#") || len(f) < 4 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		dso, sym := f[1], strings.TrimSuffix(strings.Join(f[3:], " "), " - -")
		switch {
		case f[2] == "[k]":
			sym = "kernel: " + sym
		case strings.HasPrefix(dso, "libc"):
			sym = "libc: " + sym
		case !strings.Contains(sym, "."):
			// C in the gateway's binary: SQLite, which cgo links in.
			sym = "sqlite: " + sym
		}
		if len(top) < 10 {
			top = append(top, profileLine{pct, sym})
		}
		sum[kindOf(sym)] += pct
	}
	for k, v := range sum {
		groups = append(groups, profileLine{v, k})
	}
	slices.SortFunc(groups, func(a, b profileLine) int {
		if a.percent > b.percent {
			return -1
		}
		if a.percent < b.percent {
			return 1
		}
		return strings.Compare(a.symbol, b.symbol)
	})
	return top, groups, samples
}

// kinds sorts symbols into the kinds of work the report names. The first
// matching prefix or substring wins.
var kinds = []struct{ kind, match string }{
	{"argon2id (checking AUTH passwords)", "golang.org/x/crypto/argon2"},
	{"crypto (age: ML-KEM-768, X25519, ChaCha20-Poly1305; SHA-256)", "crypto/"},
	{"crypto (age: ML-KEM-768, X25519, ChaCha20-Poly1305; SHA-256)", "filippo.io/age"},
	{"crypto (age: ML-KEM-768, X25519, ChaCha20-Poly1305; SHA-256)", "golang.org/x/crypto/"},
	{"SQLite", "sqlite: "},
	{"SQLite", "_cgo"},
	{"SQLite", "database/sql"},
	{"SQLite", "mattn/go-sqlite3"},
	{"SMTP reading (go-smtp, the line-ending guard, bufio)", "emersion/go-smtp"},
	{"SMTP reading (go-smtp, the line-ending guard, bufio)", "securetextd/smtp.(*crlfReader)"},
	{"SMTP reading (go-smtp, the line-ending guard, bufio)", "bufio."},
	{"SMTP reading (go-smtp, the line-ending guard, bufio)", "net/textproto"},
	{"MIME walk and decoding (go-message, base64, quoted-printable)", "emersion/go-message"},
	{"MIME walk and decoding (go-message, base64, quoted-printable)", "encoding/base64"},
	{"MIME walk and decoding (go-message, base64, quoted-printable)", "mime"},
	{"MIME walk and decoding (go-message, base64, quoted-printable)", "securetextd/smtp."},
	{"portal (net/http, html/template, bluemonday)", "net/http"},
	{"portal (net/http, html/template, bluemonday)", "html/template"},
	{"portal (net/http, html/template, bluemonday)", "text/template"},
	{"portal (net/http, html/template, bluemonday)", "bluemonday"},
	{"portal (net/http, html/template, bluemonday)", "securetextd/portal"},
	{"Go runtime (allocation, GC, scheduler)", "runtime."},
	{"Go runtime (allocation, GC, scheduler)", "internal/runtime"},
	{"Go runtime (allocation, GC, scheduler)", "gcWriteBarrier"},
	{"kernel (network, files, fsync, scheduling)", "kernel: "},
	{"libc (memory copies, allocation)", "libc: "},
}

func kindOf(sym string) string {
	for _, k := range kinds {
		if strings.HasPrefix(sym, k.match) || strings.Contains(sym, k.match) {
			return k.kind
		}
	}
	return "other"
}

// parseCount reads perf's sample counts: "12K", "3M", "845".
func parseCount(s string) int {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1e3, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1e6, strings.TrimSuffix(s, "M")
	}
	v, _ := strconv.ParseFloat(s, 64)
	return int(v * mult)
}

// syncsDuring counts the fsync and fdatasync calls that pid makes while fn
// runs (perf stat on the syscall tracepoints: no slowdown), or -1.
func syncsDuring(pid int, fn func()) int {
	cmd := exec.Command("perf", "stat", "-x,", "-e", "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync", "-p", strconv.Itoa(pid))
	var out bytes.Buffer
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		fn()
		return -1
	}
	time.Sleep(200 * time.Millisecond) // attached
	fn()
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	n, found := 0, 0
	for line := range strings.Lines(out.String()) {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) < 3 || !strings.HasPrefix(f[2], "syscalls:") {
			continue
		}
		v, err := strconv.Atoi(f[0])
		if err != nil {
			return -1
		}
		n += v
		found++
	}
	if found != 2 {
		return -1
	}
	return n
}

// perEach is n per item, or NaN when n is unknown.
func perEach(n, items int) float64 {
	if n < 0 || items == 0 {
		return math.NaN()
	}
	return float64(n) / float64(items)
}
