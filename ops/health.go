package ops

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Check is one readiness check: nil when ready, or why not.
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// Health serves /healthz and /readyz.
//
// /healthz answers 200 as long as the process serves HTTP: a supervisor
// restarts the process when it stops answering. /readyz runs every check
// (database writable, key loaded, outbox workers running) and answers 200
// only when all pass, 503 otherwise, one line per check either way, so
// that a load balancer stops sending work to a gateway that could not
// take it.
type Health struct {
	Checks []Check
	// Timeout bounds each check (default 3s).
	Timeout time.Duration
}

// Healthz serves /healthz.
func (h *Health) Healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

// Readyz serves /readyz.
func (h *Health) Readyz(w http.ResponseWriter, r *http.Request) {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	var b strings.Builder
	status := http.StatusOK
	for _, c := range h.Checks {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		err := c.Func(ctx)
		cancel()
		if err != nil {
			status = http.StatusServiceUnavailable
			fmt.Fprintf(&b, "fail %s: %v\n", c.Name, err)
		} else {
			fmt.Fprintf(&b, "ok   %s\n", c.Name)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprint(w, b.String())
}
