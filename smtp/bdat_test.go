package smtp

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// closeWatch is a Metrics that reports each connection the server has
// finished with: go-smtp closes a connection only after its last command
// (and the Data behind it) returned, so once it is closed the store holds
// everything that connection will ever store.
type closeWatch struct {
	nopMetrics
	closed chan struct{}
}

func newCloseWatch() *closeWatch { return &closeWatch{closed: make(chan struct{}, 1000)} }

func (w *closeWatch) SessionClosed(string) { w.closed <- struct{}{} }

func (w *closeWatch) wait(t *testing.T) {
	t.Helper()
	select {
	case <-w.closed:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not close the connection")
	}
}

// wantNothingQueued asserts that no message is stored and no text is
// waiting to be sent.
func wantNothingQueued(t *testing.T, db *store.DB) {
	t.Helper()
	if n := countMessages(t, db); n != 0 {
		t.Errorf("%d messages stored, want none", n)
	}
	job, err := db.NextJob(t.Context(), time.Now().Add(time.Hour), securetextd.JobKindText)
	switch {
	case err == nil:
		t.Errorf("text job %d is queued, want none", job.ID)
	case securetextd.ErrorCode(err) != securetextd.ENOTFOUND:
		t.Fatal(err)
	}
}

const bdatMessage = "From: " + testAccount + "\r\nSubject: results\r\n\r\nYour results are normal.\r\n"

// TestBDATCutShort declares a last chunk of 2000 bytes, sends 100 and
// closes the connection, on both listeners: nothing may be stored or
// texted. go-smtp v0.25.1 took the end of the connection for the end of
// the chunk and handed the backend a truncated message as a whole one;
// docs/go-smtp-bdat.patch, carried in third_party/go-smtp, ends the
// transaction instead. A chunk sent whole and followed at once by the
// close is stored: a client that hangs up without waiting for the reply
// must not lose its message. The same cut made by ending TLS
// (close_notify) with TCP left open is refused as well.
func TestBDATCutShort(t *testing.T) {
	short := bdatMessage + strings.Repeat("x", 100-len(bdatMessage)-2) + "\r\n"
	if len(short) != 100 {
		t.Fatalf("message of %d bytes", len(short))
	}
	// listeners returns a raw session ready for BDAT on each listener.
	listeners := map[string]func(t *testing.T, w *closeWatch) (net.Conn, *store.DB){
		"submission": func(t *testing.T, w *closeWatch) (net.Conn, *store.DB) {
			ts := newTestServer(t, func(c *Config) { c.AllowInsecureAuth = true; c.Metrics = w })
			s := newRawSession(t, ts)
			s.cmd("MAIL FROM:<"+testAccount+">", "250")
			s.cmd("RCPT TO:<2125550123@secure.text>", "250")
			return s.conn, ts.db
		},
		"relay": func(t *testing.T, w *closeWatch) (net.Conn, *store.DB) {
			rs := newRelayServer(t, newTestDNS(t), func(c *RelayConfig) {
				c.Policy = PolicyTrustedNetwork
				c.SenderDomains = []string{"clinic.example"}
				c.Metrics = w
			})
			s := dialRaw(t, rs.addr, "mta.clinic.example")
			s.cmd("MAIL FROM:<"+testAccount+">", "250")
			s.cmd("RCPT TO:<2125550123@secure.text>", "250")
			return s.conn, rs.db
		},
	}
	for name, open := range listeners {
		t.Run(name+"/cut short", func(t *testing.T) {
			w := newCloseWatch()
			conn, db := open(t, w)
			fmt.Fprintf(conn, "BDAT 2000 LAST\r\n%s", short)
			conn.Close()
			w.wait(t)
			wantNothingQueued(t, db)
		})
		t.Run(name+"/whole, then closed at once", func(t *testing.T) {
			w := newCloseWatch()
			conn, db := open(t, w)
			fmt.Fprintf(conn, "BDAT %d LAST\r\n%s", len(short), short)
			conn.Close()
			w.wait(t)
			if n := countMessages(t, db); n != 1 {
				t.Errorf("%d messages stored, want the whole chunk's one", n)
			}
		})
	}
	t.Run("submission/cut short by a TLS close_notify", func(t *testing.T) {
		w := newCloseWatch()
		ts := newTestServer(t, func(c *Config) { c.Metrics = w })
		cutByCloseNotify(t, ts, short)
		w.wait(t)
		wantNothingQueued(t, ts.db)
	})
}

// cutByCloseNotify logs in over STARTTLS, declares a last chunk of 2000
// bytes, sends short and ends the TLS stream with a close_notify alert,
// leaving TCP open: go-smtp reads the end of the stream inside the chunk
// while the connection under it is still up.
func cutByCloseNotify(t *testing.T, ts *testServer, short string) {
	t.Helper()
	s := dialRaw(t, ts.addr, "client.test")
	s.cmd("STARTTLS", "220")
	tc := tls.Client(s.conn, ts.tls)
	s = &rawSession{t: t, conn: tc, r: bufio.NewReader(tc)}
	s.cmd("EHLO client.test", "250")
	s.login(testAccount)
	s.cmd("MAIL FROM:<"+testAccount+">", "250")
	s.cmd("RCPT TO:<2125550123@secure.text>", "250")
	fmt.Fprintf(tc, "BDAT 2000 LAST\r\n%s", short)
	if err := tc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
}

// TestBDATChunks checks that a message sent in several chunks is stored
// whole, and that one whose last chunk never comes is not.
func TestBDATChunks(t *testing.T) {
	w := newCloseWatch()
	ts := newTestServer(t, func(c *Config) { c.AllowInsecureAuth = true; c.Metrics = w })
	s := newRawSession(t, ts)
	s.cmd("MAIL FROM:<"+testAccount+">", "250")
	s.cmd("RCPT TO:<2125550123@secure.text>", "250")
	half := len(bdatMessage) / 2
	fmt.Fprintf(s.conn, "BDAT %d\r\n%s", half, bdatMessage[:half])
	s.expect("250")
	fmt.Fprintf(s.conn, "BDAT %d LAST\r\n%s", len(bdatMessage)-half, bdatMessage[half:])
	s.expect("250")
	if n := countMessages(t, ts.db); n != 1 {
		t.Fatalf("%d messages stored, want 1", n)
	}

	s = newRawSession(t, ts)
	s.cmd("MAIL FROM:<"+testAccount+">", "250")
	s.cmd("RCPT TO:<2125550123@secure.text>", "250")
	fmt.Fprintf(s.conn, "BDAT %d\r\n%s", half, bdatMessage[:half])
	s.expect("250")
	s.conn.Close()
	w.wait(t)
	if n := countMessages(t, ts.db); n != 1 {
		t.Errorf("%d messages stored, want only the first", n)
	}
}
