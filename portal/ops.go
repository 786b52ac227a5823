package portal

import (
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Reconfigure returns a new Server with s's configuration as update
// changes it, which keeps the reads already recorded, so that a
// configuration reload (SIGHUP) changes the brand, timeouts and limits
// without recording them again. Lockouts need no keeping: the store
// counts them (limits.go), and the new limits apply to the counts as they
// stand. The caller swaps the new Server in for s; requests under way
// finish on s. logger is the one given to New.
func (s *Server) Reconfigure(update func(*Config), logger *slog.Logger) (*Server, error) {
	cfg := s.cfg
	update(&cfg)
	n, err := New(cfg, s.store, logger)
	if err != nil {
		return nil, err
	}
	n.reads = s.reads
	return n, nil
}

// SessionLimits returns how long a session may stay idle and how long it
// may last, as s runs now: what the daemon sweeps ended sessions by.
func (s *Server) SessionLimits() (idle, lifetime time.Duration) {
	return s.cfg.IdleTimeout, s.cfg.SessionLifetime
}

// Pattern returns the pattern of the route that serves r ("GET
// /m/{token}"), or "" when none does: the label of a request's latency,
// which never holds the tokens its path may.
func (s *Server) Pattern(r *http.Request) string {
	s.lookupOnce.Do(func() {
		s.lookup = http.NewServeMux()
		s.routes(s.lookup)
	})
	_, p := s.lookup.Handler(r)
	return p
}

// Pattern returns the pattern of the API route that serves r, or "".
func (a *API) Pattern(r *http.Request) string {
	_, p := a.mux.Handler(r)
	return p
}

// routeLookup is a mux with the portal's routes, only ever asked which
// pattern a request matches.
type routeLookup struct {
	lookupOnce sync.Once
	lookup     *http.ServeMux
}
