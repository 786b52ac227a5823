package portal

// Metrics counts the portal's logins and lockouts, for monitoring.
// cmd/securetextd passes a Prometheus implementation; a nil Metrics counts
// nothing. Request latencies are measured around the whole handler, by
// route pattern, by whoever serves it.
type Metrics interface {
	// Login counts a password tried: outcome "ok", "failed", or "locked"
	// (refused unchecked while logins are paused).
	Login(outcome string)
	// Lockout counts a phone number or client address whose wrong
	// passwords paused its logins.
	Lockout()
}

// Login outcomes, as Metrics counts them.
const (
	LoginOK     = "ok"
	LoginFailed = "failed"
	LoginLocked = "locked"
)

func (s *Server) metrics() Metrics {
	if s.cfg.Metrics != nil {
		return s.cfg.Metrics
	}
	return nopMetrics{}
}

type nopMetrics struct{}

func (nopMetrics) Login(string) {}
func (nopMetrics) Lockout()     {}
