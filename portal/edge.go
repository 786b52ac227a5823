package portal

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"

	"github.com/securetextd/securetextd/internal/webedge"
)

// The portal's edge is shared with the console: internal/webedge. These
// are its names as the portal and the daemon have always called them.

// ResolveClient is webedge.ResolveClient: the client's address of every
// request, believing forwarding headers only from trusted proxies.
func ResolveClient(trusted []netip.Prefix, next http.Handler) http.Handler {
	return webedge.ResolveClient(trusted, next)
}

// LimitListener is webedge.LimitListener: at most max connections at
// once, a 503 past that.
func LimitListener(l net.Listener, max int) net.Listener { return webedge.LimitListener(l, max) }

// NewHTTPServer is webedge.NewHTTPServer: an http.Server with every
// timeout set.
func NewHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return webedge.NewHTTPServer(h, logger)
}

func clientAddr(r *http.Request) string   { return webedge.ClientAddr(r) }
func clientKey(r *http.Request) string    { return webedge.ClientKey(r) }
func clientIP(r *http.Request) netip.Addr { return webedge.ClientIP(r) }
