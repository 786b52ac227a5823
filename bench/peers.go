package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The servers the gateway is compared with, each started on a free
// loopback port with its data under the run's work directory:
//
//   - smtp-sink (Postfix's test server): the SMTP protocol ceiling; it
//     reads and discards.
//   - go-smtp receiving and discarding (this program's "discard"
//     subcommand): the ceiling of the SMTP library the gateway is built on.
//   - Postfix, a private instance that authenticates with Cyrus SASL
//     (sasldb) and puts every message on its hold queue: the durable peer,
//     which fsyncs each queue file before its 250 and delivers nothing.
//   - Mailpit: a Go SMTP server that stores into SQLite.
//   - the gateway, the real binary, as its own process.

const (
	benchUser = "bench@clinic.example"
	benchPass = "bench password 123"
	benchTo   = "2125550123@secure.text"
)

// proc is a server process started by the harness.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
}

func startProc(dir, name string, args ...string) *proc {
	return startProcEnv(dir, name, nil, args...)
}

// startProcEnv is startProc with env added to the harness's environment.
func startProcEnv(dir, name string, env []string, args ...string) *proc {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		fatalf("%v", err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		fatalf("start %s: %v", name, err)
	}
	f.Close()
	p := &proc{name: name, cmd: cmd, log: logPath}
	cleanups = append(cleanups, p.stop)
	return p
}

// stop ends the process: SIGTERM, then SIGKILL after 10 s.
func (p *proc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// tail returns the end of the process's log, for error messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func startSink(dir string) *peer {
	addr := freeAddr()
	p := startProc(dir, "smtp-sink", "smtp-sink", "-u", "postfix", addr, "1024")
	if err := waitListen(addr, 10*time.Second); err != nil {
		fatalf("smtp-sink: %v\n%s", err, p.tail())
	}
	return &peer{name: "smtp-sink", addr: addr, user: benchUser, pass: benchPass, root: p.pid(), stop: p.stop}
}

func startDiscard(dir string) *peer {
	addr := freeAddr()
	self, err := os.Executable()
	if err != nil {
		fatalf("%v", err)
	}
	p := startProc(dir, "go-smtp-discard", self, "discard", addr)
	if err := waitListen(addr, 10*time.Second); err != nil {
		fatalf("go-smtp discard: %v\n%s", err, p.tail())
	}
	return &peer{name: "go-smtp discard", addr: addr, user: benchUser, pass: benchPass, root: p.pid(), stop: p.stop}
}

func startMailpit(dir, bin string) *peer {
	addr, ui := freeAddr(), freeAddr()
	db := filepath.Join(mustMkdir(dir, "mailpit"), "mailpit.db")
	p := startProc(dir, "mailpit", bin,
		"--database", db,
		"--max", "0", "--max-message-size", "0",
		"--smtp", addr, "--listen", ui,
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--smtp-disable-rdns",
		"--disable-version-check", "--quiet")
	if err := waitListen(addr, 30*time.Second); err != nil {
		fatalf("mailpit: %v\n%s", err, p.tail())
	}
	return &peer{name: "Mailpit", addr: addr, user: benchUser, pass: benchPass, root: p.pid(), stop: p.stop, sqlite: db}
}

// postfix is a private Postfix instance, as in smtp/relay_postfix_test.go,
// with SASL: its configuration, queue, SASL database and log under one
// directory.
type postfix struct {
	dir, etc string
	peer     *peer
	master   int
	stopped  bool
}

func startPostfix(root string) *postfix {
	dir := mustMkdir(root, "postfix")
	pf := &postfix{dir: dir, etc: mustMkdir(dir, "etc")}
	mustMkdir(dir, "spool")
	data := mustMkdir(dir, "data")
	sasl := mustMkdir(pf.etc, "sasl") // Debian's Postfix reads $config_directory/sasl
	u, err := user.Lookup("postfix")
	if err != nil {
		fatalf("postfix user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(data, uid, gid); err != nil {
		fatalf("%v", err)
	}
	addr := freeAddr()
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
relay_domains = secure.text
smtpd_relay_restrictions = permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination
# Every message goes to the hold queue: accepted durably, never delivered.
smtpd_recipient_restrictions = check_client_access static:HOLD
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtpd_tls_security_level = none
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
smtpd_sasl_security_options = noanonymous
smtpd_tls_auth_only = no
message_size_limit = 209715200
default_process_limit = 100
smtpd_client_connection_count_limit = 0
maillog_file = DIR/maillog
maillog_file_prefixes = DIR
`, "DIR", dir),
		"master.cf": addr + ` inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
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
			fatalf("%v", err)
		}
	}
	db := filepath.Join(sasl, "sasldb2")
	conf := "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: " + db + "\nmech_list: PLAIN LOGIN\n"
	if err := os.WriteFile(filepath.Join(sasl, "smtpd.conf"), []byte(conf), 0o644); err != nil {
		fatalf("%v", err)
	}
	name, realm, _ := strings.Cut(benchUser, "@")
	cmd := exec.Command("saslpasswd2", "-p", "-c", "-f", db, "-u", realm, name)
	cmd.Stdin = strings.NewReader(benchPass)
	if out, err := cmd.CombinedOutput(); err != nil {
		fatalf("saslpasswd2: %v: %s", err, out)
	}
	if err := os.Chown(db, uid, gid); err != nil {
		fatalf("%v", err)
	}
	if out, err := exec.Command("postfix", "-c", pf.etc, "start").CombinedOutput(); err != nil {
		fatalf("postfix start: %v: %s\n%s", err, out, pf.log())
	}
	cleanups = append(cleanups, pf.stop)
	if err := waitListen(addr, 20*time.Second); err != nil {
		fatalf("postfix: %v\n%s", err, pf.log())
	}
	pf.master = pf.masterPID()
	pf.peer = &peer{name: "Postfix queue", addr: addr, user: benchUser, pass: benchPass, root: pf.master, tree: true, stop: pf.stop}
	return pf
}

func (pf *postfix) masterPID() int {
	for range 100 {
		b, err := os.ReadFile(filepath.Join(pf.dir, "spool", "pid", "master.pid"))
		if err == nil {
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
				return pid
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	fatalf("postfix: no master.pid")
	return 0
}

func (pf *postfix) log() string {
	b, _ := os.ReadFile(filepath.Join(pf.dir, "maillog"))
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// purge empties the hold queue between runs, so that every run starts
// from the same queue size.
func (pf *postfix) purge() {
	exec.Command("postsuper", "-c", pf.etc, "-d", "ALL", "hold").Run()
}

func (pf *postfix) stop() {
	if pf.stopped {
		return
	}
	pf.stopped = true
	pid := pf.master
	exec.Command("postfix", "-c", pf.etc, "stop").Run()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// gateway is the securetextd binary running on its own configuration.
type gateway struct {
	*proc
	bin, name    string
	dir, config  string
	smtp, portal string
	peer         *peer
}

// gogcVariant is the garbage collector setting of the extra gateway runs
// that show the trade-off between memory and CPU: the heap may grow to
// five times what is live (GOGC=400) instead of twice (Go's default).
const gogcVariant = "GOGC=400"

// gatewayConfig is the gateway's configuration for the bench: plain-text
// AUTH on loopback (TLS is not what is measured), texts to the fake
// Vonage server, replies to files.
//
// store holds more [store] keys (the engine), extra more sections.
func gatewayConfig(smtpAddr, portalAddr, vonageURL string, rate float64, store, extra string) string {
	return fmt.Sprintf(`[smtp]
submission_listen = %q
allow_insecure_auth = true
# Every bench client is on loopback, and one-message-per-connection runs
# reconnect faster than the gateway counts the old connection out.
max_connections_per_ip = 1000
[store]
path = "data/securetextd.db"
key_file = "data/securetextd.key"
%s[portal]
listen = %q
public_url = "http://%s"
# The portal phase signs in with the link and a password: the code texted
# to the phone (the default) is not what is measured.
second_factor = "none"
# The clinicians' console is not what is measured (and two gateways run
# side by side in the engines phase).
[console]
listen = ""
[sms]
provider = "vonage"
rate = %g
org = "Bench Clinic"
[sms.vonage]
api_key = "benchkey"
api_secret = "bench-secret"
from = "BenchClinic"
base_url = %q
[mail]
dir = "data/mail-out"
# The bench sends thousands of messages to 1,000 phones from one sender.
[limits]
daily_per_sender = 0
per_phone_per_hour = 0
%s`, smtpAddr, store, portalAddr, portalAddr, rate, vonageURL, extra)
}

func startGateway(bin, root, name, vonageURL string, rate float64) *gateway {
	return startGatewayStore(bin, root, name, vonageURL, rate, "")
}

// startGatewayStore is startGateway with more [store] keys (the engine).
func startGatewayStore(bin, root, name, vonageURL string, rate float64, store string) *gateway {
	dir := mustMkdir(root, name)
	g := &gateway{dir: dir, config: filepath.Join(dir, "securetextd.toml"), smtp: freeAddr(), portal: freeAddr()}
	if err := os.WriteFile(g.config, []byte(gatewayConfig(g.smtp, g.portal, vonageURL, rate, store, "")), 0o600); err != nil {
		fatalf("%v", err)
	}
	cmd := exec.Command(bin, "user", "add", benchUser, "--config", g.config, "--password-stdin")
	cmd.Stdin = strings.NewReader(benchPass + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		fatalf("securetextd user add: %v: %s", err, out)
	}
	g.bin, g.name = bin, name
	g.peer = &peer{name: gatewayName, addr: g.smtp, user: benchUser, pass: benchPass}
	if store == "" {
		g.peer.sqlite = filepath.Join(dir, "data", "securetextd.db")
	}
	g.start(nil)
	return g
}

// start starts the gateway with env added to its environment (GOGC, for
// the runs that show what a larger heap would buy: gogcVariant).
func (g *gateway) start(env []string) {
	g.proc = startProcEnv(g.dir, g.name, env, g.bin, "serve", "--config", g.config)
	for _, addr := range []string{g.smtp, g.portal} {
		if err := waitListen(addr, 30*time.Second); err != nil {
			fatalf("securetextd: %v\n%s", err, g.tail())
		}
	}
	g.peer.root, g.peer.stop = g.pid(), g.stop
}

// restart stops the gateway (SIGTERM: a clean shutdown) and starts it
// again on the same data, with env added to its environment: a fresh
// process, whose peak memory is that of what it does next.
func (g *gateway) restart(env ...string) {
	g.stop()
	g.start(env)
}
