package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// The benchmarks measure the gateway against a reference measured in the
// same run, because the machines they run on are shared and noisy:
//
//	go test -run '^$' -bench 'Ingest' -benchtime 3000x ./cmd/securetextd
//	go test -run '^$' -bench 'LargeMessage' -benchtime 1x ./cmd/securetextd
//
// BENCHMARKS.md records the figures.

const benchAccount, benchPassword = "bench@clinic.example", "bench password 123"

// benchConfig is a gateway on loopback with plain-text AUTH (TLS is not
// what is measured) and texts written to a file.
func benchConfig(dir string) string {
	return `
[smtp]
submission_listen = "127.0.0.1:0"
allow_insecure_auth = true
# Every bench client is on loopback.
max_connections_per_ip = 1000
[store]
path = "data/db.sqlite"
key_file = "data/key.txt"
[console]
listen = "127.0.0.1:0"
[portal]
listen = "127.0.0.1:0"
second_factor = "none"
[sms]
provider = "console"
console_file = "texts.jsonl"
rate = 1000
# Thousands of messages from one sender to one phone.
[limits]
daily_per_sender = 0
per_phone_per_hour = 0
`
}

// startBenchMain runs the gateway in-process on benchConfig in dir, with
// the bench sender account, until the benchmark ends.
func startBenchMain(b *testing.B, dir string) *Main {
	b.Helper()
	cfg, err := ParseConfig([]byte(benchConfig(dir)), dir)
	if err != nil {
		b.Fatal(err)
	}
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := m.Run(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(context.Background()) })
	if err := m.db.CreateSender(b.Context(), benchAccount, benchPassword); err != nil {
		b.Fatal(err)
	}
	return m
}

// discardBackend is the reference: go-smtp receiving and discarding, with
// the same AUTH and recipient checks reduced to nothing.
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

func smallMessage() string {
	body := strings.Repeat("Your results are in and everything looks normal. See you soon.\r\n", 16) // 1 KiB
	return "From: Dr Bench <" + benchAccount + ">\r\nSubject: Results\r\n\r\n" + body
}

// ingest sends b.N messages over conns concurrent connections, each
// connection reused for its share, and reports messages per second.
func ingest(b *testing.B, addr string, conns int) {
	msg, work := startIngest(b, addr)
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := gosmtp.Dial(addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			if err := c.Auth(sasl.NewPlainClient("", benchAccount, benchPassword)); err != nil {
				b.Error(err)
				return
			}
			for range work {
				if err := c.SendMail(benchAccount, []string{"2125550123@secure.text"}, strings.NewReader(msg)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}

// BenchmarkIngestSmall measures 1 KiB messages, 20 connections reused,
// through the full pipeline (MIME walk, sealing, one fsync'd commit with
// the outbox job per message), against go-smtp receiving and discarding.
func BenchmarkIngestSmall(b *testing.B) {
	b.Run("discard", func(b *testing.B) {
		s := gosmtp.NewServer(discardBackend{})
		s.AllowInsecureAuth = true
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go s.Serve(l)
		defer s.Close()
		ingest(b, l.Addr().String(), 20)
	})
	b.Run("gateway", func(b *testing.B) {
		m := startBenchMain(b, b.TempDir())
		ingest(b, m.SubmissionAddr, 20)
	})
	b.Run("gateway, one per connection", func(b *testing.B) {
		m := startBenchMain(b, b.TempDir())
		ingestEach(b, m.SubmissionAddr, 20)
	})
}

// startIngest logs in to addr once, and returns the small message and a
// channel holding b.N tokens of work, with the timer reset.
func startIngest(b *testing.B, addr string) (string, chan struct{}) {
	msg := smallMessage()
	work := make(chan struct{}, b.N)
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	login(b, addr)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	return msg, work
}

// ingestEach is ingest with a connection of its own for each message,
// as a relay that does not reuse its connections sends them.
func ingestEach(b *testing.B, addr string, conns int) {
	msg, work := startIngest(b, addr)
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Go(func() {
			for range work {
				c, err := gosmtp.Dial(addr)
				if err != nil {
					b.Error(err)
					return
				}
				err = c.Auth(sasl.NewPlainClient("", benchAccount, benchPassword))
				if err == nil {
					err = c.SendMail(benchAccount, []string{"2125550123@secure.text"}, strings.NewReader(msg))
				}
				if err == nil {
					err = c.Quit()
				}
				c.Close()
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}

// login logs in once, as a mail program's first login: the gateway
// remembers a login that verified (store/authcache.go), and refuses a
// burst of logins to one account while their passwords are still being
// hashed.
func login(b *testing.B, addr string) {
	c, err := gosmtp.Dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", benchAccount, benchPassword)); err != nil {
		b.Fatal(err)
	}
	c.Quit()
}

// largeMessage streams a message of about size bytes: a short text and
// one base64 attachment of random bytes, generated as it is read.
func largeMessage(size int64) io.Reader {
	head := "From: " + benchAccount + "\r\nSubject: Scan\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=BOUNDARY\r\n\r\n" +
		"--BOUNDARY\r\nContent-Type: text/plain\r\n\r\nThe scan is attached.\r\n" +
		"--BOUNDARY\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=scan.bin\r\n\r\n"
	tail := "--BOUNDARY--\r\n"
	lines := (size - int64(len(head)+len(tail))) / 78 // 76 base64 characters and CRLF
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 64<<10)
		bw.WriteString(head)
		raw := make([]byte, 57*1024)
		enc := make([]byte, base64.StdEncoding.EncodedLen(57))
		for lines > 0 {
			rand.Read(raw)
			for i := 0; i < len(raw) && lines > 0; i += 57 {
				base64.StdEncoding.Encode(enc, raw[i:i+57])
				bw.Write(enc)
				bw.WriteString("\r\n")
				lines--
			}
		}
		bw.WriteString(tail)
		pw.CloseWithError(bw.Flush())
	}()
	return pr
}

// procStatus reads a field (in KiB) of /proc/PID/status.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// BenchmarkLargeMessage sends one message just under the default 100 MiB
// limit. The gateway runs as its own process, so that the peak resident
// memory reported (VmHWM) is the whole process's, next to its peak after
// start-up; "discard" is go-smtp receiving and discarding the same bytes,
// the reference for the wall time from DATA to 250.
func BenchmarkLargeMessage(b *testing.B) {
	const size = 100<<20 - 64<<10
	send := func(b *testing.B, addr string) {
		b.SetBytes(size)
		var elapsed time.Duration
		for range b.N {
			c, err := gosmtp.Dial(addr)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Auth(sasl.NewPlainClient("", benchAccount, benchPassword)); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := c.SendMail(benchAccount, []string{"2125550123@secure.text"}, largeMessage(size)); err != nil {
				b.Fatal(err)
			}
			elapsed += time.Since(start)
			c.Quit()
		}
		b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/msg")
	}
	b.Run("discard", func(b *testing.B) {
		s := gosmtp.NewServer(discardBackend{})
		s.AllowInsecureAuth = true
		s.MaxMessageBytes = 100 << 20
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go s.Serve(l)
		defer s.Close()
		send(b, l.Addr().String())
	})
	b.Run("gateway", func(b *testing.B) {
		dir := b.TempDir()
		cfgPath := filepath.Join(dir, "securetextd.toml")
		if err := os.WriteFile(cfgPath, []byte(benchConfig(dir)), 0o600); err != nil {
			b.Fatal(err)
		}
		if err := run([]string{"user", "add", benchAccount, "--config", cfgPath, "--password-stdin"},
			strings.NewReader(benchPassword+"\n"), io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
		d := startDaemon(b, cfgPath)
		pid := d.cmd.Process.Pid
		idle, err := procStatus(pid, "VmHWM")
		if err != nil {
			b.Fatal(err)
		}
		send(b, d.submission)
		peak, err := procStatus(pid, "VmHWM")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
		b.ReportMetric(float64(idle)/1024, "idle-RSS-MiB")
	})
}

// BenchmarkConversationPage loads the recipient's conversation page (the
// session checked, the message read and its text decrypted, the view
// audited, the template rendered) from parallel clients over loopback
// HTTP, next to the embedded stylesheet, the reference: the HTTP stack
// alone, measured in the same run.
//
//	go test -run '^$' -bench ConversationPage -cpuprofile cpu.out ./cmd/securetextd
func BenchmarkConversationPage(b *testing.B) {
	dir := b.TempDir()
	m := startBenchMain(b, dir)
	c, err := gosmtp.Dial(m.SubmissionAddr)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", benchAccount, benchPassword)); err != nil {
		b.Fatal(err)
	}
	if err := c.SendMail(benchAccount, []string{"2125550123@secure.text"}, strings.NewReader(smallMessage())); err != nil {
		b.Fatal(err)
	}
	c.Quit()

	var token string
	for deadline := time.Now().Add(10 * time.Second); token == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		texts, _ := os.ReadFile(filepath.Join(dir, "texts.jsonl"))
		if m := regexp.MustCompile(`/m/([A-Za-z0-9_-]+)`).FindSubmatch(texts); m != nil {
			token = string(m[1])
		}
	}
	if token == "" {
		b.Fatal("no text with a link")
	}
	base := "http://" + m.PortalAddr
	hc := &http.Client{
		Transport:     &http.Transport{MaxIdleConnsPerHost: 64},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	form := url.Values{"password": {"a long bench passphrase"}, "confirm": {"a long bench passphrase"}, "email": {"ana@example.org"}}
	resp, err := hc.PostForm(base+"/m/"+token+"/setup", form)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	conv := resp.Header.Get("Location")
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cookies) == 0 || !strings.HasPrefix(conv, "/c/") {
		b.Fatalf("setup: %s, Location %q", resp.Status, conv)
	}
	load := func(b *testing.B, path string) {
		b.SetParallelism(25) // 50 clients on 2 cores, as wrk in make bench
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest("GET", base+path, nil)
				for _, ck := range cookies {
					req.AddCookie(ck)
				}
				resp, err := hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("%s: %s", path, resp.Status)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	}
	b.Run("stylesheet", func(b *testing.B) { load(b, "/static/style.css") })
	b.Run("page", func(b *testing.B) { load(b, conv) })
}
