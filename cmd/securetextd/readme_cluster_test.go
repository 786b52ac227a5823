package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/pgtest"
	"github.com/securetextd/securetextd/store"
)

// nginxStreamModule is Debian's stream module for nginx, which the
// README's configuration loads (scripts/test-deps.sh installs it).
const nginxStreamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"

// TestClusterNginxAsInREADME runs the README's nginx.conf for several
// nodes, with only its addresses and certificate paths changed, in front
// of three gateway nodes on one PostgreSQL database with one key file:
// nginx -t accepts it; mail submitted through its stream block (STARTTLS
// and AUTH on the nodes) is accepted and texted; every link opens through
// its http block, and the audit trail names the patient's address, not
// nginx's (portal.trusted_proxies).
func TestClusterNginxAsInREADME(t *testing.T) {
	for _, need := range []string{nginxPath, nginxStreamModule} {
		if _, err := os.Stat(need); err != nil {
			if testing.Short() {
				t.Skipf("%v: make test installs nginx and libnginx-mod-stream", err)
			}
			t.Fatalf("%v: install nginx and libnginx-mod-stream (make test does)", err)
		}
	}
	pgtest.Need(t)
	pg, err := pgtest.Start(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	dbName, err := pg.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}

	// One key file and one certificate for every node, as the README
	// says; nginx serves the same certificate to phones.
	shared := t.TempDir()
	key, cert, certKey := filepath.Join(shared, "key.txt"), filepath.Join(shared, "tls.crt"), filepath.Join(shared, "tls.key")
	if _, err := store.WriteKeyFile(key, true); err != nil {
		t.Fatal(err)
	}
	if err := writeSelfSigned(cert, certKey, "portal.clinic.example"); err != nil {
		t.Fatal(err)
	}
	vonage := newFakeVonage(t)
	text := sqliteConfigText(vonage.URL) // its store becomes PostgreSQL below
	for old, new := range map[string]string{
		"[smtp]\n":   fmt.Sprintf("[smtp]\ntls_cert = %q\ntls_key = %q\nmax_connections_per_ip = 1000\n", cert, certKey),
		"[portal]\n": "[portal]\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
		"path = \"data/db.sqlite\"\nkey_file = \"data/key.txt\"\n": fmt.Sprintf("driver = \"postgres\"\ndsn = %q\nkey_file = %q\n", pg.URL(dbName), key),
	} {
		if !strings.Contains(text, old) {
			t.Fatalf("the test configuration has no %q", old)
		}
		text = strings.Replace(text, old, new, 1)
	}
	var nodes []*Main
	for range 3 {
		cfg, err := ParseConfig([]byte(text), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, startMain(t, cfg))
	}
	if err := nodes[0].db.CreateSender(t.Context(), "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}

	// The README's nginx.conf, on loopback.
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// The nodes' configuration it shows is valid, given an SMS provider.
	node := regexp.MustCompile("(?s)\\*\\*Every node\\*\\*.*?```toml\n(.*?)```").FindSubmatch(readme)
	if node == nil {
		t.Fatal("the README shows no configuration for every node")
	}
	sms := "\n[sms]\nprovider = \"vonage\"\n[sms.vonage]\napi_key = \"abcd1234\"\napi_secret = \"s3cret-s3cret\"\nfrom = \"Clinic\"\n"
	if cfg, err := ParseConfig(append(node[1], sms...), t.TempDir()); err != nil {
		t.Errorf("the README's configuration of every node: %v", err)
	} else if o := cfg.storeOptions(); o.Driver != store.Postgres || len(cfg.Portal.TrustedProxies) != 1 {
		t.Errorf("the README's configuration of every node: store %+v, trusted proxies %v", o, cfg.Portal.TrustedProxies)
	}
	block := regexp.MustCompile("(?s)```nginx\n(load_module .*?)```").FindSubmatch(readme)
	if block == nil {
		t.Fatal("the README shows no nginx.conf that loads the stream module")
	}
	dir := t.TempDir()
	smtpAddr, httpsAddr := reserveAddr(t), reserveAddr(t)
	conf := string(block[1])
	edits := []struct{ old, new string }{
		{"listen 587;", "listen " + smtpAddr + ";"},
		{"listen 443 ssl http2;", "listen " + httpsAddr + " ssl http2;"},
		{"/etc/letsencrypt/live/portal.clinic.example/fullchain.pem", cert},
		{"/etc/letsencrypt/live/portal.clinic.example/privkey.pem", certKey},
		{"http {\n", fmt.Sprintf("http {\n    access_log %[1]s/access.log;\n    client_body_temp_path %[1]s/body;\n    proxy_temp_path %[1]s/proxy;\n"+
			"    fastcgi_temp_path %[1]s/fastcgi;\n    uwsgi_temp_path %[1]s/uwsgi;\n    scgi_temp_path %[1]s/scgi;\n", dir)},
	}
	for i, n := range nodes {
		edits = append(edits,
			struct{ old, new string }{fmt.Sprintf("10.0.0.1%d:587", i+1), n.SubmissionAddr},
			struct{ old, new string }{fmt.Sprintf("10.0.0.1%d:8080", i+1), n.PortalAddr})
	}
	for _, e := range edits {
		if !strings.Contains(conf, e.old) {
			t.Fatalf("the README's nginx.conf has no %q any more: update this test", e.old)
		}
		conf = strings.ReplaceAll(conf, e.old, e.new)
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-c", path, "-p", dir, "-e", filepath.Join(dir, "error.log"),
		"-g", fmt.Sprintf("daemon off; master_process off; pid %s/nginx.pid;", dir)}
	if out, err := exec.Command(nginxPath, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s\n%s", err, out, conf)
	}
	cmd := exec.Command(nginxPath, args...)
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for _, a := range []string{smtpAddr, httpsAddr} {
		waitListening(t, a)
	}

	// Three messages through the stream block: round robin hands each to
	// another node, which speaks STARTTLS and AUTH itself.
	pem, _ := os.ReadFile(cert)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	for i := range 3 {
		if err := send(t, smtpAddr, &tls.Config{RootCAs: roots, ServerName: "portal.clinic.example"},
			sasl.NewPlainClient("", "dr.who@clinic.example", "correct horse battery"), "dr.who@clinic.example",
			[]string{fmt.Sprintf("212555012%d@secure.text", i)},
			fmt.Sprintf("From: dr.who@clinic.example\r\nSubject: Results %d\r\n\r\nAll normal, patient %d.\r\n", i, i)); err != nil {
			t.Fatalf("message %d through nginx's stream block: %v", i, err)
		}
	}
	links := map[string]string{} // phone → link token
	for deadline := time.Now().Add(20 * time.Second); len(links) < 3 && time.Now().Before(deadline); {
		for _, tx := range vonage.waitTexts(t, 3, time.Until(deadline)) {
			links[tx.To] = linkRE.FindStringSubmatch(tx.Text)[1]
		}
	}
	if len(links) != 3 {
		t.Fatalf("texts to %d phones, want 3", len(links))
	}

	// Each link through the http block, from a patient's own address.
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 10 * time.Second}
	jar, _ := cookiejar.New(nil)
	phone := &http.Client{Jar: jar, Transport: &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "portal.clinic.example"}}}
	base := "https://" + httpsAddr
	for to, token := range links {
		resp, err := phone.Get(base + "/m/" + token)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "secure message") {
			t.Errorf("the link to %s through nginx: %d\n%s", to, resp.StatusCode, body)
		}
	}
	token := links["12125550120"]
	resp, err := phone.PostForm(base+"/m/"+token+"/setup", url.Values{
		"password": {"maple syrup on pancakes"}, "confirm": {"maple syrup on pancakes"}, "email": {"someone@home.example"},
	})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "All normal, patient 0") {
		t.Fatalf("first visit through nginx: %d\n%s", resp.StatusCode, body)
	}
	clients := map[string]bool{}
	nodes[2].db.AuditTrail(t.Context(), time.Time{}, func(ev securetextd.AuditEvent) error {
		if strings.HasPrefix(ev.Actor, "+") && ev.Client != "" {
			clients[ev.Client] = true
		}
		return nil
	})
	if !clients["127.0.0.2"] || clients["127.0.0.1"] {
		t.Errorf("the patient's events were recorded from %v, want 127.0.0.2 only", clients)
	}
}

// waitListening waits until something accepts connections at addr.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing accepts on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
