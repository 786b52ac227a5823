package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd/store"
)

// crashKills is how many times TestCrashSafety kills the daemon: 20 in
// `make test`, more under `make soak` (SECURETEXTD_SOAK_KILLS).
func crashKills(t *testing.T) int {
	if v := os.Getenv("SECURETEXTD_SOAK_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("SECURETEXTD_SOAK_KILLS=%q: want a positive number", v)
		}
		return n
	}
	return 20
}

// crashConfigText is a daemon for the crash test: plain-text AUTH on
// loopback (the kills are what is tested, not TLS), texts at once to the
// fake Vonage server, no limits, since every message goes to a phone of
// its own.
func crashConfigText(t testing.TB, vonageURL string) string {
	t.Helper()
	return withTestEngine(t, crashConfigBase(vonageURL))
}

// crashConfigBase is crashConfigText with the store on SQLite.
func crashConfigBase(vonageURL string) string {
	return fmt.Sprintf(`
[smtp]
submission_listen = "127.0.0.1:0"
allow_insecure_auth = true
[store]
path = "data/db.sqlite"
key_file = "data/key.txt"
[console]
listen = "127.0.0.1:0"
[portal]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:9"
[sms]
provider = "vonage"
rate = 1000
org = "Test Clinic"
[sms.vonage]
api_key = "abcd1234"
api_secret = "s3cret-s3cret"
from = "TestClinic"
base_url = %q
[limits]
daily_per_sender = 0
per_phone_per_hour = 0
`, vonageURL)
}

// outcome is what the SMTP client saw of one message.
type outcome int

const (
	acked   outcome = iota // 250 after the data
	refused                // an SMTP reply with an error code
	unknown                // no answer: the connection broke
)

// sentMessage is one message of the load, to a phone of its own, with a
// marker in its subject that the test reads back through the store.
type sentMessage struct {
	phone   string // digits, as Vonage gets them
	marker  string
	outcome outcome
	reply   string
}

// crashLoad submits messages on a few sessions to whatever daemon is
// running, reconnecting after each kill, and records what each message's
// client saw.
type crashLoad struct {
	t    *testing.T
	addr atomic.Pointer[string] // the running daemon's submission address
	// pick, when set, chooses the address of each new connection instead
	// (nil: none is up); several nodes share the load (cluster_test.go).
	pick func() *string
	// small sends only short messages, pause apart on each session.
	small bool
	pause time.Duration
	next  atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup

	mu   sync.Mutex
	msgs []sentMessage
}

func (l *crashLoad) record(m sentMessage) {
	l.mu.Lock()
	l.msgs = append(l.msgs, m)
	l.mu.Unlock()
}

func (l *crashLoad) run(sessions int) {
	for range sessions {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				l.session()
			}
		}()
	}
}

// session sends messages on one connection until it breaks or the load
// stops.
func (l *crashLoad) session() {
	addr := l.addr.Load()
	if l.pick != nil {
		addr = l.pick()
	}
	if addr == nil {
		time.Sleep(10 * time.Millisecond)
		return
	}
	c, err := gosmtp.Dial(*addr)
	if err != nil {
		time.Sleep(10 * time.Millisecond)
		return
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "dr.who@clinic.example", "correct horse battery")); err != nil {
		time.Sleep(10 * time.Millisecond)
		return
	}
	for {
		select {
		case <-l.stop:
			c.Quit()
			return
		default:
		}
		i := l.next.Add(1)
		m := sentMessage{phone: fmt.Sprintf("1212%03d%04d", 555+i/10000, i%10000), marker: fmt.Sprintf("crash-marker-%06d", i)}
		// Mostly small messages; every 4th is over the store's 1 MiB
		// flush threshold, so that kills also land while pending blobs
		// are being written.
		lines := 1 + int(i%64)*8
		if i%4 == 0 && !l.small {
			lines = 40 << 10
		}
		msg := "From: Dr Who <dr.who@clinic.example>\r\n" +
			"Subject: Results " + m.marker + "\r\n" +
			"Message-ID: <" + m.marker + "@clinic.example>\r\n" +
			"\r\n" + strings.Repeat("All normal. See you on Monday.\r\n", lines)
		err := c.SendMail("dr.who@clinic.example", []string{m.phone[1:] + "@secure.text"}, strings.NewReader(msg))
		var se *gosmtp.SMTPError
		switch {
		case err == nil:
			m.outcome = acked
		case errors.As(err, &se):
			m.outcome, m.reply = refused, se.Error()
		default:
			m.outcome, m.reply = unknown, err.Error()
		}
		l.record(m)
		if m.outcome == unknown {
			return
		}
		time.Sleep(l.pause)
	}
}

// TestCrashSafety runs SMTP load against the daemon as a child process and
// kills it with SIGKILL at random moments, at least 20 times, restarting it
// each time. At the end: every message that got 250 is stored and its text
// went out at least once; a message that got an error is not stored, and
// one that got no answer is stored whole or not at all (no pending blobs
// after the start-up sweep, no message without its parts, conversation and
// outbox job); no text went out twice beyond one per kill (the text in
// flight at that kill); PRAGMA integrity_check passes.
func TestCrashSafety(t *testing.T) {
	kills := crashKills(t)
	vonage := newFakeVonage(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "securetextd.toml")
	if err := os.WriteFile(cfgPath, []byte(crashConfigText(t, vonage.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"user", "add", "dr.who@clinic.example", "--config", cfgPath, "--password-stdin"},
		strings.NewReader("correct horse battery\n"), os.Stdout, os.Stderr); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, cfg)

	load := &crashLoad{t: t, stop: make(chan struct{})}
	load.run(4)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	start := time.Now()
	midUpload := 0
	for k := range kills {
		d := startDaemonQuiet(t, cfgPath)
		load.addr.Store(&d.submission)
		// A random moment: during the start-up sweep, mid-DATA, between
		// the commit and the 250, while a text is being sent.
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		load.addr.Store(nil)
		if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		d.cmd.Wait()
		// Coverage: how often a kill left an upload unfinished.
		var pending int
		raw.QueryRow(`SELECT count(*) FROM blobs WHERE state = 'pending'`).Scan(&pending)
		if pending > 0 {
			midUpload++
		}
		if k%5 == 4 {
			t.Logf("%d kills, %d messages so far", k+1, load.next.Load())
		}
	}
	close(load.stop)
	load.wg.Wait()

	// The last start, with no load: it sweeps, then drains the outbox.
	d := startDaemonQuiet(t, cfgPath)
	counts := func() map[outcome]int {
		n := map[outcome]int{}
		for _, m := range load.msgs {
			n[m.outcome]++
		}
		return n
	}()
	t.Logf("%d kills in %v (%d of them mid-upload): %d messages acknowledged, %d refused, %d without an answer",
		kills, time.Since(start).Round(time.Millisecond), midUpload, counts[acked], counts[refused], counts[unknown])
	if counts[acked] < kills {
		t.Fatalf("only %d messages were acknowledged: the load did not run", counts[acked])
	}
	for _, m := range load.msgs {
		if m.outcome == refused {
			t.Errorf("message %s was refused: %s", m.marker, m.reply)
		}
	}

	waitTextsSent(t, raw, time.Minute, "the last start")
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v", err)
	}

	logText, _ := os.ReadFile(filepath.Join(dir, "daemon.log"))
	t.Logf("the start-up sweep removed unfinished uploads %d times", strings.Count(string(logText), "removed unfinished uploads"))

	texts := map[string]int{}
	for _, tx := range vonage.sent() {
		texts[tx.To]++
	}
	checkCrashStore(t, cfg, load.msgs, texts, kills)
}

// checkCrashStore opens the database the daemon left and checks it against
// what the clients saw and the texts that went out.
func checkCrashStore(t *testing.T, cfg Config, msgs []sentMessage, texts map[string]int, kills int) {
	t.Helper()
	raw := rawDB(t, cfg)
	if cfg.Store.Driver != store.Postgres {
		// SQLite's file survived the kills whole. (PostgreSQL's server
		// was never killed; it checks foreign keys on every write.)
		var integrity string
		if err := raw.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
			t.Errorf("PRAGMA integrity_check: %q, %v", integrity, err)
		}
		rows, err := raw.Query(`PRAGMA foreign_key_check`)
		if err != nil {
			t.Fatal(err)
		}
		if rows.Next() {
			t.Error("PRAGMA foreign_key_check reports rows")
		}
		rows.Close()
	}
	for _, c := range []struct{ what, query string }{
		{"pending blobs (an upload cut short, not swept)", `SELECT count(*) FROM blobs WHERE state = 'pending'`},
		{"committed blobs that no part uses", `SELECT count(*) FROM blobs WHERE state = 'committed' AND id NOT IN (SELECT blob_id FROM parts)`},
		{"messages missing parts", `SELECT count(*) FROM messages m WHERE part_count != (SELECT count(*) FROM parts p WHERE p.message_id = m.id)`},
		{"messages in no conversation", `SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM conversation_messages c WHERE c.message_id = m.id)`},
		{"messages without their text job", `SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM texts x JOIN jobs j ON j.id = x.job_id WHERE x.message_id = m.id AND j.kind = 'text')`},
		{"text jobs not done", `SELECT count(*) FROM jobs WHERE kind = 'text' AND state != 'done'`},
	} {
		var n int
		if err := raw.QueryRow(c.query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if n != 0 {
			t.Errorf("%d %s", n, c.what)
		}
	}

	// Every conversation's phone got its text: a message that was stored
	// is notified, whether or not its client heard the 250.
	stored := map[string]int{} // conversations per phone (digits)
	prows, err := raw.Query(`SELECT phone FROM conversations`)
	if err != nil {
		t.Fatal(err)
	}
	for prows.Next() {
		var phone string
		prows.Scan(&phone)
		stored[strings.TrimPrefix(phone, "+")]++
	}
	prows.Close()

	// The markers, read back through the store with the key.
	keys, err := store.LoadKeyFile(cfg.Path(cfg.Store.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenWith(t.Context(), cfg.storeOptions(), keys)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	markers := map[string]int{}
	ids, err := raw.Query(`SELECT id FROM messages`)
	if err != nil {
		t.Fatal(err)
	}
	var idList []int64
	for ids.Next() {
		var id int64
		ids.Scan(&id)
		idList = append(idList, id)
	}
	ids.Close()
	for _, id := range idList {
		m, err := db.Message(context.Background(), id)
		if err != nil {
			t.Fatalf("message %d: %v", id, err)
		}
		for _, f := range strings.Fields(m.Subject) {
			if strings.HasPrefix(f, "crash-marker-") {
				markers[f]++
			}
		}
	}

	var ackedN, unknownStored int
	for _, m := range msgs {
		switch m.outcome {
		case acked:
			ackedN++
			if markers[m.marker] != 1 || stored[m.phone] != 1 {
				t.Errorf("%s got 250 but is stored %d times (%d conversations for %s)", m.marker, markers[m.marker], stored[m.phone], m.phone)
			}
			if texts[m.phone] == 0 {
				t.Errorf("%s got 250 but its text never went out", m.marker)
			}
		case refused:
			if markers[m.marker] != 0 {
				t.Errorf("%s was refused (%s) but is stored", m.marker, m.reply)
			}
		case unknown:
			if markers[m.marker] > 1 {
				t.Errorf("%s is stored %d times", m.marker, markers[m.marker])
			}
			unknownStored += markers[m.marker]
		}
	}
	if len(markers) != len(idList) {
		t.Errorf("%d messages stored, %d distinct markers", len(idList), len(markers))
	}
	dups := 0
	for phone, n := range stored {
		if texts[phone] == 0 {
			t.Errorf("the message to %s is stored but its text never went out", phone)
		}
		dups += max(0, texts[phone]-n)
	}
	for phone := range texts {
		if stored[phone] == 0 {
			t.Errorf("a text went to %s, whose message is not stored", phone)
		}
	}
	t.Logf("stored %d messages (%d acknowledged, %d of those without an answer); %d texts sent twice", len(idList), ackedN, unknownStored, dups)
	if dups > kills {
		t.Errorf("%d texts went out twice: more than the %d kills can explain", dups, kills)
	}
}

// waitTextsSent waits until the outbox in raw holds no pending text job,
// and fails t if one is still pending after within, counted from since.
func waitTextsSent(t *testing.T, raw *sql.DB, within time.Duration, since string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var pending int
		if err := raw.QueryRow(`SELECT count(*) FROM jobs WHERE kind = 'text' AND state = 'pending'`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d texts still pending %v after %s", pending, within, since)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startDaemonQuiet is startDaemon without the daemon's log in the test
// output, which twenty restarts under load would flood; the log is kept
// in a file and shown if the test fails.
func startDaemonQuiet(t *testing.T, cfgPath string) *daemon {
	t.Helper()
	return startDaemonLog(t, cfgPath, filepath.Join(filepath.Dir(cfgPath), "daemon.log"))
}

// startDaemonLog starts the daemon as startDaemon does, with its log
// appended to logPath; when the test fails, the log's end is shown.
func startDaemonLog(t *testing.T, cfgPath, logPath string) *daemon {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "serve", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "SECURETEXTD_RUN_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd}
	found := make(chan []string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if m := startedRE.FindStringSubmatch(line); m != nil {
				select {
				case found <- m:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		d.cmd.Wait()
		<-copied
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("end of the daemon's log (%s):\n%s", logPath, b)
		}
	})
	select {
	case m := <-found:
		d.submission, d.portal = m[1], m[2]
	case <-time.After(60 * time.Second):
		t.Fatal("daemon did not start")
	}
	return d
}
