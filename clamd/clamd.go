// Package clamd scans content for malware with ClamAV's daemon, clamd.
//
// Each body or file is one INSTREAM command on a connection of its own:
// the command "zINSTREAM\0", then the content as chunks, each a 4-byte
// big-endian length and that many bytes, then a zero length; clamd answers
// "stream: OK", "stream: NAME FOUND" or "… ERROR", ended by a NUL byte.
// The content goes to clamd as it is written, a chunk per Write: nothing
// here holds more than the piece being written.
//
// clamd keeps a stream in a temporary file and scans it once the stream
// ends; a stream longer than its StreamMaxLength (25 MiB by default) is
// cut off with an error, so an operator's clamd must allow at least
// smtp.max_message_bytes (and MaxFileSize and MaxScanSize as much, or
// the bytes past them go unscanned).
//
// The protocol is small, and no maintained Go client was at hand; this
// one speaks only what the gateway needs: INSTREAM, PING and VERSION.
package clamd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
)

// Metrics receives the outcome of each scan. *ops.Metrics implements it.
type Metrics interface {
	// Scanned counts one scan by result ("clean", "infected" or "error")
	// and records how long clamd took to give its verdict once the
	// content had been sent.
	Scanned(result string, verdict time.Duration)
}

// Client scans through one clamd. It is safe for concurrent use: each
// scan has a connection of its own.
type Client struct {
	network, address string
	timeout          time.Duration
	logger           *slog.Logger
	metrics          Metrics
}

var _ securetextd.Scanner = (*Client)(nil)

// ParseAddress splits a clamd address as the configuration gives it:
// "unix:/run/clamav/clamd.ctl" or "tcp:127.0.0.1:3310".
func ParseAddress(s string) (network, address string, err error) {
	network, address, ok := strings.Cut(s, ":")
	switch {
	case !ok || address == "":
		return "", "", fmt.Errorf("%q is not unix:/path/to/clamd.ctl or tcp:host:port", s)
	case network == "unix":
		if !strings.HasPrefix(address, "/") {
			return "", "", fmt.Errorf("%q: the socket's path must be absolute", s)
		}
	case network == "tcp":
		host, port, err := net.SplitHostPort(address)
		if err != nil || host == "" || port == "" {
			return "", "", fmt.Errorf("%q: give tcp:host:port", s)
		}
	default:
		return "", "", fmt.Errorf("%q: the address must start with unix: or tcp: (as in unix:/run/clamav/clamd.ctl)", s)
	}
	return network, address, nil
}

// New returns a client of the clamd at addr (see ParseAddress). timeout
// bounds each wait on clamd: connecting, taking each chunk, and giving
// its verdict once the content has been sent. logger and metrics may be
// nil.
func New(addr string, timeout time.Duration, logger *slog.Logger, metrics Metrics) (*Client, error) {
	network, address, err := ParseAddress(addr)
	if err != nil {
		return nil, fmt.Errorf("clamd: %w", err)
	}
	if timeout <= 0 {
		return nil, errors.New("clamd: the timeout must be positive")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{network: network, address: address, timeout: timeout, logger: logger, metrics: metrics}, nil
}

// maxChunk bounds the chunks sent to clamd: a larger Write is cut.
const maxChunk = 1 << 20

// maxReply bounds what is read of clamd's answer.
const maxReply = 4 << 10

// Scan connects to clamd and starts an INSTREAM command. The stream
// fails once ctx is done.
func (c *Client) Scan(ctx context.Context) (securetextd.ScanStream, error) {
	conn, err := c.command(ctx, "INSTREAM")
	if err != nil {
		c.count("error", 0)
		c.logger.Warn("scan failed", "err", err)
		return nil, err
	}
	s := &stream{c: c, conn: conn, ctx: ctx}
	s.stop = context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return s, nil
}

// command connects and sends "z" + name + NUL.
func (c *Client) command(ctx context.Context, name string) (net.Conn, error) {
	d := net.Dialer{Timeout: c.timeout}
	conn, err := d.DialContext(ctx, c.network, c.address)
	if err != nil {
		return nil, fmt.Errorf("clamd: %w", err)
	}
	conn.SetWriteDeadline(time.Now().Add(c.timeout))
	if _, err := conn.Write([]byte("z" + name + "\x00")); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clamd: %s: %w", name, err)
	}
	return conn, nil
}

// Ping asks clamd whether it is there (PING, answered PONG).
func (c *Client) Ping(ctx context.Context) error {
	reply, err := c.ask(ctx, "PING")
	if err != nil {
		return err
	}
	if reply != "PONG" {
		return fmt.Errorf("clamd: PING answered %q", reply)
	}
	return nil
}

// Version returns clamd's version and the date of its signatures, as
// VERSION answers: "ClamAV 1.4.6/27300/Sun Dec  6 09:00:00 2026".
func (c *Client) Version(ctx context.Context) (string, error) {
	return c.ask(ctx, "VERSION")
}

// ask sends a command that takes no content and returns the answer.
func (c *Client) ask(ctx context.Context, name string) (string, error) {
	conn, err := c.command(ctx, name)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	reply, err := readReply(ctx, conn, c.timeout)
	if err != nil {
		return "", fmt.Errorf("clamd: %s: %w", name, err)
	}
	return reply, nil
}

func (c *Client) count(result string, d time.Duration) {
	if c.metrics != nil {
		c.metrics.Scanned(result, d)
	}
}

// stream is one INSTREAM command.
type stream struct {
	c    *Client
	conn net.Conn
	ctx  context.Context
	stop func() bool // stops the AfterFunc that ends a wait once ctx is done
	err  error       // the first failure: every later call returns it
	done bool        // Verdict or Abort was called
	hdr  [4]byte
}

// Write sends b to clamd as one chunk (or several, past maxChunk). It
// does not keep b.
func (s *stream) Write(b []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.done {
		return 0, errors.New("clamd: write after the verdict")
	}
	n := 0
	for len(b) > 0 {
		k := min(len(b), maxChunk)
		binary.BigEndian.PutUint32(s.hdr[:], uint32(k))
		if err := s.deadline(s.conn.SetWriteDeadline); err != nil {
			s.fail(err)
			return n, s.err
		}
		bufs := net.Buffers{s.hdr[:], b[:k]}
		if _, err := bufs.WriteTo(s.conn); err != nil {
			s.fail(s.cause(err))
			return n, s.err
		}
		n += k
		b = b[k:]
	}
	return n, nil
}

// cause explains a failed write: clamd may have said why before it
// closed the connection ("INSTREAM size limit exceeded. ERROR").
func (s *stream) cause(err error) error {
	if reply, rerr := readReply(s.ctx, s.conn, s.c.timeout); rerr == nil && reply != "" {
		return fmt.Errorf("clamd: %s", strings.TrimSuffix(reply, " ERROR"))
	}
	return fmt.Errorf("clamd: sending content: %w", err)
}

// deadline gives the next wait on clamd its timeout through set, unless
// the scan's context is done: the context is checked after the deadline
// is set, as the AfterFunc that ends a wait could otherwise have run just
// before, its past deadline replaced by this one.
func (s *stream) deadline(set func(time.Time) error) error {
	set(time.Now().Add(s.c.timeout))
	if err := s.ctx.Err(); err != nil {
		return fmt.Errorf("clamd: %w", err)
	}
	return nil
}

// fail records err as the scan's outcome, counts and logs it, and closes
// the connection.
func (s *stream) fail(err error) {
	s.err = err
	s.close()
	s.c.count("error", 0)
	s.c.logger.Warn("scan failed", "err", err)
}

func (s *stream) close() {
	s.done = true
	s.stop()
	s.conn.Close()
}

// Verdict sends the zero length that ends the content and reads clamd's
// answer.
func (s *stream) Verdict() (string, error) {
	if s.err != nil {
		return "", s.err
	}
	if s.done {
		return "", errors.New("clamd: the scan is over")
	}
	binary.BigEndian.PutUint32(s.hdr[:], 0)
	if err := s.deadline(s.conn.SetWriteDeadline); err != nil {
		s.fail(err)
		return "", s.err
	}
	if _, err := s.conn.Write(s.hdr[:]); err != nil {
		s.fail(s.cause(err))
		return "", s.err
	}
	start := time.Now()
	reply, err := readReply(s.ctx, s.conn, s.c.timeout)
	took := time.Since(start)
	if err != nil {
		s.fail(fmt.Errorf("clamd: waiting for the verdict: %w", err))
		return "", s.err
	}
	found, err := parseVerdict(reply)
	if err != nil {
		s.fail(err)
		return "", s.err
	}
	s.close()
	if found != "" {
		s.c.count("infected", took)
		s.c.logger.Warn("malware found", "signature", found)
		return found, nil
	}
	s.c.count("clean", took)
	return "", nil
}

// Abort closes the connection: clamd drops what it was sent.
func (s *stream) Abort() {
	if !s.done {
		s.close()
	}
}

// readReply reads an answer up to its NUL (or clamd's closing of the
// connection), waiting at most timeout, and not once ctx is done.
func readReply(ctx context.Context, conn net.Conn, timeout time.Duration) (string, error) {
	conn.SetReadDeadline(time.Now().Add(timeout))
	if err := ctx.Err(); err != nil { // see stream.deadline
		return "", err
	}
	var buf bytes.Buffer
	b := make([]byte, 512)
	for buf.Len() <= maxReply {
		n, err := conn.Read(b)
		buf.Write(b[:n])
		if i := bytes.IndexByte(buf.Bytes(), 0); i >= 0 {
			return strings.TrimSpace(string(buf.Bytes()[:i])), nil
		}
		if err == io.EOF {
			if buf.Len() == 0 {
				return "", errors.New("connection closed without an answer")
			}
			return strings.TrimSpace(buf.String()), nil
		}
		if err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("answer longer than %d bytes", maxReply)
}

// parseVerdict reads an INSTREAM answer: "stream: OK", "stream: NAME
// FOUND", or an error.
func parseVerdict(reply string) (string, error) {
	rest, ok := strings.CutPrefix(reply, "stream: ")
	switch {
	case ok && rest == "OK":
		return "", nil
	case ok && strings.HasSuffix(rest, " FOUND"):
		name := signature(strings.TrimSuffix(rest, " FOUND"))
		if name == "" {
			return "", fmt.Errorf("clamd: a finding without a name: %q", reply)
		}
		return name, nil
	case strings.HasSuffix(reply, " ERROR"):
		return "", fmt.Errorf("clamd: %s", strings.TrimSuffix(strings.TrimPrefix(reply, "stream: "), " ERROR"))
	}
	return "", fmt.Errorf("clamd: unexpected answer %q", reply)
}

// maxSignature bounds a signature's name as it is passed on.
const maxSignature = 128

// signature makes a signature's name safe to put in an SMTP reply, a
// page or a log: printable ASCII, without spaces, bounded.
func signature(s string) string {
	b := make([]byte, 0, min(len(s), maxSignature))
	for i := 0; i < len(s) && len(b) < maxSignature; i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f {
			c = '_'
		}
		b = append(b, c)
	}
	return string(b)
}
