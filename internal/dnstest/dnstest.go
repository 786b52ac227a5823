// Package dnstest is an authoritative DNS server on loopback for tests:
// the DKIM keys, SPF and DMARC records that the relay's checks and a
// verifier of the gateway's own signatures look up.
package dnstest

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is an authoritative DNS server on loopback, UDP and TCP on one
// port, serving the TXT records a test sets: DKIM keys, SPF and DMARC
// records. A name without records is NXDOMAIN. It can be stopped and
// started again on the same port, to play a DNS server that is down.
type Server struct {
	t    testing.TB
	addr string

	mu      sync.Mutex
	txt     map[string][]string // "name." → one value per record
	servers []*dns.Server
}

// New starts a server; the test's cleanup stops it.
func New(t testing.TB) *Server {
	t.Helper()
	d := &Server{t: t, txt: make(map[string][]string)}
	d.start("127.0.0.1:0")
	t.Cleanup(d.Stop)
	return d
}

// start listens on addr (both UDP and TCP; port 0 picks a port free for
// both).
func (d *Server) start(addr string) {
	d.t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			d.t.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			if strings.HasSuffix(addr, ":0") {
				continue // the UDP port is taken in TCP: try another
			}
			d.t.Fatal(err)
		}
		d.mu.Lock()
		d.addr = pc.LocalAddr().String()
		d.mu.Unlock()
		udp := &dns.Server{PacketConn: pc, Handler: d}
		tcp := &dns.Server{Listener: l, Handler: d}
		var started sync.WaitGroup
		started.Add(2)
		udp.NotifyStartedFunc = started.Done
		tcp.NotifyStartedFunc = started.Done
		go udp.ActivateAndServe()
		go tcp.ActivateAndServe()
		started.Wait()
		d.mu.Lock()
		d.servers = []*dns.Server{udp, tcp}
		d.mu.Unlock()
		return
	}
	d.t.Fatal("no free port for UDP and TCP")
}

// Stop shuts the server down: lookups then fail at once (connection
// refused), as when a resolver is down.
func (d *Server) Stop() {
	d.mu.Lock()
	servers := d.servers
	d.servers = nil
	d.mu.Unlock()
	for _, s := range servers {
		s.Shutdown()
	}
}

// Restart starts a stopped server again on its port.
func (d *Server) Restart() { d.start(d.Addr()) }

// Addr is where the server listens, or listened before stop.
func (d *Server) Addr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addr
}

// Set replaces the TXT records of name.
func (d *Server) Set(name string, values ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.txt[dns.CanonicalName(name)] = values
}

// Resolver returns a resolver that asks only this server.
func (d *Server) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, network, d.Addr())
		},
	}
}

func (d *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) == 1 {
		q := req.Question[0]
		d.mu.Lock()
		values, ok := d.txt[dns.CanonicalName(q.Name)]
		d.mu.Unlock()
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeTXT:
			for _, v := range values {
				m.Answer = append(m.Answer, &dns.TXT{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
					Txt: SplitTXT(v),
				})
			}
		}
	}
	w.WriteMsg(m)
}

// SplitTXT cuts a value into the 255-byte strings of one TXT record (a
// DKIM RSA-2048 key is longer); resolvers join them back.
func SplitTXT(v string) []string {
	var parts []string
	for len(v) > 255 {
		parts = append(parts, v[:255])
		v = v[255:]
	}
	return append(parts, v)
}
