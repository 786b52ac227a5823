package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"filippo.io/age"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	_ "github.com/mattn/go-sqlite3"
)

// runDiscard serves SMTP on addr with go-smtp, accepting any AUTH and
// reading every message to its end into nothing: the ceiling of the SMTP
// library the gateway is built on. It runs as its own process so that its
// CPU time can be read like the other servers'.
func runDiscard(addr string) {
	s := gosmtp.NewServer(discardBackend{})
	s.Domain = "discard.bench"
	s.AllowInsecureAuth = true
	s.MaxMessageBytes = 200 << 20
	s.ReadTimeout, s.WriteTimeout = 5*time.Minute, 5*time.Minute
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fatalf("discard: %v", err)
	}
	fatalf("discard: %v", s.Serve(l))
}

type discardBackend struct{}

func (discardBackend) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return discardSession{}, nil }

type discardSession struct{}

func (discardSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (discardSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(string, string, string) error { return nil }), nil
}
func (discardSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (discardSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (discardSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
func (discardSession) Reset()        {}
func (discardSession) Logout() error { return nil }

// ceilingResult is what the ceiling subcommand prints, as JSON.
type ceilingResult struct {
	Seconds float64 `json:"seconds"`
	PeakKiB int64   `json:"peak_kib"`
}

// runCeiling is the ceiling for one large message: the same bytes, read
// from a file, sealed with age to a hybrid post-quantum recipient (as the
// gateway seals) and written into SQLite as 1 MiB rows, each in its own
// transaction, with the gateway's settings (WAL, synchronous=FULL,
// secure_delete). No SMTP, no MIME, no base64: what is left is the cost of
// sealing and of writing durably.
func runCeiling(msgPath, dbPath string) {
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		fatalf("ceiling: %v", err)
	}
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?_journal_mode=WAL&_synchronous=FULL&_secure_delete=on")
	if err != nil {
		fatalf("ceiling: %v", err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE chunks (seq INTEGER PRIMARY KEY, data BLOB NOT NULL) STRICT`); err != nil {
		fatalf("ceiling: %v", err)
	}
	f, err := os.Open(msgPath)
	if err != nil {
		fatalf("ceiling: %v", err)
	}
	start := time.Now()
	cw := &chunkWriter{db: db, buf: make([]byte, 0, 1<<20)}
	w, err := age.Encrypt(cw, id.Recipient())
	if err != nil {
		fatalf("ceiling: %v", err)
	}
	if _, err := io.CopyBuffer(w, f, make([]byte, 64<<10)); err != nil {
		fatalf("ceiling: %v", err)
	}
	if err := w.Close(); err != nil {
		fatalf("ceiling: %v", err)
	}
	if err := cw.flush(); err != nil {
		fatalf("ceiling: %v", err)
	}
	elapsed := time.Since(start)
	db.Close()
	peak, err := procStatus(os.Getpid(), "VmHWM")
	if err != nil {
		fatalf("ceiling: %v", err)
	}
	json.NewEncoder(os.Stdout).Encode(ceilingResult{Seconds: elapsed.Seconds(), PeakKiB: peak})
}

// chunkWriter writes what it is given as 1 MiB rows.
type chunkWriter struct {
	db  *sql.DB
	buf []byte
	seq int
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(cap(c.buf)-len(c.buf), len(p))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == cap(c.buf) {
			if err := c.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (c *chunkWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	c.seq++
	if _, err := c.db.Exec(`INSERT INTO chunks (seq, data) VALUES (?, ?)`, c.seq, c.buf); err != nil {
		return fmt.Errorf("insert chunk %d: %w", c.seq, err)
	}
	c.buf = c.buf[:0]
	return nil
}

// sqliteVersion is the version of the SQLite that mattn/go-sqlite3
// bundles, which the gateway and the ceiling run on.
func sqliteVersion() string {
	db, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		return "?"
	}
	defer db.Close()
	var v string
	if err := db.QueryRow("SELECT sqlite_version()").Scan(&v); err != nil {
		return "?"
	}
	return v
}
