package smtp

import (
	"net"
	"strings"
	"testing"

	"github.com/securetextd/securetextd/internal/dnstest"
)

// testDNS is the loopback DNS server of internal/dnstest, with the names
// these tests were written with.
type testDNS struct{ *dnstest.Server }

func newTestDNS(t *testing.T) *testDNS { return &testDNS{dnstest.New(t)} }

func (d *testDNS) set(name string, values ...string) { d.Set(name, values...) }
func (d *testDNS) resolver() *net.Resolver           { return d.Resolver() }
func (d *testDNS) stop()                             { d.Stop() }
func (d *testDNS) restart()                          { d.Restart() }
func (d *testDNS) address() string                   { return d.Addr() }

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
	if strings.Contains(err.Error(), d.address()) || strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("server down: error shows the resolver's address: %v", err)
	}
	d.restart()
	if _, err := r.LookupTXT(t.Context(), "here.example"); err != nil {
		t.Errorf("after restart: %v", err)
	}
}
