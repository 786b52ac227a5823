package main

import (
	_ "embed"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// report collects every figure of a run and renders BENCHMARKS.md.
type report struct {
	opts    options
	started time.Time
	elapsed time.Duration
	machine string
	tools   tools
	bin     string
	fsync   time.Duration // 4 KiB written and fdatasync'ed
	// fsyncMiB is 1 MiB written and fdatasync'ed.
	fsyncMiB time.Duration

	ingest   []ingestResult
	large    *largeResult
	profiles []profile // the SMTP loads, then the portal's page
	latency  *latencyResult
	portal   *portalResult
	engines  *engineResult // postgres.go
	// commitWrites is the store's probe of a small message's commit: one
	// alone, then in groups (procio.go).
	commitWrites []commitWrites
}

type ingestResult struct {
	config   ingestConfig
	msgBytes int
	peers    []string
	runs     map[string][]loadResult
}

const gatewayName = "securetextd"

// each returns f of each run, in order.
func each[R any](runs []R, f func(R) float64) []float64 {
	var v []float64
	for _, r := range runs {
		v = append(v, f(r))
	}
	return v
}

func (r ingestResult) rates(name string) []float64 { return each(r.runs[name], loadResult.rate) }

func (r ingestResult) cpus(name string) []float64 {
	return each(r.runs[name], loadResult.cpuPerMsg)
}

func (r ingestResult) errors(name string) (int64, error) {
	var n int64
	var first error
	for _, x := range r.runs[name] {
		n += x.errs
		if first == nil {
			first = x.err
		}
	}
	return n, first
}

// rate is the median rate of a server, in msg/s.
func (r ingestResult) rate(name string) float64 { return median(r.rates(name)) }

func (rep *report) find(name string) *ingestResult {
	for i := range rep.ingest {
		if rep.ingest[i].config.name == name {
			return &rep.ingest[i]
		}
	}
	return nil
}

func (rep *report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	t := rep.tools
	p("# Benchmarks\n\n")
	p("Measured on %s by `make bench` (`%s`, %v in all) on the project's shared machine:\n",
		rep.started.UTC().Format("2006-01-02"), strings.TrimSpace(rep.opts.command), rep.elapsed.Round(time.Second))
	p("%s.\n%s, SQLite %s (mattn/go-sqlite3), age v1.3.2 with a hybrid post-quantum key; Postfix %s,\n",
		rep.machine, t.goVersion, t.sqliteVersion, t.postfixVersion)
	p("Mailpit %s, wrk %s.\n", t.mailpitVersion, t.wrkVersion)
	p("The machine is shared and noisy, so every figure comes with peers measured in the same run,\n")
	p("interleaved round by round (A B C … A B C …): each figure is the median of %d rounds, every\n", rep.opts.rounds)
	p("round is listed, and the ratios within one run are what to compare across runs.\n\n")
	p("Reproduce with `make bench`, as root: it builds the gateway, installs what is missing (Debian's\n")
	p("postfix, sasl2-bin and wrk with apt-get; Mailpit with `go install` into `bench/.tools`, once),\n")
	p("starts every server on loopback in a temporary directory, and rewrites this file.\n")
	p("`go run ./bench -phases ingest -rounds 1 -dur 1s -out -` runs one part quickly.\n\n")

	rep.targets(&b)
	rep.peersSection(&b)
	rep.ingestSection(&b)
	rep.ioSection(&b)
	rep.commitWritesSection(&b)
	rep.largeSection(&b)
	rep.engineSection(&b)
	rep.portalSection(&b)
	rep.latencySection(&b)
	rep.profileSection(&b)
	b.WriteString(changes)
	p("## Micro-benchmarks\n\n")
	p("The parts, with `go test -bench` (not run by `make bench`):\n\n")
	p("```sh\n")
	p("go test -run '^$' -bench . -benchmem ./smtp ./store      # the MIME walk, one sealed commit\n")
	p("go test -run '^$' -bench IngestSmall -benchtime 3000x ./cmd/securetextd\n")
	p("go test -run '^$' -bench LargeMessage -benchtime 1x ./cmd/securetextd\n")
	p("```\n")
	return b.String()
}

// changes is what each change of issue 15 moved, measured side by side
// with the commit before it (scripts/ab.sh): kept by hand, since make
// bench measures the code as it is.
//
//go:embed changes.md
var changes string

// target is one line of the targets table.
type target struct {
	what     string
	measured string
	met      bool
	known    bool
}

func (rep *report) targetList() []target {
	var ts []target
	for _, name := range []string{"1 KiB, one per connection", "1 KiB, connection reused"} {
		in := rep.find(name)
		if in == nil {
			continue
		}
		gw := in.rate(gatewayName)
		for _, c := range []struct {
			peer string
			min  float64
		}{{"smtp-sink", 0.30}, {"Mailpit", 1.2}, {"Postfix queue", 3}} {
			r := gw / in.rate(c.peer)
			ts = append(ts, target{
				what:     fmt.Sprintf("1 KiB ingest, %s: ≥ %.2g× %s", strings.TrimPrefix(name, "1 KiB, "), c.min, c.peer),
				measured: fmt.Sprintf("%s (%s vs %s msg/s)", ratio(gw, in.rate(c.peer)), num(gw), num(in.rate(c.peer))),
				met:      r >= c.min, known: true,
			})
		}
	}
	for _, name := range []string{"1 KiB, one per connection", "1 KiB, connection reused"} {
		in := rep.find(name)
		if in == nil {
			continue
		}
		if w := medianOf(in.runs[gatewayName], func(r loadResult) float64 { return r.per(r.io.wchar) }); !math.IsNaN(w) {
			ts = append(ts, target{
				what:     fmt.Sprintf("1 KiB ingest, %s: ≤ 16 KiB passed to write system calls per message", strings.TrimPrefix(name, "1 KiB, ")),
				measured: fmt.Sprintf("%s KiB (WAL %s KiB of it)", num(w/1024), num(medianOf(in.runs[gatewayName], loadResult.walBytesPerMsg)/1024)),
				met:      w <= 16<<10, known: true,
			})
		}
	}
	if in := rep.find("1 MiB, connection reused"); in != nil {
		gw, sink := in.rate(gatewayName), in.rate("smtp-sink")
		ts = append(ts, target{
			what:     "1 MiB messages: ≥ 0.35× smtp-sink in MB/s",
			measured: fmt.Sprintf("%s (%s vs %s MB/s)", ratio(gw, sink), num(mbps(gw, in.msgBytes)), num(mbps(sink, in.msgBytes))),
			met:      gw/sink >= 0.35, known: true,
		})
	}
	for _, name := range []string{"1 KiB, one per connection", "1 KiB, connection reused"} {
		if in := rep.find(name); in != nil && len(in.rates(pgGatewayName)) > 0 {
			pg, sq := in.rate(pgGatewayName), in.rate(gatewayName)
			ts = append(ts, target{
				what:     fmt.Sprintf("1 KiB ingest, %s: one PostgreSQL node ≥ 0.7× the SQLite node", strings.TrimPrefix(name, "1 KiB, ")),
				measured: fmt.Sprintf("%s (%s vs %s msg/s)", ratio(pg, sq), num(pg), num(sq)),
				met:      pg/sq >= 0.7, known: true,
			})
		}
	}
	if l := rep.large; l != nil {
		peak := median(l.peaks(gatewayName)) / 1024
		ts = append(ts, target{what: "100 MiB message: peak RSS of the whole process < 48 MiB",
			measured: fmt.Sprintf("%s MiB", num(peak)), met: peak < 48, known: true})
		gw, pf := median(l.seconds(gatewayName)), median(l.seconds("Postfix queue"))
		ts = append(ts, target{what: "100 MiB message: wall time ≤ 2× Postfix's",
			measured: fmt.Sprintf("%s (%s s vs %s s)", ratio(gw, pf), num(gw), num(pf)), met: gw <= 2*pf, known: true})
	}
	if pr := rep.portal; pr != nil {
		name := pr.order[0]
		rps, p99 := median(pr.rps(name)), median(pr.p99(name))
		ts = append(ts, target{what: "portal conversation page, 50 connections: ≥ 5,000 req/s, p99 < 30 ms",
			measured: fmt.Sprintf("%s req/s, p99 %s ms", num(rps), num(p99)), met: rps >= 5000 && p99 < 30, known: true})
	}
	if l := rep.latency; l != nil {
		med := median(l.ms)
		ts = append(ts, target{what: "end-to-end latency, 250 to the text request: median < 20 ms",
			measured: fmt.Sprintf("%s ms (p99 %s ms)", num(med), num(percentile(l.ms, 99))), met: med < 20, known: true})
	}
	return ts
}

func (rep *report) targets(b *strings.Builder) {
	ts := rep.targetList()
	if len(ts) == 0 {
		return
	}
	fmt.Fprintf(b, "## Targets (issues 7 and 15)\n\n| target | measured | |\n|---|---|---|\n")
	for _, t := range ts {
		verdict := "**not met**"
		if t.met {
			verdict = "met"
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", t.what, t.measured, verdict)
	}
	b.WriteString("\nWhat bounds each gap is said under each measurement below.\n\n")
}

func (rep *report) peersSection(b *strings.Builder) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## The servers\n\n")
	p("All on loopback, each its own process, driven by the same Go driver (`bench/driver.go`): plain\n")
	p("SMTP in lockstep, as Postfix's `smtp-source` speaks it, plus `AUTH PLAIN` on every connection\n")
	p("(which smtp-source cannot do). CPU time is `utime + stime` from `/proc/PID/stat` of the\n")
	p("server's process (for Postfix, its master and every child, reaped ones included), read before\n")
	p("and after each run. The driver runs on the same two cores and takes its share.\n\n")
	p("- **smtp-sink** (Postfix's test server): reads and discards. The protocol ceiling.\n")
	p("- **go-smtp discard**: emersion/go-smtp, the library the gateway is built on, reading each\n")
	p("  message to its end into nothing (`go run ./bench discard ADDR`). The library's ceiling.\n")
	p("- **Postfix queue**: a private Postfix instance (`bench/peers.go`) that authenticates with\n")
	p("  Cyrus SASL (sasldb, `PLAIN`) and puts every message on its hold queue: each queue file is\n")
	p("  fsynced before the `250`, nothing is delivered. The durable peer.\n")
	p("- **Mailpit** (`--max 0 --smtp-auth-accept-any --smtp-auth-allow-insecure`): a Go SMTP server\n")
	p("  that parses each message and stores it into SQLite (modernc.org/sqlite), with its own\n")
	p("  durability settings.\n")
	p("- **securetextd**: the binary, TLS off (`allow_insecure_auth` on loopback), the full pipeline for\n")
	p("  every message: AUTH (argon2id), the MIME walk, each part sealed as an age file (its file key\n")
	p("  wrapped by a data key) and the manifest sealed too, the message committed durably\n")
	p("  (`synchronous=FULL`) with its conversation, link,\n")
	p("  outbox job and audit event, then the `250`. Texts go to a fake Vonage server at the default\n")
	p("  `sms.rate` of 1 per second.\n\n")
	p("A durable write on this disk (`pwrite` and `fdatasync`, median of 100) takes **%.2f ms** for\n", rep.fsync.Seconds()*1000)
	p("4 KiB and **%.2f ms** for 1 MiB: a single writer that commits once per message could do about\n", rep.fsyncMiB.Seconds()*1000)
	p("%s commits/s if nothing else took time.\n\n", num(1/rep.fsync.Seconds()))
}

func mbps(rate float64, size int) float64 { return rate * float64(size) / 1e6 }

func (rep *report) ingestSection(b *strings.Builder) {
	if len(rep.ingest) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## SMTP ingest\n\n")
	p("20 concurrent sessions for %v per run; \"connection reused\" sends message after message on\n", rep.opts.dur)
	p("each session (AUTH once), \"one per connection\" connects, says EHLO, authenticates, sends one\n")
	p("message and quits, every time. The messages are a short text (1 KiB) or a short text and one\n")
	p("base64 attachment (64 KiB, 1 MiB), the same bytes to every server, from one sender to 1,000\n")
	p("phones in turn; the gateways run with their defaults there, so each phone's messages join one\n")
	p("conversation (`conversations.continue = \"per-sender\"`).\n\n")
	for _, in := range rep.ingest {
		big := in.config.size >= 1<<20
		p("### %s\n\n", in.config.name)
		unit := "msg/s"
		if big {
			unit = "MB/s"
		}
		p("| server | %s (median) | rounds | CPU ms/msg | cores busy | securetextd is |\n|---|---|---|---|---|---|\n", unit)
		gw := in.rate(gatewayName)
		for _, name := range in.peers {
			rates := in.rates(name)
			f := num
			if big {
				f = func(v float64) string { return num(mbps(v, in.msgBytes)) }
			}
			cpu := median(in.cpus(name))
			cmp := ratio(gw, median(rates))
			if name == gatewayName {
				cmp = ""
			}
			errNote := ""
			if n, err := in.errors(name); n > 0 {
				errNote = fmt.Sprintf(" (%d errors: %v)", n, err)
			}
			p("| %s | %s%s | %s | %s | %s | %s |\n", name, f(median(rates)), errNote, list(rates, f), num(cpu),
				num(median(rates)*cpu/1000), cmp)
		}
		p("\n")
	}
	rep.ingestBounds(b)
}

func (l *largeResult) seconds(name string) []float64 {
	return each(l.runs[name], func(r largeRun) float64 { return r.seconds })
}

func (l *largeResult) peaks(name string) []float64 {
	return each(l.runs[name], func(r largeRun) float64 { return float64(r.peakKiB) })
}

func (l *largeResult) idles(name string) []float64 {
	return each(l.runs[name], func(r largeRun) float64 { return float64(r.idleKiB) })
}

func (rep *report) largeSection(b *strings.Builder) {
	l := rep.large
	if l == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## One 100 MiB message\n\n")
	p("One message of 100 MiB − 64 KiB (a short text and one base64 attachment of random bytes, read\n")
	p("from a file), over one connection with AUTH; the time is from `MAIL FROM` to the `250` after\n")
	p("the data. Peak RSS is `VmHWM` of the server's whole process (Go heap, SQLite's C memory and\n")
	p("the mapped binary included), reset through `/proc/PID/clear_refs` before each round; for\n")
	p("Postfix, whose work is spread over several processes, it is not read. The ceiling\n")
	p("(`go run ./bench ceiling`) reads the same bytes from the file, seals them with age to a\n")
	p("hybrid post-quantum recipient and writes them into SQLite as 1 MiB rows, one\n")
	p("`synchronous=FULL` transaction each, as its own process: no SMTP, no MIME, no base64.\n\n")
	p("| server | time (median) | rounds | MB/s | peak RSS | RSS before | securetextd is |\n|---|---|---|---|---|---|---|\n")
	gw := median(l.seconds(gatewayName))
	secs := func(v float64) string { return num(v) + " s" }
	for _, name := range l.order {
		s := l.seconds(name)
		peak, idle := "–", "–"
		if pk := median(l.peaks(name)); pk > 0 {
			peak = num(pk/1024) + " MiB"
		}
		if id := median(l.idles(name)); id > 0 {
			idle = num(id/1024) + " MiB"
		}
		cmp := ""
		if name != gatewayName {
			cmp = ratio(gw, median(s)) + " the time"
		}
		p("| %s | %s | %s | %s | %s | %s | %s |\n", name, secs(median(s)), list(s, secs), num(largeSize/1e6/median(s)), peak, idle, cmp)
	}
	p("\n")
	rep.largeBounds(b)
}

func (pr *portalResult) rps(name string) []float64 {
	return each(pr.runs[name], func(r wrkRun) float64 { return r.rps })
}

func (pr *portalResult) p99(name string) []float64 {
	return each(pr.runs[name], func(r wrkRun) float64 { return r.p99ms })
}

func (pr *portalResult) cpu(name string) []float64 {
	return each(pr.runs[name], func(r wrkRun) float64 { return r.cpuMs })
}

// syncs leaves out the runs whose fsyncs could not be counted (NaN).
func (pr *portalResult) syncs(name string) []float64 {
	return slices.DeleteFunc(each(pr.runs[name], func(r wrkRun) float64 { return r.syncs }), math.IsNaN)
}

func (pr *portalResult) p50(name string) []float64 {
	return each(pr.runs[name], func(r wrkRun) float64 { return r.p50ms })
}

func (rep *report) portalSection(b *strings.Builder) {
	pr := rep.portal
	if pr == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Portal\n\n")
	p("A fresh gateway; one message with a short text and a %d KiB PDF attachment; the recipient's\n", pr.attachment>>10)
	p("first visit through the portal's own setup form (password, recovery address), which gives the\n")
	p("session cookie; then `wrk -t2 -c50 -d4s --latency` with that cookie, round after round, on\n")
	p("the conversation page (the session checked, the message's rows read, its manifest and text\n")
	p("part decrypted, the template rendered), on the attachment download (decrypted through\n")
	p("`http.ServeContent`), and on the stylesheet, an embedded file: the HTTP stack alone.\n\n")
	p("| page | req/s (median) | rounds | p50 | p99 (median) | CPU ms/req | cores busy | fsyncs/req |\n|---|---|---|---|---|---|---|---|\n")
	for _, name := range pr.order {
		w := pr.runs[name]
		errs := ""
		for _, r := range w {
			if r.errs != "" {
				errs = " (" + r.errs + ")"
			}
		}
		cpu := median(pr.cpu(name))
		p("| %s | %s%s | %s | %s ms | %s ms | %s | %s | %s |\n", name, num(median(pr.rps(name))), errs, list(pr.rps(name), num),
			num(median(pr.p50(name))), num(median(pr.p99(name))), num(cpu), num(cpu*median(pr.rps(name))/1000), num(median(pr.syncs(name))))
	}
	p("\n")
	rep.portalBounds(b)
}

func (rep *report) latencySection(b *strings.Builder) {
	l := rep.latency
	if l == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## End-to-end latency\n\n")
	p("%d messages of 1 KiB, one at a time on one authenticated connection, to a gateway whose outbox\n", len(l.ms))
	p("is otherwise idle (`sms.rate` = 1000): the time from the `250` to the fake Vonage server receiving\n")
	p("the text's request.\n\n")
	p("| median | p90 | p99 | max |\n|---|---|---|---|\n")
	p("| %s ms | %s ms | %s ms | %s ms |\n\n", num(median(l.ms)), num(percentile(l.ms, 90)), num(percentile(l.ms, 99)), num(percentile(l.ms, 100)))
	rep.latencyBounds(b)
}

func (rep *report) profileSection(b *strings.Builder) {
	if len(rep.profiles) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Where the gateway's CPU goes\n\n")
	p("`perf record -e cpu-clock -F 999 -p PID` on the gateway for 2 s of one more run of each load,\n")
	p("once the sessions are going; samples summed by kind of work (by symbol: Go packages, SQLite's\n")
	p("C functions in the binary, libc, the kernel), then the hottest symbols.\n\n")
	for _, pr := range rep.profiles {
		p("**%s** (%s; %d samples)\n\n", pr.name, pr.figure, pr.samples)
		p("| share | kind of work |\n|---|---|\n")
		for _, l := range pr.groups {
			if l.percent >= 0.5 {
				p("| %.1f%% | %s |\n", l.percent, l.symbol)
			}
		}
		p("\n<details><summary>hottest symbols</summary>\n\n| share | symbol |\n|---|---|\n")
		for _, l := range pr.top {
			p("| %.1f%% | `%s` |\n", l.percent, l.symbol)
		}
		p("\n</details>\n\n")
	}
}

// The "what bounds it" paragraphs are filled in from the figures.

// share returns the share of a kind of work in the profile named name.
func (rep *report) share(name, kindPrefix string) float64 {
	for _, p := range rep.profiles {
		if p.name != name {
			continue
		}
		var sum float64
		for _, g := range p.groups {
			if strings.HasPrefix(g.symbol, kindPrefix) {
				sum += g.percent
			}
		}
		return sum
	}
	return math.NaN()
}

func pct(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", v)
}

func (rep *report) profile(name string) *profile {
	for i := range rep.profiles {
		if rep.profiles[i].name == name {
			return &rep.profiles[i]
		}
	}
	return nil
}

// syncsText describes fsyncs per message from a profile.
func (rep *report) syncsText(name, per string) string {
	p := rep.profile(name)
	if p == nil || math.IsNaN(p.syncs) {
		return ""
	}
	return fmt.Sprintf(", and %s fsyncs per %s", num(p.syncs), per)
}

// writerBusy says how much of the time the SQLite gateway's one writer
// held its write lock in the engine comparison's runs (the same load as
// the reused small messages), when there were any.
func (rep *report) writerBusy(b *strings.Builder) {
	if rep.engines == nil || len(rep.engines.runs[gatewayName]) == 0 {
		return
	}
	runs := rep.engines.runs[gatewayName]
	held := median(each(runs, func(r engineRun) float64 { return 100 * r.lockSecs / r.load.elapsed.Seconds() }))
	fmt.Fprintf(b, ". Most of that wait is for the one writer: in the PostgreSQL section's runs of the same load the\n"+
		"SQLite gateway's write lock was held %s of the time, %s ms per message, so each commit\n"+
		"waits for the ones before it (what the writer itself waits for: \"Changes, side by side\", stop 24)",
		pct(held), num(median(each(runs, engineRun.lockPerMsg))))
}

func (rep *report) ingestBounds(b *strings.Builder) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	reused, perConn := rep.find("1 KiB, connection reused"), rep.find("1 KiB, one per connection")
	p("### What bounds the gateway\n\n")
	if reused != nil {
		const name = "1 KiB, connection reused"
		gw, sink, pf, mp := reused.rate(gatewayName), reused.rate("smtp-sink"), reused.rate("Postfix queue"), reused.rate("Mailpit")
		cpu := median(reused.cpus(gatewayName))
		busy := gw * cpu / 1000
		if busy >= 1.5 {
			p("**Small messages, connection reused: CPU.** %s msg/s at %s ms of CPU per message, %s of\n", num(gw), num(cpu), num(busy))
			p("the 2 cores (the driver has the rest)%s", strings.Replace(rep.syncsText(name, "message"), ", and ", ",\nand ", 1))
		} else {
			p("**Small messages, connection reused: waiting, and CPU.** %s msg/s at %s ms of CPU per message keeps\n", num(gw), num(cpu))
			p("%s of the 2 cores busy%s", num(busy), strings.Replace(rep.syncsText(name, "message"), ", and ", ",\nand ", 1))
		}
		if pr := rep.profile(name); pr != nil && pr.syncs < 0.9 {
			p(" (concurrent sessions' commits share transactions)")
		}
		if busy < 1.5 {
			p(". The driver needs little (it drives smtp-sink at %s msg/s), so the cores are not\n", num(sink))
			p("saturated: each of the 20 sessions sends its next message only after its `250`, which comes\n")
			p("after the commit its message joined, and at this rate a message takes %s ms from `MAIL FROM`\n", num(20000/gw))
			p("to `250`, %s ms of it CPU; the rest is waiting, for the commit's fsync and for a turn on the\n", num(cpu))
			p("cores")
			rep.writerBusy(b)
		}
		p(". Postfix spends %s ms\n", num(median(reused.cpus("Postfix queue"))))
		p("per message, Mailpit %s. At the gateway's cost, 1.2× Mailpit (%s msg/s) would keep %s cores\n",
			num(median(reused.cpus("Mailpit"))), num(1.2*mp), num(1.2*mp*cpu/1000))
		p("busy and 3× Postfix (%s msg/s) %s, with the driver's share on top, so what\n", num(3*pf), num(3*pf*cpu/1000))
		p("separates the gateway from these targets is CPU per message as much as waiting, and 0.30× smtp-sink (%s msg/s)\n", num(0.3*sink))
		p("would leave %s ms per message on two cores with nothing for the driver, less than any server\n", num(2000/(0.3*sink)))
		p("here that keeps what it receives. ")
		if pr := rep.profile(name); pr != nil {
			p("The profile below splits the cost: %s the kernel (context switches\n", pct(rep.share(name, "kernel")))
			p("between sessions and the writer, a read and a write system call per SMTP command, file I/O),\n")
			p("%s the Go runtime (allocation, garbage collection, scheduling), %s SQLite, %s crypto. ",
				pct(rep.share(name, "Go runtime")), pct(rep.share(name, "SQLite")), pct(rep.share(name, "crypto")))
		}
		p("What was done to get here, each measured: concurrent sessions' commits share one transaction\n")
		p("and one fsync (group commit); a part's file key is wrapped by a data key, one AEAD operation,\n")
		p("instead of an ML-KEM-768 + X25519 encapsulation per part; each connection keeps its prepared\n")
		p("SQLite statements; the MIME walk's two 32 KiB buffers are reused between messages. What is\n")
		p("left is spread thin: the kernel's share is the protocol itself (smtp-sink, which keeps nothing,\n")
		p("spends %s ms per message on it), and the runtime's is the garbage of parsing, sealing and\n", num(median(reused.cpus("smtp-sink"))))
		p("SQLite's Go binding, a few hundred small objects per message.")
		p("\n\n")
	}
	if reused != nil && perConn != nil {
		const name = "1 KiB, one per connection"
		extra := median(perConn.cpus(gatewayName)) - median(reused.cpus(gatewayName))
		argon := rep.share(name, "argon2id")
		p("**One message per connection.** %s msg/s; a connection, with its EHLO, AUTH and QUIT, costs\n", num(perConn.rate(gatewayName)))
		p("%s ms of CPU more than a message on a reused one (Postfix: %s ms). ", num(extra),
			num(median(perConn.cpus("Postfix queue"))-median(reused.cpus("Postfix queue"))))
		switch {
		case math.IsNaN(argon):
		case argon >= 20:
			p("The profile puts %s of the time\n", pct(argon))
			p("in argon2id (7 MiB, 5 passes), checking the password on every AUTH, where Postfix's sasldb\n")
			p("compares a stored secret: remembering a login that verified for a few minutes (in memory,\n")
			p("keyed, dropped when the password changes) would remove it.")
		default:
			p("argon2id is %s of the profile:\n", pct(argon))
			p("a login that verified is remembered, so a mail program that connects per message is not\n")
			p("hashed per message.")
		}
		p("\n\n")
	}
	if in := rep.find("1 MiB, connection reused"); in != nil {
		gw, sink := in.rate(gatewayName), in.rate("smtp-sink")
		p("**1 MiB messages: go-smtp's DATA reader.** %s MB/s, %s smtp-sink. go-smtp alone, reading\n", num(mbps(gw, in.msgBytes)), ratio(gw, sink))
		p("and discarding, spends %s ms of CPU per MiB to smtp-sink's %s: its DATA reader takes one\n",
			num(median(in.cpus("go-smtp discard"))), num(median(in.cpus("smtp-sink"))))
		p("byte at a time from a bufio.Reader to undo dot-stuffing, and the gateway's profile puts %s of\n", pct(rep.share("1 MiB, connection reused", "SMTP reading")))
		p("its time in SMTP reading (with the line-ending guard over it), %s in the MIME walk and base64.\n", pct(rep.share("1 MiB, connection reused", "MIME")))
		if bd := rep.find("1 MiB, connection reused, BDAT"); bd != nil && len(bd.runs[gatewayName]) > 0 {
			bcpu := median(bd.cpus(gatewayName))
			p("The evidence: the same messages sent with BDAT (CHUNKING, which go-smtp reads with\n")
			p("`io.CopyN`, no unstuffing) cost go-smtp %s ms of CPU per MiB instead of %s, and the gateway\n",
				num(median(bd.cpus("go-smtp discard"))), num(median(in.cpus("go-smtp discard"))))
			p("%s ms instead of %s; with BDAT the gateway is no longer bound by CPU (%s cores busy, %s MB/s)\n",
				num(bcpu), num(median(in.cpus(gatewayName))), num(bd.rate(gatewayName)*bcpu/1000), num(mbps(bd.rate(gatewayName), bd.msgBytes)))
			p("but by its one writer, which puts every message's sealed MiB into the WAL, with an fsync per\n")
			p("commit (%.2f ms for 1 MiB here), and into the database file at checkpoints.\n", rep.fsyncMiB.Seconds()*1000)
		}
		p("The gateway's own readers (the line-ending guard, the base64 decoder) scan whole buffers\n")
		p("with `bytes.IndexByte`; what is left of \"SMTP reading\" is go-smtp's. Decision: keep\n")
		p("go-smtp, whose DATA reader is correct and whose BDAT path is already fast (Exchange and\n")
		p("Microsoft 365 relay with BDAT when it is offered; Postfix's client and Outlook use DATA), and\n")
		p("offer upstream the change in [`docs/go-smtp-datareader.patch`](docs/go-smtp-datareader.patch): it copies\n")
		p("the buffered bytes up to the next CR at once, and finds line ends in the line-length guard\n")
		p("with `bytes.IndexByte`. Measured once with it (a `replace` of go-smtp v0.25.1 by the\n")
		p("patched copy; the same large-message run): go-smtp alone read 100 MiB in 0.18 s instead of\n")
		p("0.59 s. It is carried now, in `third_party/go-smtp` (its PATCHES.md says until when), so the\n")
		p("next run of `make bench` measures go-smtp with it. Measured again when it was taken in (go-smtp\n")
		p("alone, 1 MiB messages by DATA over loopback to a backend that discards them, the release and\n")
		p("the copy in five interleaved rounds on a loaded machine): the copy took 1/7.8 of the release's\n")
		p("time (the median round; 1/4.3 to 1/15).\n\n")
	}
}

func (rep *report) largeBounds(b *strings.Builder) {
	l := rep.large
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	gw, ceil := median(l.seconds(gatewayName)), median(l.seconds("age + SQLite ceiling"))
	disc, sink := median(l.seconds("go-smtp discard")), median(l.seconds("smtp-sink"))
	p("**Memory** stays flat: the MIME walk streams each part through 32 KiB buffers into age, and the\n")
	p("draft's writer writes its sealed chunks out in 512 KiB batches, each a short transaction, while\n")
	p("the next batch is sealed (at most three batches in memory); most of the peak is there before\n")
	p("the message arrives (the binary's mapped pages, SQLite's page caches, the Go heap after\n")
	p("start-up). ")
	if v := gatewayName + ", " + gogcVariant; len(l.peaks(v)) > 0 {
		p("Letting the heap grow larger (%s, the row\n", gogcVariant)
		p("above) would cost %s MiB more at the peak, past the 48 MiB target: the default is kept.\n",
			num((median(l.peaks(v))-median(l.peaks(gatewayName)))/1024))
	}
	if pf := median(l.seconds("Postfix queue")); gw > 2*pf {
		p("**Time**: %s s, %s s more than twice Postfix's %s s. ", num(gw), num(gw-2*pf), num(pf))
	} else {
		p("**Time**: %s s, within twice Postfix's %s s. ", num(gw), num(pf))
	}
	p("The gateway takes %s the ceiling's, which is what\n", ratio(gw, ceil))
	p("the SMTP and MIME layers add to sealing and writing. go-smtp alone needs %s s to read these\n", num(disc))
	p("bytes through its DATA reader (smtp-sink: %s s), %s s more than the protocol needs: see the\n", num(sink), num(disc-sink))
	p("1 MiB messages above for that reader and the patch that would take most of it away.\n\n")
}

func (rep *report) portalBounds(b *strings.Builder) {
	pr := rep.portal
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	conv := pr.order[0]
	rps, cpu := median(pr.rps(conv)), median(pr.cpu(conv))
	syncs := median(pr.syncs(conv))
	p("**What bounds the conversation page.** %s req/s, p99 %s ms, with %s ms of CPU per request\n", num(rps), num(median(pr.p99(conv))), num(cpu))
	p("(%s of the 2 cores; wrk has the rest)", num(rps*cpu/1000))
	if !math.IsNaN(syncs) {
		p(" and %s fsyncs per request", num(syncs))
	}
	p(". ")
	p("Every view is written durably before the page is sent (its audit event, which the design\n")
	p("requires, and the first view, for read receipts); concurrent views share one commit on the\n")
	p("store's writer, which is why there are far fewer fsyncs than requests. CPU bounds the page:\n")
	p("at %s ms per request, two cores give at most %s req/s, and wrk takes its share of them.\n", num(cpu), num(2000/cpu))
	if rep.profile(portalProfile) != nil {
		p("The profile at the end puts %s of the page's time in the Go runtime (allocation and garbage\n",
			pct(rep.share(portalProfile, "Go runtime")))
		p("collection), %s in the kernel, %s in SQLite. ",
			pct(rep.share(portalProfile, "kernel")), pct(rep.share(portalProfile, "SQLite")))
	}
	p("What a view costs beyond the HTTP stack is its queries (about a dozen, each\n")
	p("compiled once per connection: `TestStatementsStayPrepared`), the template, and the garbage\n")
	p("both make; \"Changes, side by side\" below gives what each cut took away. ")
	if v := "conversation page, gateway with " + gogcVariant; len(pr.rps(v)) > 0 {
		p("With the heap allowed to grow larger (%s, the last row), the same page serves %s\n", gogcVariant, num(median(pr.rps(v))))
		p("req/s at %s ms of CPU per request", num(median(pr.cpu(v))))
		if l := rep.large; l != nil {
			if pk := l.peaks(gatewayName + ", " + gogcVariant); len(pk) > 0 {
				p(", but a 100 MiB message then peaks at %s MiB, past the\n", num(median(pk)/1024))
				p("48 MiB target")
			}
		}
		p(": the default is kept, and an operator whose gateway serves mostly pages can set\n")
		p("`GOGC=400` in its environment (see `contrib/securetextd.service`).")
	}
	p("\n\n")
}

func (rep *report) latencyBounds(b *strings.Builder) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("The commit wakes the text drain at once (`Outbox.Wake`); the drain reads the job, opens its\n")
	p("sealed payload, takes a token from the rate limiter and posts to Vonage. The text's request\n")
	p("often arrives before the client has read its `250`.\n\n")
}
