package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/need"
)

// nginxPath is Debian's nginx, which scripts/test-deps.sh installs.
const nginxPath = "/usr/sbin/nginx"

// startNginx runs a private nginx on loopback in front of upstream
// (host:port): everything it writes (pid, logs, temporary files) stays in
// a directory of the test's, it runs in the foreground as one process,
// and it sets X-Forwarded-For as the README's example does. It returns
// nginx's address. Without nginx the test fails, or skips under -short.
func startNginx(t *testing.T, upstream string) string {
	t.Helper()
	nginx := need.Program(t, nginxPath, "nginx")
	dir := t.TempDir()
	addr := reserveAddr(t)
	conf := fmt.Sprintf(`
daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 256; }
http {
	access_log %[1]s/access.log;
	client_body_temp_path %[1]s/client_body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen %[2]s;
		location / {
			proxy_pass http://%[3]s;
			proxy_set_header Host $http_host;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto $scheme;
		}
	}
}
`, dir, addr, upstream)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-c", path, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	// Ready when it accepts a connection; an nginx that exits says why.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %v\n%s", err, log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not accept on %s: %v", addr, err)
		}
	}
}

// clientFrom is a portal client whose connections come from the loopback
// address local (127.0.0.2, 127.0.0.3…), so that two of them look like
// two people to whatever they connect to.
func clientFrom(t *testing.T, base, local string) *portalClient {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &portalClient{t: t, base: base, c: &http.Client{Jar: jar, Transport: tr}}
}

// TestBehindProxy puts the real nginx in front of the gateway, with
// portal.trusted_proxies set to nginx's address: an attacker's wrong
// passwords and reset requests count against the attacker's own address,
// not against the proxy's, so another patient still logs in and resets;
// and the audit trail names each client, not the proxy.
func TestBehindProxy(t *testing.T) {
	vonage := newFakeVonage(t)
	text := strings.Replace(testConfigText(t, vonage.URL), "[portal]\n", "[portal]\ntrusted_proxies = [\"127.0.0.1/32\"]\n", 1)
	cfg, err := ParseConfig([]byte(text), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := startMain(t, cfg)
	if err := m.db.CreateSender(t.Context(), "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	proxy := "http://" + startNginx(t, m.PortalAddr)

	// Two patients, each with a link and a password.
	links := map[string]string{}
	for i, phone := range []string{"2125550123", "2025550143"} {
		if err := sendAs(t, m, []string{phone + "@secure.text"}, "From: dr.who@clinic.example\r\nSubject: Results\r\n\r\nAll normal.\r\n"); err != nil {
			t.Fatal(err)
		}
		tx := vonage.waitTexts(t, i+1, 10*time.Second)[i]
		links[tx.To] = linkRE.FindStringSubmatch(tx.Text)[1]
	}
	attackerLink, patientLink := links["12025550143"], links["12125550123"]
	attacker := clientFrom(t, proxy, "127.0.0.2")
	patient := clientFrom(t, proxy, "127.0.0.3")
	for c, link := range map[*portalClient]string{attacker: attackerLink, patient: patientLink} {
		if status, body := c.do("POST", "/m/"+link+"/setup", url.Values{
			"password": {"maple syrup on pancakes"}, "confirm": {"maple syrup on pancakes"}, "email": {"someone@home.example"},
		}); status != http.StatusOK || !strings.Contains(body, "All normal") {
			t.Fatalf("setup: %d %s", status, body)
		}
		c.do("POST", "/logout", url.Values{})
	}

	// The attacker tries five wrong passwords on their own link, and is
	// locked out; then asks for five resets.
	for i := range 5 {
		status, _ := attacker.do("POST", "/m/"+attackerLink+"/login", url.Values{"password": {fmt.Sprintf("guess number %d", i)}})
		if want := map[bool]int{true: http.StatusTooManyRequests, false: http.StatusUnauthorized}[i == 4]; status != want {
			t.Fatalf("wrong password %d: %d, want %d", i+1, status, want)
		}
	}
	if status, _ := attacker.do("POST", "/m/"+attackerLink+"/login", url.Values{"password": {"maple syrup on pancakes"}}); status != http.StatusTooManyRequests {
		t.Errorf("the attacker's address is not locked: %d", status)
	}
	for range 6 {
		attacker.do("POST", "/reset", url.Values{"phone": {"202-555-0143"}})
	}

	// The other patient is not: they log in, and their reset goes out.
	status, body := patient.do("POST", "/m/"+patientLink+"/login", url.Values{"password": {"maple syrup on pancakes"}})
	if status != http.StatusOK || !strings.Contains(body, "All normal") {
		t.Fatalf("the other patient's login through the proxy: %d\n%s", status, body)
	}
	patient.do("POST", "/reset", url.Values{"phone": {"212-555-0123"}})

	// The REST API, routed around the portal, is seen through the proxy
	// too: an EHR on 127.0.0.5 sends a message.
	key, _, err := m.db.CreateAPIKey(t.Context(), "dr.who@clinic.example", "ehr")
	if err != nil {
		t.Fatal(err)
	}
	ehr := clientFrom(t, proxy, "127.0.0.5")
	req, _ := http.NewRequest("POST", proxy+"/api/v1/messages", strings.NewReader(`{"to": ["212-555-0123"], "text": "From the EHR."}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := ehr.c.Do(req); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("API through the proxy: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	apiClient := ""
	m.db.AuditTrail(t.Context(), time.Time{}, func(ev securetextd.AuditEvent) error {
		if ev.Event == securetextd.AuditMessageAccepted && ev.Actor == "dr.who@clinic.example" && ev.Client != "127.0.0.1" {
			apiClient = ev.Client
		}
		return nil
	})
	if apiClient != "127.0.0.5" {
		t.Errorf("the API's message was recorded from %q, want 127.0.0.5", apiClient)
	}

	// The audit trail names each client, never the proxy. (Mail came
	// from 127.0.0.1 too, over SMTP: only the patients' events count.)
	seen := map[string]map[string]int{} // event → client and actor → count
	err = m.db.AuditTrail(t.Context(), time.Time{}, func(ev securetextd.AuditEvent) error {
		if ev.Client != "" && strings.HasPrefix(ev.Actor, "+") {
			if seen[ev.Event] == nil {
				seen[ev.Event] = map[string]int{}
			}
			seen[ev.Event][ev.Client+" "+ev.Actor]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		event, client, actor string
		n                    int
	}{
		{securetextd.AuditLoginFailed, "127.0.0.2", "+12025550143", 5},
		{securetextd.AuditLoginOK, "127.0.0.3", "+12125550123", 1},
		{securetextd.AuditResetRequested, "127.0.0.2", "+12025550143", 5},
		{securetextd.AuditResetRequested, "127.0.0.3", "+12125550123", 1},
	} {
		if got := seen[want.event][want.client+" "+want.actor]; got != want.n {
			t.Errorf("%s from %s for %s: %d events, want %d (all: %v)", want.event, want.client, want.actor, got, want.n, seen)
		}
	}
	for event, clients := range seen {
		for c := range clients {
			if strings.HasPrefix(c, "127.0.0.1 ") {
				t.Errorf("%s recorded with the proxy's address: %v", event, clients)
			}
		}
	}

	// Directly, not through the proxy, the same headers are nobody's word.
	direct := clientFrom(t, "http://"+m.PortalAddr, "127.0.0.4")
	req, _ = http.NewRequest("GET", direct.base+"/m/"+patientLink, nil)
	req.Header.Set("X-Forwarded-For", "198.51.100.99")
	if resp, err := direct.c.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	m.db.AuditTrail(t.Context(), time.Time{}, func(ev securetextd.AuditEvent) error {
		if ev.Client == "198.51.100.99" {
			t.Errorf("a forged X-Forwarded-For from an untrusted peer was believed: %+v", ev)
		}
		return nil
	})
}
