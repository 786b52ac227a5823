package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the server's statistics

	"github.com/securetextd/securetextd/internal/pgtest"
)

// The PostgreSQL engine in the benchmark: a second gateway, configured as
// the first but for its store, which is a database on a private PostgreSQL
// server of its own. The server is as durable as the SQLite store's
// synchronous=FULL: fsync and synchronous_commit on (PostgreSQL's
// defaults), on the same disk.

// pgGatewayName is the PostgreSQL gateway's name in the tables.
const pgGatewayName = "securetextd on PostgreSQL"

// startPGGateway starts the PostgreSQL server and the gateway on it.
func startPGGateway(bin, work, vonageURL string) (*gateway, *pgtest.Server) {
	// pg_stat_statements and pg_stat_wal say where the server's time
	// and writes go (engineRun).
	srv, err := pgtest.StartWith(true, "shared_preload_libraries=pg_stat_statements")
	if err != nil {
		fatalf("%v", err)
	}
	cleanups = append([]func(){srv.Stop}, cleanups...)
	db, err := srv.CreateDatabase()
	if err != nil {
		fatalf("%v", err)
	}
	if err := srv.Exec(context.Background(), db, "CREATE EXTENSION pg_stat_statements"); err != nil {
		fatalf("pg_stat_statements: %v", err)
	}
	pgBenchDB = db
	store := fmt.Sprintf("driver = \"postgres\"\ndsn = %q\n", srv.URL(db))
	g := startGatewayStore(bin, work, "securetextd-pg", vonageURL, 1, store)
	g.peer.name = pgGatewayName
	g.peer.db = srv.PID()
	return g, srv
}

// pgBenchDB is the PostgreSQL gateway's database.
var pgBenchDB string

// engineRun is one 1 KiB run against a gateway, with what its store did.
type engineRun struct {
	load     loadResult
	lockSecs float64       // the write lock's time during the run
	txs      float64       // write transactions during the run
	dbCPU    time.Duration // the PostgreSQL server's CPU time; 0 on SQLite
	// On PostgreSQL: the time its statements ran (pg_stat_statements),
	// and the WAL it wrote (pg_stat_wal).
	execMs   float64
	walBytes float64
}

// engineResult compares the two engines on small messages.
type engineResult struct {
	runs map[string][]engineRun // by gateway name
	// large holds the PostgreSQL gateway's 100 MiB runs.
	large []largeRun
}

// runEngines sends 1 KiB messages over reused connections to each
// gateway in turn, rounds times, reading the write lock's time from the
// gateways' /metrics and the PostgreSQL server's CPU time around each run.
// With statements, it logs the server's statements after each PostgreSQL
// run.
func runEngines(rounds int, dur time.Duration, sqlite, pg *gateway, srv *pgtest.Server, between func(*peer), statements bool) *engineResult {
	res := &engineResult{runs: map[string][]engineRun{}}
	for r := range rounds {
		for _, g := range []*gateway{sqlite, pg} {
			before := scrapeStore(g)
			var db0 time.Duration
			if g == pg {
				resetPGStats(srv)
				db0 = treeCPU(srv.PID())
			}
			l := g.peer.run(load{conns: 20, msg: message(1024), dur: dur, from: benchUser, to: patientTo})
			after := scrapeStore(g)
			run := engineRun{load: l, lockSecs: after.lock - before.lock, txs: after.txs - before.txs}
			if g == pg {
				run.dbCPU = treeCPU(srv.PID()) - db0
				run.execMs, run.walBytes = readPGStats(srv)
				if statements {
					logPGStatements(srv, l.msgs)
				}
			}
			res.runs[g.peer.name] = append(res.runs[g.peer.name], run)
			logf("engines round %d %-26s %7.0f msg/s, write lock %.3f ms/msg, %.1f msg/transaction, database CPU %.3f ms/msg",
				r+1, g.peer.name, l.rate(), run.lockPerMsg(), run.msgsPerTx(), run.dbCPUPerMsg())
			between(g.peer)
		}
	}
	return res
}

// resetPGStats zeroes the server's statement and WAL counters.
func resetPGStats(srv *pgtest.Server) {
	ctx := context.Background()
	if err := srv.Exec(ctx, pgBenchDB, "SELECT pg_stat_statements_reset()"); err != nil {
		fatalf("pg_stat_statements_reset: %v", err)
	}
	if err := srv.Exec(ctx, pgBenchDB, "SELECT pg_stat_reset_shared('wal')"); err != nil {
		fatalf("pg_stat_reset_shared: %v", err)
	}
}

// readPGStats reads the time the server's statements ran, in ms, and the
// WAL it wrote, in bytes, since resetPGStats.
func readPGStats(srv *pgtest.Server) (execMs, walBytes float64) {
	db, err := sql.Open("pgx", srv.URL(pgBenchDB))
	if err != nil {
		fatalf("%v", err)
	}
	defer db.Close()
	// The time statements ran, less the waits for the write lock.
	if err := db.QueryRow(`SELECT coalesce(sum(total_exec_time), 0) FROM pg_stat_statements
		WHERE query NOT LIKE '%pg_stat%' AND query NOT LIKE '%pg_advisory%'`).Scan(&execMs); err != nil {
		fatalf("pg_stat_statements: %v", err)
	}
	if err := db.QueryRow(`SELECT wal_bytes FROM pg_stat_wal`).Scan(&walBytes); err != nil {
		fatalf("pg_stat_wal: %v", err)
	}
	return execMs, walBytes
}

// logPGStatements logs the statements the server ran since resetPGStats,
// most time first: calls and milliseconds per message (msgs of them), and
// the mean time of one call.
func logPGStatements(srv *pgtest.Server, msgs int64) {
	db, err := sql.Open("pgx", srv.URL(pgBenchDB))
	if err != nil {
		fatalf("%v", err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT calls, total_exec_time, regexp_replace(left(query, 90), '\s+', ' ', 'g')
		FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat%' ORDER BY total_exec_time DESC LIMIT 30`)
	if err != nil {
		fatalf("pg_stat_statements: %v", err)
	}
	defer rows.Close()
	n := float64(max(1, msgs))
	var calls, ms float64
	for rows.Next() {
		var c int64
		var t float64
		var q string
		if err := rows.Scan(&c, &t, &q); err != nil {
			fatalf("pg_stat_statements: %v", err)
		}
		calls, ms = calls+float64(c), ms+t
		logf("  %6.3f calls/msg %6.3f ms/msg %7.3f ms/call  %s", float64(c)/n, t/n, t/float64(max(1, c)), q)
	}
	logf("  top statements: %.2f calls/msg, %.3f ms/msg", calls/n, ms/n)
}

func (r engineRun) execPerMsg() float64 { return r.execMs / float64(max(1, r.load.msgs)) }

func (r engineRun) walPerMsg() float64 { return r.walBytes / float64(max(1, r.load.msgs)) }

func (r engineRun) lockPerMsg() float64 {
	if r.load.msgs == 0 {
		return 0
	}
	return r.lockSecs * 1000 / float64(r.load.msgs)
}

func (r engineRun) msgsPerTx() float64 {
	if r.txs == 0 {
		return 0
	}
	return float64(r.load.msgs) / r.txs
}

func (r engineRun) dbCPUPerMsg() float64 {
	if r.load.msgs == 0 {
		return 0
	}
	return float64(r.dbCPU.Microseconds()) / 1000 / float64(r.load.msgs)
}

// storeCounters are the store's counters on a gateway's /metrics.
type storeCounters struct{ lock, txs float64 }

// scrapeStore reads the write lock's counters from g's /metrics.
func scrapeStore(g *gateway) storeCounters {
	resp, err := http.Get("http://" + g.portal + "/metrics")
	if err != nil {
		fatalf("%s /metrics: %v", g.peer.name, err)
	}
	defer resp.Body.Close()
	var c storeCounters
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(value, 64)
		switch name {
		case "securetextd_store_write_lock_seconds_total":
			c.lock = v
		case "securetextd_store_write_transactions_total":
			c.txs = v
		}
	}
	return c
}

// engineSection writes the comparison of the engines and what it means
// for a cluster.
func (rep *report) engineSection(b *strings.Builder) {
	e := rep.engines
	if e == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## The PostgreSQL engine\n\n")
	p("The same gateway with `store.driver = \"postgres\"`, on a private PostgreSQL server on the same\n")
	p("machine and disk, as durable as SQLite's `synchronous=FULL` (fsync and `synchronous_commit`\n")
	p("on; `shared_buffers` 64 MB and `pg_stat_statements` loaded, PostgreSQL's defaults otherwise). 20 sessions send 1 KiB messages over reused connections for %v, to each gateway in\n", rep.opts.dur)
	p("turn, %d rounds. The write lock's time and the write transactions come from each gateway's\n", rep.opts.rounds)
	p("`/metrics`; the database's CPU time is that of the server's processes.\n\n")
	p("| store | msg/s (median) | rounds | gateway CPU ms/msg | database CPU ms/msg | write lock ms/msg | msg per transaction | vs SQLite |\n")
	p("|---|---|---|---|---|---|---|---|\n")
	base := median(each(e.runs[gatewayName], func(r engineRun) float64 { return r.load.rate() }))
	for _, name := range []string{gatewayName, pgGatewayName} {
		runs := e.runs[name]
		rates := each(runs, func(r engineRun) float64 { return r.load.rate() })
		db := "–"
		if name == pgGatewayName {
			db = num(median(each(runs, engineRun.dbCPUPerMsg)))
		}
		label := "SQLite"
		cmp := ""
		if name == pgGatewayName {
			label, cmp = "PostgreSQL", ratio(median(rates), base)
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %s |\n", label, num(median(rates)), list(rates, num),
			num(median(each(runs, func(r engineRun) float64 { return r.load.cpuPerMsg() }))), db,
			num(median(each(runs, engineRun.lockPerMsg))), num(median(each(runs, engineRun.msgsPerTx))), cmp)
	}
	p("\n")
	if len(e.large) > 0 {
		secs := each(e.large, func(r largeRun) float64 { return r.seconds })
		peaks := each(e.large, func(r largeRun) float64 { return float64(r.peakKiB) })
		sq := 0.0
		if rep.large != nil {
			sq = median(rep.large.seconds(gatewayName))
		}
		p("One 100 MiB message (as in the section below) to the PostgreSQL gateway: %s s (rounds %s), peak RSS\n",
			num(median(secs)), list(secs, num))
		p("%s MiB; the SQLite gateway took %s s.\n\n", num(median(peaks)/1024), num(sq))
	}
	rep.clusterBounds(b)
}

// clusterBounds works out, from the measured figures, what bounds one
// PostgreSQL node and how many nodes one primary carries.
func (rep *report) clusterBounds(b *strings.Builder) {
	e := rep.engines
	runs := e.runs[pgGatewayName]
	if len(runs) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	rate := median(each(runs, func(r engineRun) float64 { return r.load.rate() }))
	gwCPU := median(each(runs, func(r engineRun) float64 { return r.load.cpuPerMsg() }))
	dbCPU := median(each(runs, engineRun.dbCPUPerMsg))
	lock := median(each(runs, engineRun.lockPerMsg))
	perTx := median(each(runs, engineRun.msgsPerTx))
	exec := median(each(runs, engineRun.execPerMsg))
	wal := median(each(runs, engineRun.walPerMsg))
	p("### What bounds a node, and how many nodes one database carries\n\n")
	p("On this machine the node, the database server and the load driver share 2 cores: each message\n")
	p("costs %s ms of the gateway's CPU and %s ms of the server's, so %s msg/s keeps %s cores busy\n",
		num(gwCPU), num(dbCPU), num(rate), num(rate*(gwCPU+dbCPU)/1000))
	p("before the driver's share. A node is bound by CPU here, as the SQLite gateway is, and most of\n")
	p("it is the server's: of its %s ms per message, its statements ran %s ms, waits for the write lock\n", num(dbCPU), num(exec))
	p("left out and row locks and waits for the CPU left in\n")
	p("(`pg_stat_statements`: each message's dozen rows, merged with those of the other messages of its\n")
	p("group commit into one INSERT per table and sent with the COMMIT, after BEGIN, the lock and the\n")
	p("query for the ids, sent together: two round trips per group, as a message that joins its\n")
	p("conversation reads it before, outside the lock, and sends the check that it is still the latest\n")
	p("with its rows); the rest is the server's share of\n")
	p("the protocol, of commits (%s messages share one) and of writing %s KB of WAL per message.\n\n", num(perTx), num(wal/1000))
	if lock <= 0 || gwCPU <= 0 || dbCPU <= 0 {
		return
	}
	// Commits are serialized cluster-wide by the write lock: its time per
	// message bounds the cluster, as does the server's CPU.
	lockBound := 1000 / lock
	nodeRate := 2 * 1000 / gwCPU // a node with 2 cores of its own
	cpuBound := 8 * 1000 / dbCPU // a primary with 8 cores
	cluster := min(lockBound, cpuBound)
	p("Every write transaction holds the store's write lock (an advisory lock, one for the cluster) from\n")
	p("its first statement to its commit: %s ms per message here, with %s messages per transaction as\n", num(lock), num(perTx))
	p("concurrent sessions' commits are grouped. Commits then bound a cluster at about %s msg/s\n", num(lockBound))
	p("(1 / the lock's time per message), whatever the number of nodes; the server's CPU, at %s ms per\n", num(dbCPU))
	p("message, bounds a primary of 8 cores at about %s msg/s. A node of 2 cores of its own, at %s ms of\n", num(cpuBound), num(gwCPU))
	p("CPU per message, takes about %s msg/s.", num(nodeRate))
	bound := map[bool]string{true: "the write lock", false: "the server's CPU"}[lockBound <= cpuBound]
	if n := cluster / nodeRate; n >= 1.5 {
		p(" So one primary carries about **%.0f such nodes** before %s bounds it.\n", n, bound)
	} else {
		p(" So %s, at about %s msg/s for the whole cluster, bounds it before\n", bound, num(cluster))
		p("a second such node would add throughput: **one primary carries one busy node's worth of commits**, and\n")
		p("further nodes add availability (a node that dies is one of several), not speed, until the lock's time\n")
		p("per message shrinks.\n")
	}
	p("The lock's time is measured with the node, the server and the load on the same 2 cores, so it\n")
	p("includes their waits for each other; across a network each round trip under the lock adds to\n")
	p("it, so keep the nodes near the database.\n\n")
}
