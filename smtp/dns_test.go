package smtp

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// testDNS is an authoritative DNS server on loopback, UDP and TCP on one
// port, serving the TXT records a test sets: DKIM keys, SPF and DMARC
// records. A name without records is NXDOMAIN. It can be stopped and
// started again on the same port, to play a DNS server that is down.
type testDNS struct {
	t    *testing.T
	addr string

	mu      sync.Mutex
	txt     map[string][]string // "name." → one value per record
	servers []*dns.Server
}

func newTestDNS(t *testing.T) *testDNS {
	t.Helper()
	d := &testDNS{t: t, txt: make(map[string][]string)}
	d.start("127.0.0.1:0")
	t.Cleanup(d.stop)
	return d
}

// start listens on addr (both UDP and TCP; port 0 picks a port free for
// both).
func (d *testDNS) start(addr string) {
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

// stop shuts the server down: lookups then fail at once (connection
// refused), as when a resolver is down.
func (d *testDNS) stop() {
	d.mu.Lock()
	servers := d.servers
	d.servers = nil
	d.mu.Unlock()
	for _, s := range servers {
		s.Shutdown()
	}
}

// restart starts a stopped server again on its port.
func (d *testDNS) restart() { d.start(d.address()) }

// address is where the server listens, or listened before stop.
func (d *testDNS) address() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addr
}

// set replaces the TXT records of name.
func (d *testDNS) set(name string, values ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.txt[dns.CanonicalName(name)] = values
}

// resolver returns a resolver that asks only this server.
func (d *testDNS) resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, network, d.address())
		},
	}
}

func (d *testDNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
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
					Txt: splitTXT(v),
				})
			}
		}
	}
	w.WriteMsg(m)
}

// splitTXT cuts a value into the 255-byte strings of one TXT record (a
// DKIM RSA-2048 key is longer); resolvers join them back.
func splitTXT(v string) []string {
	var parts []string
	for len(v) > 255 {
		parts = append(parts, v[:255])
		v = v[255:]
	}
	return append(parts, v)
}

// TestCheckResolverErrors checks that DNS failures come out of the
// resolver the checks use either as "not found" or as temporary, never as
// a third kind that the libraries would read as permanent.
func TestCheckResolverErrors(t *testing.T) {
	d := newTestDNS(t)
	d.set("here.example", "v=spf1 -all")
	r := checkResolver{r: d.resolver()}

	txt, err := r.LookupTXT(t.Context(), "here.example")
	if err != nil || len(txt) != 1 {
		t.Fatalf("LookupTXT = %q, %v", txt, err)
	}
	_, err = r.LookupTXT(t.Context(), "missing.example")
	if de, ok := err.(*net.DNSError); !ok || !de.IsNotFound || de.Temporary() {
		t.Errorf("missing name: %#v", err)
	}
	d.stop()
	_, err = r.LookupTXT(t.Context(), "here.example")
	if de, ok := err.(*net.DNSError); !ok || de.IsNotFound || !de.Temporary() {
		t.Errorf("server down: %#v", err)
	}
	if strings.Contains(err.Error(), d.addr) || strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("server down: error shows the resolver's address: %v", err)
	}
	d.restart()
	if _, err := r.LookupTXT(t.Context(), "here.example"); err != nil {
		t.Errorf("after restart: %v", err)
	}
}
