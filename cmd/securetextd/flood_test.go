package main

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// needFiles raises the test process's soft limit on open files as serve
// does (raiseFileLimit): the process holds both ends of every connection
// (the flood's clients and the gateway's side). It fails clearly when the
// hard limit is too low for the test.
func needFiles(t *testing.T, need uint64) {
	t.Helper()
	got, err := raiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	if got < need {
		t.Fatalf("RLIMIT_NOFILE hard limit is %d; this test needs %d open files (raise it with ulimit -Hn)", got, need)
	}
}

// TestFlood is issue 10's flood: 2,000 idle connections from 127.0.0.1
// to the real gateway's submission listener, each reading nothing. A
// client on 127.0.0.2 still gets its greeting and sends a message, and
// the portal's /healthz answers. Of the flood, smtp.max_connections_per_ip
// (20 by default) were greeted; every other connection was answered
// "421 4.7.0 Too many connections" and closed at once.
func TestFlood(t *testing.T) {
	const flood = 2000
	needFiles(t, 2*flood+500)
	vonage := newFakeVonage(t)
	cfg := testConfig(t, t.TempDir(), vonage.URL)
	m := startMain(t, cfg)
	if err := m.db.CreateSender(t.Context(), "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}

	// The flood, dialled a few at a time so that the listen queue never
	// overflows on a slow machine.
	conns := make([]net.Conn, flood)
	var wg sync.WaitGroup
	errs := make(chan error, flood)
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				c, err := net.Dial("tcp", m.SubmissionAddr)
				if err != nil {
					errs <- err
					continue
				}
				conns[i] = c
			}
		})
	}
	for i := range flood {
		next <- i
	}
	close(next)
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatalf("flood dial: %v", err)
	}

	// A clinician elsewhere is served.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 30 * time.Second}
	conn, err := d.Dial("tcp", m.SubmissionAddr)
	if err != nil {
		t.Fatal(err)
	}
	// Reads the 220, then EHLO and STARTTLS.
	c, err := gosmtp.NewClientStartTLS(conn, tlsConfigFor(t, cfg))
	if err != nil {
		t.Fatalf("client on 127.0.0.2: %v", err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "dr.who@clinic.example", "correct horse battery")); err != nil {
		t.Fatal(err)
	}
	msg := "From: dr.who@clinic.example\r\nSubject: Results\r\n\r\nAll normal.\r\n"
	if err := c.SendMail("dr.who@clinic.example", []string{"2125550123@secure.text"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("send from 127.0.0.2 during the flood: %v", err)
	}
	c.Quit()
	if h := get(t, http.DefaultClient, "http://"+m.PortalAddr+"/healthz", http.StatusOK); strings.TrimSpace(h) != "ok" {
		t.Errorf("/healthz: %q", h)
	}

	// What the flood was told (it sits in the clients' buffers).
	greeted, refused := 0, 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		switch {
		case strings.HasPrefix(line, "220 "):
			greeted++
		case strings.HasPrefix(line, "421 4.7.0 Too many connections"):
			refused++
		default:
			t.Fatalf("flood connection read %q, %v", line, err)
		}
	}
	if perIP := cfg.SMTP.MaxConnectionsPerIP; greeted != perIP || refused != flood-perIP {
		t.Errorf("of %d connections from one address, %d were greeted and %d refused; want %d greeted (smtp.max_connections_per_ip)",
			flood, greeted, refused, perIP)
	}
}
