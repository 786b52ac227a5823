package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Per-message figures of what each server writes (issue 15), and its CPU
// split into what a message costs and what a connection adds.

func (r loadResult) per(v float64) float64 {
	if r.msgs == 0 {
		return math.NaN()
	}
	return v / float64(r.msgs)
}

// perSync is syncs per message, NaN when they were not counted.
func (r loadResult) perSync(n int) float64 {
	if n < 0 {
		return math.NaN()
	}
	return r.per(float64(n))
}

// walFramesPerMsg is the WAL frames appended per message; NaN for servers
// without a SQLite WAL.
func (r loadResult) walFramesPerMsg() float64 {
	if r.walFrames < 0 || r.walPage == 0 {
		return math.NaN()
	}
	return r.per(float64(r.walFrames))
}

// walBytesPerMsg is the WAL written per message: SQLite's frames (a page
// and its 24-byte header each) or PostgreSQL's pg_stat_wal bytes.
func (r loadResult) walBytesPerMsg() float64 {
	if r.pgWAL > 0 {
		return r.per(r.pgWAL)
	}
	return r.walFramesPerMsg() * float64(r.walPage+24)
}

func (r loadResult) ioLine() string {
	s := fmt.Sprintf("per msg: wchar %s KB, write_bytes %s KB, syscw %s, fsyncs %s, WAL frames %s (%s KB)",
		num(r.per(r.io.wchar)/1000), num(r.per(r.io.writeBytes)/1000), num(r.per(r.io.syscw)),
		num(r.perSync(r.syncs)), num(r.walFramesPerMsg()), num(r.walBytesPerMsg()/1000))
	if r.syncsDB >= 0 {
		s += fmt.Sprintf("; database server: wchar %s KB, write_bytes %s KB, syscw %s, fsyncs %s",
			num(r.per(r.ioDB.wchar)/1000), num(r.per(r.ioDB.writeBytes)/1000), num(r.per(r.ioDB.syscw)), num(r.perSync(r.syncsDB)))
	}
	return s
}

// medianOf is the median of f over the runs that measured it (not NaN).
func medianOf(runs []loadResult, f func(loadResult) float64) float64 {
	return median(slices.DeleteFunc(each(runs, f), math.IsNaN))
}

// ioSection writes, for each ingest measurement, what each server wrote
// per message.
func (rep *report) ioSection(b *strings.Builder) {
	if len(rep.ingest) == 0 || len(rep.ingest[0].runs[gatewayName]) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Writes per message\n\n")
	p("Read around each ingest run above, divided by the messages it acknowledged, median of the\n")
	p("rounds. `wchar` is the bytes the server's processes passed to write system calls (files,\n")
	p("sockets and pipes alike: the SMTP replies are a few dozen bytes of it), `syscw` those calls,\n")
	p("`write_bytes` the bytes they caused to be sent to the disk (WAL, database file at checkpoints,\n")
	p("queue files), all from `/proc/PID/io` of the server's whole process tree (reaped children\n")
	p("included, as for CPU). fsyncs are the `fsync` and `fdatasync` calls of that tree, recorded\n")
	p("machine-wide with `perf record -a` on their system call tracepoints and the scheduler's fork\n")
	p("tracepoint (which places children forked during the run in their tree), counted between the\n")
	p("run's start and end. WAL frames are those appended to a SQLite database's WAL (the gateway's,\n")
	p("Mailpit's), read from the wal-index header (`mxFrame` in the `-shm` file) every 2 ms and\n")
	p("summed across the WAL's restarts (a restart between two polls loses under 1%%); WAL KB is frames × (page size + 24), or for PostgreSQL the\n")
	p("server's `pg_stat_wal.wal_bytes`. For the gateway on PostgreSQL, the server's processes (the\n")
	p("postmaster and its children) have a row of their own.\n\n")
	for _, in := range rep.ingest {
		p("### %s\n\n", in.config.name)
		p("| server | msg/s | wchar KB/msg | write_bytes KB/msg | write syscalls/msg | fsyncs/msg | WAL frames/msg | WAL KB/msg |\n")
		p("|---|---|---|---|---|---|---|---|\n")
		for _, name := range in.peers {
			runs := in.runs[name]
			row := func(label string, io func(loadResult) ioCount, syncs func(loadResult) int, wal bool) {
				walF, walB := "–", "–"
				if wal {
					walF = num(medianOf(runs, loadResult.walFramesPerMsg))
					walB = num(medianOf(runs, loadResult.walBytesPerMsg) / 1000)
				}
				p("| %s | %s | %s | %s | %s | %s | %s | %s |\n", label, num(in.rate(name)),
					num(medianOf(runs, func(r loadResult) float64 { return r.per(io(r).wchar) / 1000 })),
					num(medianOf(runs, func(r loadResult) float64 { return r.per(io(r).writeBytes) / 1000 })),
					num(medianOf(runs, func(r loadResult) float64 { return r.per(io(r).syscw) })),
					num(medianOf(runs, func(r loadResult) float64 { return r.perSync(syncs(r)) })),
					walF, walB)
			}
			row(name, func(r loadResult) ioCount { return r.io }, func(r loadResult) int { return r.syncs }, true)
			if len(runs) > 0 && runs[0].ioDB != (ioCount{}) {
				row("its PostgreSQL server", func(r loadResult) ioCount { return r.ioDB }, func(r loadResult) int { return r.syncsDB }, false)
			}
		}
		p("\n")
	}
	rep.cpuSplit(b)
}

// cpuSplit writes each server's CPU per message and per connection, from
// the 1 KiB runs with connections reused and one per connection: a reused
// connection's message costs the per-message part; a message on its own
// connection costs that and the connection's (connect, EHLO, AUTH, QUIT).
func (rep *report) cpuSplit(b *strings.Builder) {
	reused, perConn := rep.find("1 KiB, connection reused"), rep.find("1 KiB, one per connection")
	if reused == nil || perConn == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("### CPU per message and per connection (1 KiB)\n\n")
	p("Per message: the CPU per message with connections reused. Per connection: what a message\n")
	p("on a connection of its own costs more (its connection, EHLO, AUTH and QUIT).\n\n")
	p("| server | per message, ms | per connection, ms | a new connection costs | write syscalls per message | per connection |\n|---|---|---|---|---|---|\n")
	syscw := func(in *ingestResult, name string) float64 {
		return medianOf(in.runs[name], func(r loadResult) float64 { return r.per(r.io.syscw) })
	}
	connCalls := map[string]float64{}
	for _, name := range reused.peers {
		msg := median(reused.cpus(name))
		conn := median(perConn.cpus(name)) - msg
		connCalls[name] = syscw(perConn, name) - syscw(reused, name)
		p("| %s | %s | %s | %s a message | %s | %s |\n", name, num(msg), num(conn), ratio(conn, msg),
			num(syscw(reused, name)), num(connCalls[name]))
	}
	p("\n")
	lib, sink := connCalls["go-smtp discard"], connCalls["smtp-sink"]
	if lib-sink >= 3 {
		p("A connection costs go-smtp %s write system calls to smtp-sink's %s: go-smtp sends each line\n", num(lib), num(sink))
		p("of a multi-line reply with a write of its own (`textproto.Writer.PrintfLine` flushes), so\n")
		p("the EHLO reply costs one per extension; the gateway inherits them (%s per connection).\n", num(connCalls[gatewayName]))
		p("Writing a reply's lines with one flush belongs in go-smtp's `writeResponse`: below it,\n")
		p("once STARTTLS has wrapped the connection, the lines are TLS records.\n\n")
	}
}

// commitWritesSection writes what the store's probe found a small
// message's commit writes, table by table.
func (rep *report) commitWritesSection(b *strings.Builder) {
	var cw, phones []commitWrites
	for _, c := range rep.commitWrites {
		if c.Phones {
			phones = append(phones, c)
		} else {
			cw = append(cw, c)
		}
	}
	defer rep.pageSizeSection(b, phones)
	if len(cw) < 2 || cw[0].Owners == nil || cw[1].Messages == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	alone, grouped := cw[0], cw[1]
	p("## What a small message's commit writes\n\n")
	p("`go test -run TestSmallCommitWrites -v ./store` (run by `make bench`): a store on SQLite with\n")
	p("a few hundred messages, its WAL emptied (`wal_checkpoint(TRUNCATE)`), then one message of\n")
	p("1 KiB to one phone committed alone, then %d group commits of %d such messages; the WAL's\n", grouped.Messages/grouped.Group, grouped.Group)
	p("frame headers name the pages appended, and SQLite's `dbstat` table (in the `sqlite3` tool)\n")
	p("the table or index each page belongs to; \"bytes written\" is `wchar` of the test's process.\n")
	var saved *commitWrites
	if len(cw) > 2 && cw[2].Savepoints && cw[2].Messages > 0 {
		saved = &cw[2]
		p("Then, side by side, as many groups with one more commit in each that fails, so that each\n")
		p("group runs again with a savepoint per commit, as every group did until issue 15.\n")
	}
	p("\n| | one message alone | per message, in groups of %d |", grouped.Group)
	if saved != nil {
		p(" the same, a savepoint per commit |\n|---|---|---|---|\n")
	} else {
		p("\n|---|---|---|\n")
	}
	row := func(what string, alone string, f func(c commitWrites) string) {
		p("| %s | %s | %s |", what, alone, f(grouped))
		if saved != nil {
			p(" %s |", f(*saved))
		}
		p("\n")
	}
	row("WAL frames", fmt.Sprint(alone.Frames), func(c commitWrites) string { return num(float64(c.Frames) / float64(c.Messages)) })
	row("WAL bytes", num(float64(alone.Frames*(alone.Page+24))/1000)+" KB", func(c commitWrites) string {
		return num(float64(c.Frames*(c.Page+24))/float64(c.Messages)/1000) + " KB"
	})
	row("bytes passed to write system calls", num(float64(alone.Wchar)/1000)+" KB", func(c commitWrites) string {
		return num(float64(c.Wchar)/float64(c.Messages)/1000) + " KB"
	})
	var names []string
	for name := range grouped.Owners {
		names = append(names, name)
	}
	for name := range alone.Owners {
		if _, ok := grouped.Owners[name]; !ok {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		if d := grouped.Owners[b] - grouped.Owners[a]; d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	for _, name := range names {
		row("`"+name+"`", fmt.Sprint(alone.Owners[name]), func(c commitWrites) string {
			return num(float64(c.Owners[name]) / float64(c.Messages))
		})
	}
	p("\n")
	p("Alone, a message writes one page of every table and index it touches, %d b-trees: each\n", len(alone.Owners))
	p("table keyed by an increasing id (messages, blobs, chunks, jobs, audit, conversations, texts)\n")
	p("and each index on increasing values takes its new row in its last leaf, so a group commit\n")
	p("shares those pages among its messages; `links`, keyed by the SHA-256 of a random token,\n")
	p("takes its row on a random leaf, one page per message once the table is large. A message's\n")
	p("own bytes are about 1 KiB of ciphertext in `chunks` and some 200 bytes in each of `blobs`\n")
	p("(its wrapped file key), `jobs` (the sealed text job) and `messages` (the sealed manifest),\n")
	p("with two audit rows of about 130 bytes (`sqlite_schema` is page 1, whose header records the\n")
	p("file's size, written when a commit grows the file).\n\n")
	p("The issue's candidates, checked against this. Savepoint journals were the largest writer,\n")
	p("and not in the WAL at all: each commit of a group ran in its own savepoint, whose journal\n")
	p("copies every existing page the commit changes a first time, spilled to a temporary file")
	if saved != nil {
		p("\n(%s KB per message above, for %s KB without them)", num(float64(saved.Wchar)/float64(saved.Messages)/1000),
			num(float64(grouped.Wchar)/float64(grouped.Messages)/1000))
	}
	p(". Group commits now run their commits without\n")
	p("savepoints, as on PostgreSQL, and only a group in which one fails is run again with them\n")
	p("(`store/group.go`). ")
	if grouped.Owners["(free page)"] == 0 && alone.Owners["(free page)"] == 0 {
		p("`secure_delete` costs nothing here: a commit frees no page (none of the\n")
		p("frames is a free page). ")
	}
	p("The `pending → committed` flip is not a write of its own for a small\n")
	p("message, whose blob is inserted in the commit's transaction. What is left to take: the\n")
	p("separate index b-trees of `chunks` and `parts` (their composite primary keys on rowid tables:\n")
	p("`WITHOUT ROWID` would fold them into the tables), the second audit row, and any index no query\n")
	p("uses; each saves a page per commit, a fraction of one per message in a group.\n\n")
}

// pageSizeSection writes what the probe found for commits in the shape
// of the ingest runs on pages of each size.
func (rep *report) pageSizeSection(b *strings.Builder, phones []commitWrites) {
	if len(phones) < 2 || phones[0].Messages == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("### Page size\n\n")
	p("`TestPhonesCommitWrites`'s commits, in the shape of the ingest runs (one sender to 1,000\n")
	p("phones in turn, each message joining its conversation, %d messages in groups of %d, after\n", phones[0].Messages, phones[0].Group)
	p("4,000), on a new store of each page size, in the same run. The pages such a message changes\n")
	p("a little at random places (its conversation, its entries in the indexes keyed by it, its\n")
	p("link token's) each cost a whole page in the WAL, so a smaller page writes less. The store\n")
	p("makes its databases with 1 KiB pages (`store/db.go`); a database made before keeps its own.\n\n")
	p("| page size | WAL frames per message | WAL KB per message | bytes passed to write system calls per message |\n|---|---|---|---|\n")
	for _, c := range phones {
		p("| %d bytes | %s | %s | %s KB |\n", c.Page, num(float64(c.Frames)/float64(c.Messages)),
			num(float64(c.Frames*(c.Page+24))/float64(c.Messages)/1000), num(float64(c.Wchar)/float64(c.Messages)/1000))
	}
	p("\n")
}
