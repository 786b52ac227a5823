package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd/internal/pgtest"
)

// failoverClientTimeout bounds every command and submission of the load's
// SMTP clients: a reply later than this is a hang.
const failoverClientTimeout = 40 * time.Second

// failoverLoad is SMTP load from several clients, each sending on a
// connection of a few messages, so that AUTH runs throughout; it records
// every reply.
type failoverLoad struct {
	addr string
	stop chan struct{}
	wg   sync.WaitGroup
	next atomic.Int64

	mu       sync.Mutex
	acked    []string       // phones (digits) of the messages answered 250
	replies  map[string]int // "451 4.3.0 at RCPT" → count
	failures []string       // 5xx replies, broken connections, timeouts
	acksN    atomic.Int64
	tempN    atomic.Int64
}

func (l *failoverLoad) run(clients int) {
	for range clients {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				if !l.session() {
					time.Sleep(100 * time.Millisecond) // a 4xx: the MTA retries later
				}
			}
		})
	}
}

// reply records what the client heard at step; it returns whether the
// session may go on.
func (l *failoverLoad) reply(step string, err error) bool {
	var se *gosmtp.SMTPError
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil:
		return true
	case errors.As(err, &se) && se.Code >= 400 && se.Code < 500:
		l.replies[fmt.Sprintf("%d %d.%d.%d at %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], step)]++
		l.tempN.Add(1)
	default:
		l.failures = append(l.failures, fmt.Sprintf("%s: %v", step, err))
	}
	return false
}

// session logs in and sends up to five messages, each to a phone of its
// own; it returns false after a refusal or a broken connection.
func (l *failoverLoad) session() bool {
	conn, err := net.DialTimeout("tcp", l.addr, 5*time.Second)
	if err != nil {
		return l.reply("connect", err)
	}
	c := gosmtp.NewClient(conn)
	c.CommandTimeout, c.SubmissionTimeout = failoverClientTimeout, failoverClientTimeout
	defer c.Close()
	if !l.reply("EHLO", c.Hello("mta.clinic.example")) ||
		!l.reply("AUTH", c.Auth(sasl.NewPlainClient("", faultSender, faultPassword))) {
		return false
	}
	for range 5 {
		select {
		case <-l.stop:
			c.Quit()
			return true
		default:
		}
		i := l.next.Add(1)
		phone := fmt.Sprintf("1212%03d%04d", 555+i/10000, i%10000)
		lines := 3
		if i%8 == 0 {
			lines = 8 << 10 // 256 KiB: a message that streams in chunks
		}
		msg := "From: Dr Who <dr.who@clinic.example>\r\nSubject: Results\r\n\r\n" +
			strings.Repeat("All normal. See you on Monday.\r\n", lines)
		if !l.reply("MAIL", c.Mail(faultSender, nil)) || !l.reply("RCPT", c.Rcpt(phone[1:]+"@secure.text", nil)) {
			return false
		}
		w, err := c.Data()
		if !l.reply("DATA", err) {
			return false
		}
		if _, err := io.WriteString(w, msg); err != nil {
			return l.reply("DATA", err)
		}
		if !l.reply("end of DATA", w.Close()) {
			return false
		}
		l.mu.Lock()
		l.acked = append(l.acked, phone)
		l.mu.Unlock()
		l.acksN.Add(1)
	}
	return l.reply("QUIT", c.Quit())
}

// waitFor polls cond every 50 ms until it holds, failing the test after
// within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFailover stops the PostgreSQL server under SMTP load from several
// clients for 10 s, then starts it again. Meanwhile senders get 4xx (451
// 4.3.0: try again), never a 5xx and never a hang; /readyz goes not
// ready; a link opens to the portal's try-again page. Once the server is
// back, the same gateway — never restarted — is ready again and takes
// mail, and every message that was acknowledged with 250 is texted.
func TestFailover(t *testing.T) {
	if !pgtest.Enabled() {
		t.Skip("needs PostgreSQL: runs with SECURETEXTD_TEST_ENGINE=postgres (make test's second pass)")
	}
	pgtest.Need(t)
	srv, err := pgtest.Start(false) // its own server: the test stops it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop) // after the gateway's Close, which cleans up first
	name, err := srv.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	vonage := newFakeVonage(t)
	dir := t.TempDir()
	cfg, err := ParseConfig([]byte(withPostgres(crashConfigBase(vonage.URL), srv.URL(name))), dir)
	if err != nil {
		t.Fatal(err)
	}
	m := startMain(t, cfg)
	if err := m.db.CreateSender(t.Context(), faultSender, faultPassword); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	status := func(path string) (int, http.Header, string) {
		resp, err := hc.Get("http://" + m.PortalAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}

	load := &failoverLoad{addr: m.SubmissionAddr, stop: make(chan struct{}), replies: map[string]int{}}
	load.run(6)
	defer func() {
		select {
		case <-load.stop:
		default:
			close(load.stop)
			load.wg.Wait()
		}
	}()
	waitFor(t, "20 messages acknowledged", 30*time.Second, func() bool { return load.acksN.Load() >= 20 })
	var link string
	waitFor(t, "a first text", 30*time.Second, func() bool {
		texts := vonage.sent()
		if len(texts) == 0 {
			return false
		}
		link = linkRE.FindStringSubmatch(texts[0].Text)[1]
		return true
	})
	if code, _, body := status("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before the outage: %d\n%s", code, body)
	}

	// The outage: 10 s without the database.
	srv.Halt()
	outage := time.Now()
	tempBefore := load.tempN.Load()
	waitFor(t, "/readyz not ready", 10*time.Second, func() bool {
		code, _, _ := status("/readyz")
		return code == http.StatusServiceUnavailable
	})
	code, header, body := status("/m/" + link)
	if code != http.StatusServiceUnavailable || header.Get("Retry-After") == "" || !strings.Contains(body, "try again") {
		t.Errorf("a link while the database is down: %d, Retry-After %q\n%s", code, header.Get("Retry-After"), body)
	}
	waitFor(t, "senders told to try again", 10*time.Second, func() bool { return load.tempN.Load() > tempBefore+5 })
	time.Sleep(time.Until(outage.Add(10 * time.Second)))
	ackedDown := load.acksN.Load()
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	t.Logf("database down for %v", time.Since(outage).Round(time.Millisecond))

	// The same gateway recovers on its own.
	waitFor(t, "/readyz ready again", 60*time.Second, func() bool {
		code, _, _ := status("/readyz")
		return code == http.StatusOK
	})
	waitFor(t, "20 messages acknowledged after the outage", 60*time.Second, func() bool { return load.acksN.Load() >= ackedDown+20 })
	close(load.stop)
	load.wg.Wait()
	if code, _, body := status("/m/" + link); code != http.StatusOK {
		t.Errorf("the link after the outage: %d\n%s", code, body)
	}

	load.mu.Lock()
	defer load.mu.Unlock()
	t.Logf("%d messages acknowledged; temporary failures: %v", len(load.acked), load.replies)
	for _, f := range load.failures {
		t.Errorf("not a 4xx: %s", f)
	}
	for reply := range load.replies {
		// 451 4.3.0: the database is down, try again. 454 4.7.0 at
		// AUTH: the AUTH throttle's cap on checks in progress from one
		// address, which six clients reach while checks wait on the
		// database.
		if !strings.HasPrefix(reply, "451 4.3.0 ") && reply != "454 4.7.0 at AUTH" {
			t.Errorf("a temporary failure other than 451 4.3.0: %s", reply)
		}
	}
	// Nothing acknowledged is lost: each acknowledged message's phone
	// gets its text.
	texted := func() map[string]bool {
		got := map[string]bool{}
		for _, tx := range vonage.sent() {
			got[tx.To] = true
		}
		return got
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := texted()
		var missing []string
		for _, p := range load.acked {
			if !got[p] {
				missing = append(missing, p)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged messages never texted, e.g. %v", len(missing), len(load.acked), missing[:min(5, len(missing))])
		}
		time.Sleep(100 * time.Millisecond)
	}
}
