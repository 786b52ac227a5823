// Package webedge is the edge that the daemon's two web listeners share,
// the recipient's portal and the clinician's console: who the client is
// behind a reverse proxy (ResolveClient, ClientAddr, ClientKey), the
// connection cap that answers 503 past it (LimitListener), the HTTP
// server with every timeout set (NewHTTPServer), and the security headers
// of every response (Headers). Each listener builds its own handlers on
// top; what guards them is written once, here.
package webedge

import (
	"log/slog"
	"net/http"
	"time"
)

// Headers sets the security headers of every response, in one place:
// csp as the Content-Security-Policy, no sniffing, no referrer, no
// framing, same-origin isolation, no-store caching, and HSTS when secure
// (served over HTTPS). Handlers may loosen Cache-Control for public
// assets and tighten the policy for downloads; nothing else changes them.
func Headers(secure bool, csp string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if secure {
			h.Set("Strict-Transport-Security", "max-age=63072000")
		}
		next.ServeHTTP(w, r)
	})
}

// NewHTTPServer wraps a handler in an http.Server with every timeout set:
// request headers must arrive within 10 seconds (a client dribbling them,
// a slowloris, is cut then), a request within 5 minutes, an idle
// connection is closed after 2, and headers are at most 32 KiB. Serve it
// on a [LimitListener] to give it a connection cap as well.
func NewHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute, // replies with photos over slow links
		WriteTimeout:      10 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
