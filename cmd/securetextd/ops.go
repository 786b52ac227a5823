package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/notify"
	"github.com/securetextd/securetextd/ops"
	"github.com/securetextd/securetextd/portal"
)

// opsState is what the running gateway has for operators and integrators:
// the metrics, the health checks, the REST API beside the portal, the
// optional ops listener, and what a configuration reload swaps.
type opsState struct {
	m       *Main
	metrics *ops.Metrics
	health  *ops.Health

	api    *portal.API
	portal atomic.Pointer[portal.Server]
	texts  notify.LiveText
	cert   liveCert // SMTP's STARTTLS certificate
	// portalCert is the portal's own certificate (portal.tls_cert), or
	// holds nil when the portal speaks plain HTTP (portal_edge.go).
	portalCert liveCert
	// consoleCert is the console's own certificate (console.tls_cert), or
	// none: a reload renews it as it does the portal's.
	consoleCert liveCert

	listener net.Listener // [ops] listen, or nil
	server   *http.Server

	closing atomic.Bool
	mu      sync.Mutex
	workers map[string]bool // outbox workers running
}

// newOps makes the metrics registry (one per Main: no global state) and
// the readiness checks.
func (m *Main) newOps() *opsState {
	o := &opsState{m: m, workers: make(map[string]bool)}
	o.metrics = ops.New(prometheus.NewRegistry(), m.db)
	o.health = &ops.Health{Checks: []ops.Check{
		{Name: "shutdown", Func: func(context.Context) error {
			if o.closing.Load() {
				return errors.New("shutting down")
			}
			return nil
		}},
		{Name: "database writable", Func: func(ctx context.Context) error { return m.db.ProbeWrite(ctx) }},
		{Name: "key loaded", Func: func(context.Context) error { return m.db.CheckKeys() }},
		{Name: "outbox workers running", Func: func(context.Context) error {
			o.mu.Lock()
			defer o.mu.Unlock()
			var stopped []string
			for _, name := range []string{"texts", "mail"} {
				if !o.workers[name] {
					stopped = append(stopped, name)
				}
			}
			if len(stopped) > 0 {
				return fmt.Errorf("not running: %s", strings.Join(stopped, ", "))
			}
			return nil
		}},
	}}
	return o
}

// running wraps an outbox worker's Run so that readiness knows it runs.
func (o *opsState) running(name string, run func() error) func() error {
	return func() error {
		o.mu.Lock()
		o.workers[name] = true
		o.mu.Unlock()
		defer func() {
			o.mu.Lock()
			o.workers[name] = false
			o.mu.Unlock()
		}()
		return run()
	}
}

// tlsConfig serves cert, or the one a reload put in its place.
func (o *opsState) tlsConfig(cert tls.Certificate) *tls.Config {
	return o.cert.config(cert)
}

// apiConfig is the API's part of cfg.
func (o *opsState) apiConfig(cfg Config, phones securetextd.PhoneRules, host string) portal.APIConfig {
	return portal.APIConfig{
		ParsePhone:    phones.Parse,
		MaxJSONBytes:  cfg.API.MaxJSONBytes,
		MaxBodyBytes:  cfg.API.MaxBodyBytes,
		MaxRecipients: 50, // smtp's MaxRecipients
		Rate:          cfg.API.Rate,
		Burst:         cfg.API.Burst,
		Secure:        strings.HasPrefix(cfg.Portal.PublicURL, "https://"),
		MessageIDHost: host,
		Metrics:       o.metrics,

		EmailRecipients: cfg.EmailRecipients.Enabled, // config_email.go
	}
}

// handler is what the portal listener serves: the REST API under
// /api/v1, which is routed around the portal's cookies and cross-origin
// check (an API request carries a Bearer key, never a cookie, so there is
// nothing to forge, and a server-to-server POST has no Origin to check);
// when [ops] listen is empty, /healthz, and /metrics and /readyz too
// unless the portal faces the internet (opsOnPortal); and the portal
// (swapped by a reload) for everything else. Every request's latency is
// measured by route pattern.
func (o *opsState) handler(ps *portal.Server, phones securetextd.PhoneRules, host string) (http.Handler, error) {
	api, err := portal.NewAPI(o.apiConfig(o.m.Config, phones, host), o.m.db, o.m.Logger)
	if err != nil {
		return nil, err
	}
	o.api = api
	o.portal.Store(ps)
	healthz, private := o.m.Config.opsOnPortal()
	route := func(r *http.Request) (http.Handler, func(*http.Request) string) {
		switch p := r.URL.Path; {
		case p == "/api/v1" || strings.HasPrefix(p, "/api/v1/"):
			return api, api.Pattern
		case healthz && p == "/healthz", private && (p == "/metrics" || p == "/readyz"):
			return o.opsMux(), func(*http.Request) string { return "GET " + p }
		}
		ps := o.portal.Load()
		return ps, ps.Pattern
	}
	// The client's address, behind portal.trusted_proxies, is resolved
	// once here for the portal and the API alike.
	return portal.ResolveClient(prefixes(o.m.Config.Portal.TrustedProxies), o.metrics.Instrument(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h, _ := route(r)
			h.ServeHTTP(w, r)
		}),
		func(r *http.Request) string { _, p := route(r); return p(r) },
	)), nil
}

// opsMux serves /metrics, /healthz and /readyz.
func (o *opsState) opsMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", o.metrics.Handler())
	mux.HandleFunc("GET /healthz", o.health.Healthz)
	mux.HandleFunc("GET /readyz", o.health.Readyz)
	return mux
}

// opsOnPortal says what of /healthz, and of /metrics and /readyz, the
// portal listener serves. With [ops] listen set, none: they are all
// there. Without it, /healthz stays on the portal (a load balancer in
// front checks it, and it tells nothing but "up"); /metrics and /readyz
// (how busy the gateway is, how logins fail, which check fails) only
// while portal.public_url is http://, a portal on loopback in development.
// An https:// portal faces the internet, and serves them nowhere until
// ops.listen gives them a private address.
func (c *Config) opsOnPortal() (healthz, metricsAndReadyz bool) {
	if c.Ops.Listen != "" {
		return false, false
	}
	return true, !strings.HasPrefix(c.Portal.PublicURL, "https://")
}

// listen binds [ops] listen, if set, so that a bad address fails at start.
func (o *opsState) listen() error {
	if o.m.Config.Ops.Listen == "" {
		if _, private := o.m.Config.opsOnPortal(); !private {
			o.m.Logger.Warn("/metrics and /readyz are not served: portal.public_url is https://, so the portal faces the internet; set ops.listen to a private address to serve them")
		}
		return nil
	}
	l, err := o.m.listen("tcp", o.m.Config.Ops.Listen)
	if err != nil {
		return fmt.Errorf("ops.listen: %w", err)
	}
	o.listener = portal.LimitListener(l, o.m.Config.Ops.MaxConnections)
	o.m.OpsAddr = l.Addr().String()
	return nil
}

// serve serves the ops listener, if there is one.
func (o *opsState) serve() {
	if o.listener == nil {
		return
	}
	mux := o.opsMux()
	o.server = o.m.httpServer(o.metrics.Instrument(mux, func(r *http.Request) string {
		_, p := mux.Handler(r)
		return p
	}))
	// The goroutine gets the server as a value: close clears the field.
	l, srv := o.listener, o.server
	o.m.goServe("ops", func() error {
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
}

// close stops the ops listener. Readiness has failed since shutdown began.
func (o *opsState) close(ctx context.Context) {
	if o.server != nil {
		if err := o.server.Shutdown(ctx); err != nil {
			o.server.Close()
		}
		o.server = nil
	} else if o.listener != nil {
		o.listener.Close()
	}
	o.listener = nil
}

// httpServer is portal.NewHTTPServer for each of the daemon's HTTP
// listeners, with the read-header timeout a test may shorten.
func (m *Main) httpServer(h http.Handler) *http.Server {
	s := portal.NewHTTPServer(h, m.Logger)
	if m.readHeaderTimeout > 0 {
		s.ReadHeaderTimeout = m.readHeaderTimeout
	}
	return s
}
