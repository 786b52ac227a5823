package smtp

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/need"
	"github.com/securetextd/securetextd/internal/storetest"
)

// TestRelayThroughPostfix is issue 4's end-to-end test: a real Postfix
// (Debian's package, a private instance on loopback) relays secure.text to
// the gateway's relay listener, over opportunistic STARTTLS as a hospital's
// server would, with messages signed by a real DKIM signer (python3-dkim's
// dkimsign) whose keys the loopback DNS server publishes. Each outcome is
// read where an administrator would read it: in Postfix's log.
func TestRelayThroughPostfix(t *testing.T) {
	postfixCmd := need.Program(t, "/usr/sbin/postfix", "postfix")
	postqueueCmd := need.Program(t, "/usr/sbin/postqueue", "postfix")
	dkimsign := need.Program(t, "/usr/bin/dkimsign", "python3-dkim")
	need.Root(t, "to start Postfix's master")

	d := newTestDNS(t)
	relayZone(d)
	keyDir := t.TempDir()
	keyFile := func(name string) string {
		p := filepath.Join(keyDir, name)
		var data []byte
		switch k := testKeys()[name].(type) {
		case *rsa.PrivateKey:
			data = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
		case ed25519.PrivateKey:
			data = []byte(base64.StdEncoding.EncodeToString(k.Seed()) + "\n") // dkimpy's form
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	signWith := func(msg []byte, alg, selector, domain, key string) []byte {
		t.Helper()
		cmd := exec.Command(dkimsign, "--signalg", alg, selector, domain, keyFile(key))
		cmd.Stdin = bytes.NewReader(msg)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("dkimsign: %v: %s", err, stderr.String())
		}
		if !bytes.HasPrefix(out, []byte("DKIM-Signature:")) {
			t.Fatalf("dkimsign wrote %q", out[:min(len(out), 200)])
		}
		return out
	}

	// The gateway's relay listener: only 127.0.0.1 is trusted, and TLS is
	// required.
	db := storetest.Open(t, storetest.Keys(t))
	serverTLS, _ := testCertificate(t)
	gw := NewRelay(RelayConfig{
		Config: Config{
			Hostname:        "gw.test",
			Domain:          "secure.text",
			Phones:          securetextd.PhoneRules{DefaultRegion: "US", AllowedCountries: []string{"US"}},
			MaxMessageBytes: 10 << 20,
			TLS:             serverTLS,
		},
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		RequireTLS:      true,
		SenderDomains:   relaySenderDomains,
		Resolver:        d.resolver(),
	}, db, slog.New(slog.NewTextHandler(testLogWriter{t}, nil)))
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gw.Serve(gl)
	t.Cleanup(func() { gw.Close() })

	pf := startPostfix(t, postfixCmd, gl.Addr().String())

	type outcome struct {
		name, rcpt, mailFrom string
		msg                  []byte
		status               string // Postfix's status=
		want                 string // in the status line
		queueID              string
	}
	msgNo := 0
	clinic := func(from string, extra ...string) []byte {
		msgNo++
		return testMail(append([]string{
			"From: " + from,
			"To: 12125550123@secure.text",
			"Subject: Your results",
			"Date: Mon, 23 Nov 2026 10:00:00 +0000",
			fmt.Sprintf("Message-ID: <e2e-%d@clinic.example>", msgNo),
		}, extra...), "Your results are normal.\r\nSee you on Monday.\r\n")
	}
	altered := signWith(clinic("dr.who@clinic.example"), "rsa-sha256", "rsa", "clinic.example", "rsa")
	altered = bytes.Replace(altered, []byte("Monday"), []byte("Friday"), 1)
	outcomes := []*outcome{
		{name: "aligned DKIM pass (RSA)", rcpt: "12125550123@secure.text", mailFrom: "dr.who@clinic.example",
			msg:    signWith(clinic("Dr Who <dr.who@clinic.example>"), "rsa-sha256", "rsa", "clinic.example", "rsa"),
			status: "sent", want: "250 "},
		{name: "aligned DKIM pass (Ed25519)", rcpt: "12025550143@secure.text", mailFrom: "bounces@elsewhere.example",
			msg:    signWith(clinic("dr.who@clinic.example"), "ed25519-sha256", "ed", "clinic.example", "ed25519"),
			status: "sent", want: "250 "},
		{name: "SPF-only pass with aligned envelope", rcpt: "12125550124@secure.text", mailFrom: "bounces@mail.clinic.example",
			msg:    clinic("Ward 7 <ward7@clinic.example>"),
			status: "sent", want: "250 "},
		{name: "unsigned with SPF fail", rcpt: "12125550125@secure.text", mailFrom: "dr@spffail.example",
			msg:    clinic("dr@spffail.example"),
			status: "bounced", want: "550 5.7.26 Message refused: no DKIM signature or SPF pass aligned with From domain spffail.example"},
		{name: "body altered after signing", rcpt: "12125550126@secure.text", mailFrom: "dr@spffail.example",
			msg:    altered,
			status: "bounced", want: "DKIM signature for clinic.example did not verify: body hash did not verify"},
		{name: "signature by another domain than From", rcpt: "12125550127@secure.text", mailFrom: "dr@spffail.example",
			msg:    signWith(clinic("dr.who@clinic.example"), "rsa-sha256", "s1", "other.example", "rsa-other"),
			status: "bounced", want: "DKIM signature by other.example is valid but not aligned with From domain clinic.example"},
		{name: "rsa-sha1 signature", rcpt: "12125550128@secure.text", mailFrom: "dr@spffail.example",
			msg:    signWith(clinic("dr.who@clinic.example"), "rsa-sha1", "rsa", "clinic.example", "rsa"),
			status: "bounced", want: "hash algorithm too weak"},
		{name: "two From headers", rcpt: "12125550129@secure.text", mailFrom: "dr.who@clinic.example",
			msg:    signWith(clinic("dr.who@clinic.example", "From: Mallory <mallory@clinic.example>"), "rsa-sha256", "rsa", "clinic.example", "rsa"),
			status: "bounced", want: "550 5.7.1 Message refused: it has 2 From: header fields"},
		{name: "sender domain not allowed", rcpt: "12125550130@secure.text", mailFrom: "someone@other.example",
			msg:    signWith(clinic("someone@other.example"), "rsa-sha256", "s1", "other.example", "rsa-other"),
			status: "bounced", want: "550 5.7.1 Message refused: From domain other.example is not allowed to send here"},
		// The transport map sends this recipient through a client bound to
		// 127.0.0.2: outside the trusted networks. Postfix keeps the mail
		// (smtp_skip_5xx_greeting) and says why.
		{name: "client outside the trusted networks", rcpt: untrustedRcpt, mailFrom: "dr.who@clinic.example",
			msg:    signWith(clinic("dr.who@clinic.example"), "rsa-sha256", "rsa", "clinic.example", "rsa"),
			status: "deferred", want: "refused to talk to me: 554 5.7.1 gw.test refuses relay client 127.0.0.2"},
	}
	for _, o := range outcomes {
		o.queueID = pf.submit(o.mailFrom, o.rcpt, o.msg)
	}
	for _, o := range outcomes {
		line := pf.waitStatus(o.queueID, o.status)
		if !strings.Contains(line, o.want) {
			t.Errorf("%s: Postfix logged\n\t%s\nwant it to contain %q", o.name, line, o.want)
		}
	}
	if n, _ := db.CountMessages(t.Context()); n != 3 {
		t.Errorf("the gateway stored %d messages, want the 3 that passed", n)
	}
	if !strings.Contains(pf.log(), "TLS connection established to 127.0.0.1") {
		t.Error("Postfix did not use STARTTLS to the gateway")
	}

	// DNS server down: the gateway answers 451, Postfix defers, and once
	// DNS is back a queue flush delivers.
	d.stop()
	id := pf.submit("dr.who@clinic.example", "12125550131@secure.text",
		signWith(clinic("dr.who@clinic.example"), "rsa-sha256", "rsa", "clinic.example", "rsa"))
	if line := pf.waitStatus(id, "deferred"); !strings.Contains(line, "451 4.7.0 Temporary DNS failure") {
		t.Errorf("DNS down: Postfix logged\n\t%s\nwant a 451 4.7.0", line)
	}
	d.restart()
	if out, err := exec.Command(postqueueCmd, "-c", pf.etc, "-f").CombinedOutput(); err != nil {
		t.Fatalf("postqueue -f: %v: %s", err, out)
	}
	pf.waitStatus(id, "sent")
	if n, _ := db.CountMessages(t.Context()); n != 4 {
		t.Errorf("the gateway stored %d messages, want 4", n)
	}
	// Postfix delivers in parallel: the messages are stored in any order.
	stored := map[string]string{}
	for id := int64(1); id <= 4; id++ {
		m, err := db.Message(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		stored[fmt.Sprintf("%q <%s>", m.SenderName, m.Sender)] += m.Auth + "\n"
	}
	for who, auth := range map[string]string{
		`"Dr Who" <dr.who@clinic.example>`: "dkim=pass header.d=clinic.example",
		`"Ward 7" <ward7@clinic.example>`:  "spf=pass smtp.mailfrom=bounces@mail.clinic.example",
		`"" <dr.who@clinic.example>`:       "dmarc=pass header.from=clinic.example",
	} {
		if !strings.Contains(stored[who], auth) {
			t.Errorf("no message from %s with %q; stored: %q", who, auth, stored)
		}
	}
}

// untrustedRcpt is routed through Postfix's "untrusted" transport.
const untrustedRcpt = "12125550199@secure.text"

// postfix is a private Postfix instance: its own configuration, queue and
// log under one directory, listening on a free loopback port.
type postfix struct {
	t    *testing.T
	dir  string
	etc  string
	addr string
}

// startPostfix starts Postfix relaying secure.text to gateway and stops it
// (and removes its directory) when the test ends, failed or not.
func startPostfix(t *testing.T, postfixCmd, gateway string) *postfix {
	t.Helper()
	// Not t.TempDir: Postfix's processes run as the postfix user, which
	// must be able to reach the queue.
	dir, err := os.MkdirTemp("", "securetextd-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pf := &postfix{t: t, dir: dir, etc: filepath.Join(dir, "etc")}
	t.Cleanup(func() {
		pf.stop(postfixCmd)
		if t.Failed() || testing.Verbose() {
			t.Logf("Postfix log:\n%s", pf.log())
		}
		os.RemoveAll(dir)
	})
	u, err := user.Lookup("postfix")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, sub := range []string{"etc", "spool", "data"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(dir, "data"), uid, gid); err != nil {
		t.Fatal(err)
	}
	pf.addr = freePort(t)
	host, port, _ := net.SplitHostPort(gateway)
	files := map[string]string{
		"main.cf": strings.ReplaceAll(`compatibility_level = 3.6
queue_directory = DIR/spool
data_directory = DIR/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.clinic.example
mydomain = clinic.example
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_recipient_maps =
local_transport = error:local delivery disabled
alias_maps =
alias_database =
biff = no
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
transport_maps = texthash:DIR/etc/transport
smtp_dns_support_level = disabled
smtp_tls_security_level = may
smtp_tls_loglevel = 1
smtpd_tls_security_level = none
maillog_file = DIR/maillog
maillog_file_prefixes = DIR
queue_run_delay = 300s
minimal_backoff_time = 300s
maximal_backoff_time = 600s
`, "DIR", dir),
		// The line a hospital adds, and one recipient routed through a
		// client address the gateway does not trust. Everything else
		// (bounces to the test senders) is dropped.
		"transport": fmt.Sprintf(`secure.text	smtp:[%[1]s]:%[2]s
%[3]s	untrusted:[%[1]s]:%[2]s
*	discard:
`, host, port, untrustedRcpt),
		"master.cf": pf.addr + ` inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
untrusted unix  - - n -  - smtp -o smtp_bind_address=127.0.0.2
relay     unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(pf.etc, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, postfixCmd, "-c", pf.etc, "start").CombinedOutput(); err != nil {
		t.Fatalf("postfix start: %v: %s\n%s", err, out, pf.log())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", pf.addr)
		if err == nil {
			c.Close()
			return pf
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postfix does not listen on %s: %v\n%s", pf.addr, err, pf.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops Postfix, and kills its master if it outlives the stop.
func (pf *postfix) stop(postfixCmd string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	pid := pf.masterPID()
	if out, err := exec.CommandContext(ctx, postfixCmd, "-c", pf.etc, "stop").CombinedOutput(); err != nil {
		pf.t.Logf("postfix stop: %v: %s", err, out)
	}
	if pid <= 0 {
		return
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
	}
	pf.t.Logf("Postfix master %d outlived postfix stop: killing it", pid)
	syscall.Kill(pid, syscall.SIGKILL)
}

func (pf *postfix) masterPID() int {
	b, err := os.ReadFile(filepath.Join(pf.dir, "spool", "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func (pf *postfix) log() string {
	b, _ := os.ReadFile(filepath.Join(pf.dir, "maillog"))
	return string(b)
}

var queuedAs = regexp.MustCompile(`queued as ([0-9A-Za-z]+)`)

// submit hands a message to Postfix, as a mail program of the hospital
// would, and returns its queue id.
func (pf *postfix) submit(mailFrom, rcpt string, msg []byte) string {
	pf.t.Helper()
	c, err := gosmtp.Dial(pf.addr)
	if err != nil {
		pf.t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("workstation.clinic.example"); err != nil {
		pf.t.Fatal(err)
	}
	if err := c.Mail(mailFrom, nil); err != nil {
		pf.t.Fatal(err)
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		pf.t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		pf.t.Fatal(err)
	}
	if _, err := w.Write(msg); err != nil {
		pf.t.Fatal(err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		pf.t.Fatal(err)
	}
	m := queuedAs.FindStringSubmatch(resp.StatusText)
	if m == nil {
		pf.t.Fatalf("Postfix said %q", resp.StatusText)
	}
	return m[1]
}

// waitStatus waits for Postfix to log a delivery attempt of queue id with
// status (sent, bounced, deferred) and returns that line.
func (pf *postfix) waitStatus(id, status string) string {
	pf.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for line := range strings.Lines(pf.log()) {
			if strings.Contains(line, " "+id+": to=<") && strings.Contains(line, " status="+status+" ") {
				return strings.TrimSpace(line)
			}
		}
		if time.Now().After(deadline) {
			pf.t.Fatalf("no status=%s for %s in Postfix's log", status, id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a loopback address with a port that was free a moment
// ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
