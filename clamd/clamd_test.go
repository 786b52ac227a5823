package clamd_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/securetextd/securetextd/clamd"
	"github.com/securetextd/securetextd/internal/clamdtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	clamdtest.StopShared()
	os.Exit(code)
}

// counts records what a client reports.
type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) Scanned(result string, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[result]++
}

func (c *counts) get(result string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[result]
}

// scan sends content to the client in writes of size step.
func scan(t *testing.T, c *clamd.Client, content []byte, step int) (string, error) {
	t.Helper()
	s, err := c.Scan(t.Context())
	if err != nil {
		return "", err
	}
	for b := content; len(b) > 0; {
		k := min(step, len(b))
		if _, err := s.Write(b[:k]); err != nil {
			return "", err
		}
		b = b[k:]
	}
	return s.Verdict()
}

// TestScan sends clean content, the EICAR file (alone, and in the middle
// of other bytes, cut across writes) and the test-made sample to the real
// clamd, and reads its verdicts.
func TestScan(t *testing.T) {
	srv := clamdtest.Shared(t)
	m := &counts{}
	c, err := clamd.New(srv.Addr(), 10*time.Second, nil, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Version(t.Context()); err != nil || !strings.HasPrefix(v, "ClamAV ") {
		t.Fatalf("version %q, %v", v, err)
	}
	padded := append(append(bytes.Repeat([]byte("a clean line of text\n"), 10000), clamdtest.EICAR()...), bytes.Repeat([]byte("more\n"), 1000)...)
	for _, tc := range []struct {
		name    string
		content []byte
		step    int
		want    string
	}{
		{"clean", bytes.Repeat([]byte("Your results are normal.\n"), 100000), 32 << 10, ""},
		{"empty", nil, 1, ""},
		{"eicar", clamdtest.EICAR(), 1 << 20, clamdtest.EICARName},
		{"eicar within, cut in 7-byte writes", padded, 7, clamdtest.EICARName},
		{"sample", clamdtest.Sample(), 32 << 10, clamdtest.SampleName},
		{"sample cut short", clamdtest.Sample()[1:], 32 << 10, ""},
		{"eicar after 3 MiB, in one write", append(bytes.Repeat([]byte{0}, 3<<20), clamdtest.EICAR()...), 3 << 20, clamdtest.EICARName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			found, err := scan(t, c, tc.content, tc.step)
			if err != nil {
				t.Fatal(err)
			}
			if found != tc.want {
				t.Fatalf("found %q, want %q", found, tc.want)
			}
		})
	}
	if m.get("clean") != 3 || m.get("infected") != 4 || m.get("error") != 0 {
		t.Errorf("counted %v", m.n)
	}
}

// TestScanFailures: a clamd that is not there, one that stops answering
// (SIGSTOP), one that refuses a stream over its StreamMaxLength, and a
// context cancelled mid-stream all end in an error, never a verdict.
func TestScanFailures(t *testing.T) {
	srv := clamdtest.Own(t)
	m := &counts{}
	c, err := clamd.New(srv.Addr(), 500*time.Millisecond, nil, m)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("paused", func(t *testing.T) {
		if err := syscall.Kill(srv.PID(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer syscall.Kill(srv.PID(), syscall.SIGCONT)
		// The kernel still accepts the connection; nobody answers.
		_, err := scan(t, c, []byte("hello"), 5)
		if err == nil {
			t.Fatal("a verdict from a stopped clamd")
		}
		var ne interface{ Timeout() bool }
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("want a timeout, got %v", err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		s, err := c.Scan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("part of it"))
		cancel()
		_, err = s.Write(bytes.Repeat([]byte("x"), 1<<20))
		if err == nil {
			_, err = s.Verdict()
		}
		if err == nil {
			t.Fatal("a cancelled scan went on")
		}
	})

	t.Run("down", func(t *testing.T) {
		srv.Halt()
		defer func() {
			if err := srv.Resume(); err != nil {
				t.Fatal(err)
			}
		}()
		if _, err := c.Scan(t.Context()); err == nil {
			t.Fatal("a scan started without clamd")
		}
		if err := c.Ping(t.Context()); err == nil {
			t.Fatal("PING answered without clamd")
		}
	})
	if n := m.get("error"); n < 3 {
		t.Errorf("%d errors counted, want 3 or more", n)
	}
}

// TestStreamMaxLength: a clamd that allows less than a part is an error
// that says so, not a clean verdict.
func TestStreamMaxLength(t *testing.T) {
	srv := clamdtest.Own(t)
	srv.Halt()
	conf := srv.Dir + "/clamd.conf"
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, bytes.Replace(b, []byte("StreamMaxLength 200M"), []byte("StreamMaxLength 1M"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	c, err := clamd.New(srv.Addr(), 5*time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Scan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(s, io.LimitReader(zeros{}, 8<<20))
	if err == nil {
		_, err = s.Verdict()
	}
	if err == nil || !strings.Contains(err.Error(), "size limit") {
		t.Fatalf("want clamd's size limit error, got %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct{ in, network, address string }{
		{"unix:/run/clamav/clamd.ctl", "unix", "/run/clamav/clamd.ctl"},
		{"tcp:127.0.0.1:3310", "tcp", "127.0.0.1:3310"},
		{"tcp:[::1]:3310", "tcp", "[::1]:3310"},
		{"tcp:clamd.internal:3310", "tcp", "clamd.internal:3310"},
		{"unix:relative.sock", "", ""},
		{"tcp:127.0.0.1", "", ""},
		{"/run/clamav/clamd.ctl", "", ""},
		{"udp:127.0.0.1:3310", "", ""},
		{"unix:", "", ""},
	} {
		n, a, err := clamd.ParseAddress(tc.in)
		if n != tc.network || a != tc.address || (err == nil) != (tc.network != "") {
			t.Errorf("ParseAddress(%q) = %q, %q, %v", tc.in, n, a, err)
		}
	}
}
