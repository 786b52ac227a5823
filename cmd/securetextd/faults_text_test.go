package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd/internal/need"
)

// gatedVonage speaks Vonage's SMS API and accepts every text, but holds
// the first attempt for the phone gated until release is closed (telling
// arrived when it comes), so that a test can fill the disk between the
// provider taking a text and the gateway recording it.
type gatedVonage struct {
	*httptest.Server
	gated   string
	arrived chan struct{}
	release chan struct{}

	mu       sync.Mutex
	accepted map[string]int // per phone (digits)
}

func newGatedVonage(t *testing.T, gated string) *gatedVonage {
	f := &gatedVonage{gated: gated, arrived: make(chan struct{}), release: make(chan struct{}), accepted: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/sms/json" || r.ParseForm() != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		to := r.PostForm.Get("to")
		f.mu.Lock()
		first := to == f.gated && f.accepted[to] == 0
		f.accepted[to]++
		n := f.accepted[to]
		f.mu.Unlock()
		if first {
			close(f.arrived)
			<-f.release
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"message-count":"1","messages":[{"to":%q,"message-id":"0D%014d","status":"0","remaining-balance":"3.14","message-price":"0.03","network":"12345"}]}`, to, n)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *gatedVonage) count(to string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accepted[to]
}

// mountTmpfs mounts a tmpfs of size at a new directory and unmounts it
// when the test ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	need.Root(t, "to mount a tmpfs")
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	return mnt
}

// TestTextsWhileDiskFull: the provider accepts a text just as the disk
// fills, so that the gateway cannot record it as sent. The text is not
// sent again (one copy at the provider); the next text still goes out;
// /readyz says not ready while commits fail for lack of space; and once
// space is freed, both are recorded as sent and /readyz is ready again.
func TestTextsWhileDiskFull(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, "24m")
	const first, second = "12125550161", "12125550162"
	vonage := newGatedVonage(t, first)
	relay := newTestRelay(t)
	dir := t.TempDir()
	// The store stays on SQLite: what fills up is its file system.
	cfg, err := ParseConfig([]byte(faultConfigText(vonage.URL, relay.addr, mnt, 10)), dir)
	if err != nil {
		t.Fatal(err)
	}
	// Not startFaultMain: the gated request must outlast the fault's
	// set-up, not the one second it gives a provider to answer.
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), MailTLS: relay.client}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := m.db.CreateSender(t.Context(), faultSender, faultPassword); err != nil {
		t.Fatal(err)
	}
	readyz := func() (int, string) { return getReadyz(t, m) }
	if status, body := readyz(); status != http.StatusOK {
		t.Fatalf("/readyz before the fault: %d\n%s", status, body)
	}

	if err := submitPlain(t, m.SubmissionAddr, first[1:], "First", 1000); err != nil {
		t.Fatal(err)
	}
	select {
	case <-vonage.arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the first text never reached the provider")
	}
	// The worker waits for the provider's answer. The second message is
	// stored while there is space; then the disk fills to the last byte,
	// with an empty WAL, so that no commit finds room already allocated.
	if err := submitPlain(t, m.SubmissionAddr, second[1:], "Second", 1000); err != nil {
		t.Fatal(err)
	}
	truncateWAL(t, m.Config.Path(m.Config.Store.Path))
	filler := filepath.Join(mnt, "filler")
	fill(t, filler)
	close(vonage.release)

	// The second text goes out although the first could not be recorded,
	// and the first is not sent again.
	deadline := time.Now().Add(20 * time.Second)
	for vonage.count(second) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the second text never went out while the first could not be recorded (first sent %d times)", vonage.count(first))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := vonage.count(first); n != 1 {
		t.Errorf("the first text was sent %d times, want once", n)
	}
	var texted int
	countRows(t, m, `SELECT count(*) FROM texts WHERE state = 'texted'`, &texted)
	if texted != 0 {
		t.Fatalf("%d texts recorded as sent on a full disk: the fault did not happen", texted)
	}
	// Not ready while commits fail for lack of space.
	deadline = time.Now().Add(10 * time.Second)
	for {
		status, body := readyz()
		if status == http.StatusServiceUnavailable && strings.Contains(body, "lack of space") {
			t.Logf("/readyz on a full disk:\n%s", body)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz on a full disk: %d\n%s", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Space again: both texts are recorded as sent, each sent once, and
	// the gateway is ready.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(60 * time.Second)
	for texted < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 texts recorded as sent after space returned", texted)
		}
		time.Sleep(100 * time.Millisecond)
		countRows(t, m, `SELECT count(*) FROM texts WHERE state = 'texted'`, &texted)
	}
	for _, p := range []string{first, second} {
		if n := vonage.count(p); n != 1 {
			t.Errorf("%s: sent %d times, want once", p, n)
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		status, body := readyz()
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after space returned: %d\n%s", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// truncateWAL checkpoints the database's WAL into the database and
// truncates it to nothing, from a connection of the test's own.
func truncateWAL(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 50 {
		var busy, log, done int
		if err := db.QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &log, &done); err != nil {
			t.Fatal(err)
		}
		if busy == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the WAL could not be truncated")
}

// getReadyz asks the gateway's /readyz (on the portal listener).
func getReadyz(t *testing.T, m *Main) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + m.PortalAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// greeted waits for the SMTP greeting and EHLO at addr. A Main closed
// before its SMTP server has begun to serve can wait for ever: go-smtp's
// Shutdown closes only the listeners Serve has registered (the start-up
// race of issue 10, item 6); a test that only looks at the store of a
// gateway it just started waits for it to serve before it closes it.
func greeted(t *testing.T, addr string) {
	t.Helper()
	c, err := gosmtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		t.Fatal(err)
	}
	c.Quit()
}
