package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The load driver speaks plain SMTP in lockstep (no pipelining), as
// Postfix's smtp-source does, and adds what smtp-source lacks: AUTH PLAIN
// on every connection. Every server in a comparison gets the same bytes
// from the same driver.

// peer is an SMTP server under test.
type peer struct {
	name string
	addr string
	// user and pass, when user is set, are sent with AUTH PLAIN after EHLO.
	user, pass string
	// root is the server's process; with tree, its CPU time is that of
	// the whole process tree (Postfix).
	root int
	tree bool
	// stop ends the server.
	stop func()
	// db, when set, is the root of the database server the peer stores
	// into (PostgreSQL), whose writes are counted beside the peer's.
	db int
	// sqlite, when set, is the peer's SQLite database, whose WAL frames
	// are counted.
	sqlite string
}

// load is one run of the driver.
type load struct {
	conns   int           // concurrent sessions
	perConn bool          // one message per connection (else reused)
	msg     []byte        // the message, CRLF, dot-stuffed, without the final "."
	bdat    bool          // send with BDAT (CHUNKING) instead of DATA
	dur     time.Duration // how long new messages are started
	from    string
	to      func(i int) string
	// io counts what the server writes during the run (procio.go), with
	// scratch files in work.
	io   bool
	work string
}

// loadResult is what a run measured.
type loadResult struct {
	msgs    int64
	errs    int64
	err     error // the first error
	elapsed time.Duration
	cpu     time.Duration // the server's CPU time during the run
	// With load.io: what the server's processes wrote during the run
	// (ioDB: its database server's), their fsync and fdatasync calls (-1:
	// not counted), and the WAL frames of its SQLite database (-1: none).
	io, ioDB       ioCount
	syncs, syncsDB int
	walFrames      int64
	walPage        int64
	pgWAL          float64 // bytes of WAL the PostgreSQL server wrote (pg_stat_wal)
}

func (r loadResult) rate() float64 { return float64(r.msgs) / r.elapsed.Seconds() }

// cpuPerMsg is the server's CPU time per message, in milliseconds.
func (r loadResult) cpuPerMsg() float64 {
	if r.msgs == 0 {
		return 0
	}
	return float64(r.cpu.Microseconds()) / 1000 / float64(r.msgs)
}

// run drives p with l and measures the server's CPU time around it. With
// connections reused, the sessions are opened and authenticated before the
// clock and the CPU count start: what is measured is the steady state of
// message after message.
func (p *peer) run(l load) loadResult {
	if l.io {
		return p.runIO(l)
	}
	var cpu0 time.Duration
	res := drive(p, l, func() { cpu0 = p.cpu() })
	res.cpu = p.cpu() - cpu0
	return res
}

// runIO is run, counting what the server writes as well.
func (p *peer) runIO(l load) loadResult {
	var (
		cpu0     time.Duration
		io0, db0 ioCount
		from     time.Duration
		wal      *walCounter
		trees    [][]int
		trace    = startSyncTrace(l.work)
	)
	trees = append(trees, processTree(p.root))
	if p.db != 0 {
		trees = append(trees, processTree(p.db))
	}
	res := drive(p, l, func() {
		if p.sqlite != "" {
			wal = startWALCounter(p.sqlite)
		}
		io0 = treeIO(p.root)
		if p.db != 0 {
			db0 = treeIO(p.db)
		}
		from = monotonic()
		cpu0 = p.cpu()
	})
	res.cpu = p.cpu() - cpu0
	to := monotonic()
	res.io = treeIO(p.root).sub(io0)
	if p.db != 0 {
		res.ioDB = treeIO(p.db).sub(db0)
	}
	res.walFrames, res.walPage = wal.stop()
	syncs := trace.stop(from, to, trees)
	res.syncs, res.syncsDB = syncs[0], -1
	if p.db != 0 {
		res.syncsDB = syncs[1]
	}
	return res
}

func (p *peer) cpu() time.Duration {
	if p.root == 0 {
		return 0
	}
	if p.tree {
		return treeCPU(p.root)
	}
	return procCPU(p.root)
}

// drive runs the load; start is called when the measured part begins.
func drive(p *peer, l load, start func()) loadResult {
	var (
		n, errs  atomic.Int64
		firstErr atomic.Value
		last     atomic.Int64 // unix nanos of the last 250
		seq      atomic.Int64
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		errs.Add(1)
		firstErr.CompareAndSwap(nil, err)
	}
	conns := make([]*client, l.conns)
	if !l.perConn {
		for i := range conns {
			var err error
			if conns[i], err = dial(p, i); err != nil {
				fail(err)
			}
		}
	}
	start()
	t0 := time.Now()
	deadline := t0.Add(l.dur)
	for i := range l.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := conns[i]
			for time.Now().Before(deadline) {
				if c == nil {
					var err error
					if c, err = dial(p, i); err != nil {
						fail(err)
						time.Sleep(20 * time.Millisecond)
						continue
					}
				}
				send := c.send
				if l.bdat {
					send = c.sendBDAT
				}
				if err := send(l.from, l.to(int(seq.Add(1))), l.msg); err != nil {
					fail(err)
					c.close()
					c = nil
					continue
				}
				n.Add(1)
				last.Store(time.Now().UnixNano())
				if l.perConn {
					c.quit()
					c = nil
				}
			}
			if c != nil {
				c.quit()
			}
		}()
	}
	wg.Wait()
	res := loadResult{msgs: n.Load(), errs: errs.Load(), elapsed: time.Since(t0)}
	if t := last.Load(); t > 0 {
		res.elapsed = time.Unix(0, t).Sub(t0)
	}
	if e, ok := firstErr.Load().(error); ok {
		res.err = e
	}
	return res
}

// client is one SMTP connection.
type client struct {
	conn     net.Conn
	r        *bufio.Reader
	w        *bufio.Writer
	chunking bool // the server offers BDAT
}

// dial connects, from a loopback address of its own for each session (so
// that a run of short connections never runs out of ephemeral ports), reads
// the greeting, says EHLO and authenticates if the peer wants it.
func dial(p *peer, session int) (*client, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if strings.HasPrefix(p.addr, "127.") {
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+session%250))}
	}
	conn, err := d.Dial("tcp", p.addr)
	if err != nil {
		return nil, err
	}
	c := &client{conn: conn, r: bufio.NewReaderSize(conn, 4096), w: bufio.NewWriterSize(conn, 64<<10)}
	if _, err := c.reply(220); err != nil {
		conn.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	ehlo, err := c.cmdReply(250, "EHLO bench.example")
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.chunking = strings.Contains(ehlo, "CHUNKING")
	if p.user != "" {
		auth := base64.StdEncoding.EncodeToString([]byte("\x00" + p.user + "\x00" + p.pass))
		// smtp-sink answers AUTH with 250, everyone else with 235.
		if err := c.cmd(2, "AUTH PLAIN "+auth); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return c, nil
}

// cmd sends a command and reads its reply, which must have code want (or,
// when want is a single digit, a code of that class).
func (c *client) cmd(want int, line string) error {
	_, err := c.cmdReply(want, line)
	return err
}

func (c *client) cmdReply(want int, line string) (string, error) {
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return "", err
	}
	verb, _, _ := strings.Cut(line, " ")
	text, err := c.reply(want)
	if err != nil {
		return "", fmt.Errorf("%s: %w", verb, err)
	}
	return text, nil
}

// reply reads a (possibly multi-line) reply.
func (c *client) reply(want int) (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
	var text strings.Builder
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if len(line) < 4 {
			return "", fmt.Errorf("short reply %q", line)
		}
		text.WriteString(line)
		if line[3] == '-' {
			continue
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil {
			return "", fmt.Errorf("bad reply %q", line)
		}
		if code != want && !(want < 10 && code/100 == want) {
			return "", fmt.Errorf("reply %q", strings.TrimSpace(text.String()))
		}
		return text.String(), nil
	}
}

// send submits one message.
func (c *client) send(from, to string, msg []byte) error {
	return c.sendFrom(from, to, func(w io.Writer) error { _, err := w.Write(msg); return err })
}

// sendFrom submits one message written by body (CRLF, dot-stuffed).
func (c *client) sendFrom(from, to string, body func(io.Writer) error) error {
	if err := c.cmd(250, "MAIL FROM:<"+from+">"); err != nil {
		return err
	}
	if err := c.cmd(250, "RCPT TO:<"+to+">"); err != nil {
		return err
	}
	if err := c.cmd(354, "DATA"); err != nil {
		return err
	}
	if err := body(c.w); err != nil {
		return err
	}
	c.w.WriteString(".\r\n")
	if err := c.w.Flush(); err != nil {
		return err
	}
	if _, err := c.reply(250); err != nil {
		return fmt.Errorf("end of data: %w", err)
	}
	return nil
}

// sendBDAT submits one message in a single BDAT chunk (RFC 3030): the
// bytes as they are, no dot-stuffing and no end-of-data line to look for.
func (c *client) sendBDAT(from, to string, msg []byte) error {
	if err := c.cmd(250, "MAIL FROM:<"+from+">"); err != nil {
		return err
	}
	if err := c.cmd(250, "RCPT TO:<"+to+">"); err != nil {
		return err
	}
	fmt.Fprintf(c.w, "BDAT %d LAST\r\n", len(msg))
	c.w.Write(msg)
	if err := c.w.Flush(); err != nil {
		return err
	}
	if _, err := c.reply(250); err != nil {
		return fmt.Errorf("BDAT: %w", err)
	}
	return nil
}

func (c *client) quit() {
	c.cmd(221, "QUIT")
	c.conn.Close()
}

func (c *client) close() { c.conn.Close() }
