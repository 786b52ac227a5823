// Command bench measures securetextd against real mail servers on the same
// machine, in the same run, and writes BENCHMARKS.md.
//
//	go run ./bench                  # everything, about 10 minutes on 2 cores
//	go run ./bench -rounds 1 -dur 1s -out -   # a quick look, to stdout
//
// It builds the gateway, installs what it compares against when missing
// (Debian's postfix, sasl2-bin and wrk with apt-get; Mailpit with go
// install into bench/.tools, once), starts every server on loopback under
// one work directory, and runs each measurement in rounds that interleave
// the servers (A B C A B C …), because a shared machine is noisy: the
// medians, and the ratios taken within one run, are what to compare.
//
// It must run as root: Postfix's master starts as root, apt-get installs,
// and /proc/PID/clear_refs resets a process's peak memory between rounds.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/securetextd/securetextd/internal/pgtest"
)

// cleanups run at exit, last first: they stop the servers.
var cleanups []func()

func runCleanups() {
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	runCleanups()
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// options are the command line.
type options struct {
	rounds  int
	dur     time.Duration
	out     string
	keep    bool
	phases  map[string]bool
	command string
	// ingest and peers, when set, keep only the ingest measurements
	// and the servers whose names they match (a quick look at one row).
	ingest, peers *regexp.Regexp
	// pgStatements logs, after each run of the PostgreSQL gateway in the
	// ingest and engines phases, its statements: calls and time per
	// message.
	pgStatements bool
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "discard":
			runDiscard(os.Args[2])
			return
		case "ceiling":
			runCeiling(os.Args[2], os.Args[3])
			return
		}
	}
	var o options
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of each measurement (the median is reported)")
	flag.DurationVar(&o.dur, "dur", 2500*time.Millisecond, "length of each SMTP load run")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", `file to write the report to ("-": standard output)`)
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, databases, queues)")
	phases := flag.String("phases", "ingest,writes,large,profile,latency,portal,postgres", "measurements to run (postgres: the PostgreSQL engine beside SQLite, in ingest and large; writes: the store's probe of what a small message's commit writes)")
	ingest := flag.String("ingest", "", `run only the ingest measurements whose names match this regexp ("^1 KiB")`)
	peers := flag.String("peers", "", `run the ingest measurements only against the servers whose names match this regexp ("^securetextd")`)
	flag.BoolVar(&o.pgStatements, "pgstatements", false, "log the PostgreSQL gateway's statements after each of its runs: calls and ms per message")
	flag.Parse()
	o.ingest, o.peers = mustRegexp("-ingest", *ingest), mustRegexp("-peers", *peers)
	o.phases = map[string]bool{}
	for _, p := range strings.Split(*phases, ",") {
		o.phases[strings.TrimSpace(p)] = true
	}
	o.command = "go run ./bench " + strings.Join(os.Args[1:], " ")
	if os.Geteuid() != 0 {
		fatalf("run as root: Postfix's master starts as root, and missing tools are installed with apt-get")
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fatalf("interrupted")
	}()

	root := moduleRoot()
	tools := ensureTools(root)
	work, err := os.MkdirTemp("", "securetextd-bench-")
	if err != nil {
		fatalf("%v", err)
	}
	os.Chmod(work, 0o755) // Postfix's processes run as the postfix user
	if !o.keep {
		cleanups = append([]func(){func() { os.RemoveAll(work) }}, cleanups...)
	} else {
		logf("work directory: %s", work)
	}
	start := time.Now()
	rep := &report{opts: o, started: start, tools: tools, machine: machine()}
	rep.bin = buildGateway(root, work)
	rep.fsync, rep.fsyncMiB = fsyncProbe(work, 4096), fsyncProbe(work, 1<<20)
	logf("fsync on this disk: median %.2f ms (4 KiB), %.2f ms (1 MiB)", rep.fsync.Seconds()*1000, rep.fsyncMiB.Seconds()*1000)

	if o.phases["writes"] {
		logf("probing what a small message's commit writes (go test ./store)")
		rep.commitWrites = probeCommitWrites(root, work)
	}
	vonage := startVonage()
	if o.phases["ingest"] || o.phases["large"] || o.phases["profile"] {
		runServers(rep, work, tools, vonage)
	}
	if o.phases["latency"] || o.phases["portal"] {
		runPortal(rep, work, vonage)
	}
	rep.elapsed = time.Since(start)
	text := rep.markdown()
	if o.out == "-" {
		os.Stdout.WriteString(text)
	} else {
		path := o.out
		if !filepath.IsAbs(path) {
			path = filepath.Join(root, path)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			fatalf("%v", err)
		}
		logf("wrote %s in %v", path, rep.elapsed.Round(time.Second))
	}
	runCleanups()
}

// runServers starts every SMTP server and runs the ingest, large-message
// and profile measurements against them.
func runServers(rep *report, work string, tools tools, vonage *fakeVonage) {
	o := rep.opts
	logf("starting smtp-sink, go-smtp discard, Postfix, Mailpit and securetextd")
	sink := startSink(work)
	discard := startDiscard(work)
	pf := startPostfix(work)
	mailpit := startMailpit(work, tools.mailpit)
	gw := startGateway(rep.bin, work, "securetextd", vonage.url, 1)
	peers := []*peer{sink, discard, pf.peer, mailpit, gw.peer}
	var pg *gateway
	var pgServer *pgtest.Server
	if o.phases["postgres"] {
		pg, pgServer = startPGGateway(rep.bin, work, vonage.url)
		peers = append(peers, pg.peer)
	}
	between := func(p *peer) {
		if p == pf.peer {
			pf.purge()
		}
		time.Sleep(300 * time.Millisecond) // let the disk settle
	}

	if o.phases["ingest"] {
		peers := matching(o.peers, peers)
		for _, p := range peers { // warm up: first connections, caches, the Go heap
			p.run(load{conns: 20, msg: message(1024), dur: time.Second, from: benchUser, to: patientTo})
			between(p)
		}
		for _, c := range ingestConfigs {
			if o.ingest != nil && !o.ingest.MatchString(c.name) {
				continue
			}
			msg := message(c.size)
			dur := o.dur
			if c.size >= 1<<20 {
				dur = max(dur, 3*time.Second)
			}
			rs := make(map[string][]loadResult)
			these := peers
			if c.bdat {
				these = chunking(peers)
			}
			for r := range o.rounds {
				for _, p := range these {
					statements := o.pgStatements && pg != nil && p == pg.peer
					if pg != nil && p == pg.peer {
						resetPGStats(pgServer)
					}
					res := p.run(load{conns: 20, perConn: c.perConn, bdat: c.bdat, msg: msg, dur: dur, from: benchUser, to: patientTo, io: true, work: work})
					if pg != nil && p == pg.peer {
						_, res.pgWAL = readPGStats(pgServer)
					}
					if statements {
						logPGStatements(pgServer, res.msgs)
					}
					logf("ingest %-28s round %d %-16s %7.0f msg/s %6.2f ms CPU/msg  errors %d %v",
						c.name, r+1, p.name, res.rate(), res.cpuPerMsg(), res.errs, res.err)
					logf("       %s", res.ioLine())
					rs[p.name] = append(rs[p.name], res)
					between(p)
				}
			}
			rep.ingest = append(rep.ingest, ingestResult{config: c, msgBytes: len(msg), peers: names(these), runs: rs})
		}
	}
	if pg != nil {
		rep.engines = runEngines(o.rounds, o.dur, gw, pg, pgServer, between, o.pgStatements)
	}
	if o.phases["profile"] {
		rep.profiles = profileGateway(work, gw.peer)
	}
	if o.phases["large"] {
		rep.large = runLarge(work, o.rounds, gw, []*peer{pf.peer, sink, discard, mailpit}, between)
		if pg != nil {
			rep.engines.large = runLargeGateway(work, o.rounds, pg, between)
		}
	}
	for _, p := range peers {
		p.stop()
	}
	// The PostgreSQL server too: left running, it may vacuum and analyze
	// the tables the ingest filled, and checkpoint their writes, a
	// minute or more later, while the latency and portal measurements
	// run on the same cores and disk. In two make bench runs of stop 23
	// with it running, the portal's third round stalled (p99 207 and
	// 211 ms, against 18-29 in the other rounds); none did in the next
	// run, with it stopped, nor in portal-only runs.
	if pgServer != nil {
		pgServer.Stop()
	}
}

// mustRegexp compiles a flag's regexp; "" is nil, which matches all.
func mustRegexp(flag, expr string) *regexp.Regexp {
	if expr == "" {
		return nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		fatalf("%s: %v", flag, err)
	}
	return re
}

// matching returns the servers whose names re matches (all for nil).
func matching(re *regexp.Regexp, ps []*peer) []*peer {
	var out []*peer
	for _, p := range ps {
		if re == nil || re.MatchString(p.name) {
			out = append(out, p)
		}
	}
	return out
}

// chunking returns the servers that offer BDAT.
func chunking(ps []*peer) []*peer {
	var out []*peer
	for _, p := range ps {
		c, err := dial(p, 0)
		if err != nil {
			fatalf("%s: %v", p.name, err)
		}
		if c.chunking {
			out = append(out, p)
		}
		c.quit()
	}
	return out
}

func names(ps []*peer) []string {
	var n []string
	for _, p := range ps {
		n = append(n, p.name)
	}
	return n
}

// patientTo names the recipient of the i-th message of a load: 1,000
// patients in turn, as a clinic's day spreads over its patients. Under
// conversations.continue's default ("per-sender") each patient's messages
// join one conversation, which grows by a message or a few per round, as a
// real one does; a load to a single phone would make one conversation of
// thousands of messages, whose row every commit updates.
func patientTo(i int) string { return fmt.Sprintf("212%07d@secure.text", 2000000+i%1000) }

// ingestConfig is one small-message measurement.
type ingestConfig struct {
	name    string
	size    int
	perConn bool
	bdat    bool // only the servers that offer CHUNKING
}

var ingestConfigs = []ingestConfig{
	{"1 KiB, connection reused", 1 << 10, false, false},
	{"1 KiB, one per connection", 1 << 10, true, false},
	{"64 KiB, connection reused", 64 << 10, false, false},
	{"64 KiB, one per connection", 64 << 10, true, false},
	{"1 MiB, connection reused", 1 << 20, false, false},
	{"1 MiB, connection reused, BDAT", 1 << 20, false, true},
}

// moduleRoot is the directory of the module the harness belongs to.
func moduleRoot() string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		fatalf("go list -m: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func buildGateway(root, work string) string {
	dir := mustMkdir(work, "bin")
	bin := filepath.Join(dir, "securetextd")
	logf("building securetextd")
	// securetextd-pwcheck beside it judges the bench account's password.
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/securetextd", "./cmd/securetextd-pwcheck")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// fsyncProbe measures what a durable write costs on the work directory's
// disk: the median of 100 writes of size bytes, each followed by
// fdatasync.
func fsyncProbe(dir string, size int) time.Duration {
	f, err := os.Create(filepath.Join(dir, "fsync-probe"))
	if err != nil {
		fatalf("%v", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, size)
	var ds []float64
	for i := range 100 {
		start := time.Now()
		if _, err := f.WriteAt(buf, int64(i*size)); err != nil {
			fatalf("fsync probe: %v", err)
		}
		syscall.Fdatasync(int(f.Fd()))
		ds = append(ds, float64(time.Since(start)))
	}
	return time.Duration(median(ds))
}
