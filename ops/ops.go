// Package ops lets operators see the gateway: Prometheus metrics and the
// health endpoints.
//
// The other packages know nothing of Prometheus. Each declares the small
// interface it reports through (smtp.Metrics, notify.Metrics,
// portal.Metrics, portal.MessageMetrics), and *Metrics implements them
// all (and clamd.Metrics); cmd/securetextd hands it to each. The registry is made by the
// caller and passed in: there is no global state, and a test can run two
// gateways in one process.
package ops

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// Outbox is where the outbox gauges come from, on each scrape.
// *store.DB implements it.
type Outbox interface {
	OutboxStats(ctx context.Context) (*store.OutboxStats, error)
}

// Metrics holds the gateway's metrics. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	accepted  *prometheus.CounterVec
	refused   *prometheus.CounterVec
	jobs      *prometheus.CounterVec
	logins    *prometheus.CounterVec
	lockouts  prometheus.Counter
	sessions  *prometheus.CounterVec
	active    *prometheus.GaugeVec
	latency   *prometheus.HistogramVec
	reloads   *prometheus.CounterVec
	scrapeErr prometheus.Counter
	scans     *prometheus.CounterVec
	scanTime  prometheus.Histogram
}

// New registers the gateway's metrics, and the Go runtime's and the
// process's, with reg. outbox, if not nil, is asked for the outbox's depth
// and the age of its oldest job on each scrape.
func New(reg *prometheus.Registry, outbox Outbox) *Metrics {
	m := &Metrics{
		reg: reg,
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "securetextd_messages_accepted_total",
			Help: "Messages accepted (stored and queued), by source: submission, relay or api.",
		}, []string{"source"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "securetextd_messages_refused_total",
			Help: "Refused MAIL, RCPT or DATA commands and API requests, by source and reason.",
		}, []string{"source", "reason"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "securetextd_outbox_jobs_total",
			Help: "Outbox attempts by job kind (text, reply, reset, notice, …) and outcome: sent, retried or failed.",
		}, []string{"kind", "outcome"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "securetextd_portal_logins_total",
			Help: "Portal passwords tried, by outcome: ok, failed, or locked (refused while logins are paused).",
		}, []string{"outcome"}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securetextd_portal_lockouts_total",
			Help: "Phone numbers or client addresses whose wrong passwords paused their logins.",
		}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "securetextd_smtp_sessions_total",
			Help: "SMTP connections accepted, by listener.",
		}, []string{"listener"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "securetextd_smtp_sessions_active",
			Help: "SMTP connections open, by listener.",
		}, []string{"listener"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "securetextd_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern (never the path, which may hold tokens), method and status.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "code"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "securetextd_config_reloads_total",
			Help: "Configuration reloads (SIGHUP), by result: ok or failed.",
		}, []string{"result"}),
		scrapeErr: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securetextd_outbox_stats_errors_total",
			Help: "Scrapes whose outbox statistics could not be read.",
		}),
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "securetextd_scans_total",
			Help: "Bodies and files scanned by clamd, by result: clean, infected, or error (clamd down, timed out or refusing).",
		}, []string{"result"}),
		scanTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "securetextd_scan_seconds",
			Help:    "How long clamd took to give its verdict on a body or file once it had been sent (what scanning adds to a client's wait).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
	}
	for _, r := range []string{"clean", "infected", "error"} {
		m.scans.WithLabelValues(r) // shown at 0 before the first scan
	}
	reg.MustRegister(m.accepted, m.refused, m.jobs, m.logins, m.lockouts, m.sessions, m.active,
		m.latency, m.reloads, m.scrapeErr, m.scans, m.scanTime,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "securetextd_build_info",
			Help:        "Always 1; the version is a label.",
			ConstLabels: prometheus.Labels{"version": securetextd.Version},
		}, func() float64 { return 1 }),
	)
	if outbox != nil {
		reg.MustRegister(&outboxCollector{outbox: outbox, errs: m.scrapeErr})
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Scanned implements clamd.Metrics. An error has no verdict time.
func (m *Metrics) Scanned(result string, verdict time.Duration) {
	m.scans.WithLabelValues(result).Inc()
	if result != "error" {
		m.scanTime.Observe(verdict.Seconds())
	}
}

// MessageAccepted implements smtp.Metrics and portal.MessageMetrics.
func (m *Metrics) MessageAccepted(source string) { m.accepted.WithLabelValues(source).Inc() }

// MessageRefused implements smtp.Metrics and portal.MessageMetrics.
func (m *Metrics) MessageRefused(source, reason string) {
	m.refused.WithLabelValues(source, reason).Inc()
}

// SessionOpened implements smtp.Metrics.
func (m *Metrics) SessionOpened(listener string) {
	m.sessions.WithLabelValues(listener).Inc()
	m.active.WithLabelValues(listener).Inc()
}

// SessionClosed implements smtp.Metrics.
func (m *Metrics) SessionClosed(listener string) { m.active.WithLabelValues(listener).Dec() }

// JobDone implements notify.Metrics.
func (m *Metrics) JobDone(kind, outcome string) { m.jobs.WithLabelValues(kind, outcome).Inc() }

// Login implements portal.Metrics.
func (m *Metrics) Login(outcome string) { m.logins.WithLabelValues(outcome).Inc() }

// Lockout implements portal.Metrics.
func (m *Metrics) Lockout() { m.lockouts.Inc() }

// Reloaded counts a configuration reload.
func (m *Metrics) Reloaded(ok bool) {
	if ok {
		m.reloads.WithLabelValues("ok").Inc()
	} else {
		m.reloads.WithLabelValues("failed").Inc()
	}
}

// Instrument measures each request's latency, labelled with the pattern of
// the route that serves it as pattern finds it ("GET /m/{token}"), or
// "unmatched".
func (m *Metrics) Instrument(next http.Handler, pattern func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := pattern(r)
		if route == "" {
			route = "unmatched"
		}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(sw, r)
		m.latency.WithLabelValues(route, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	})
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (deadlines,
// flushing) through the wrapper.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// outboxCollector reads the outbox's state from the store on each scrape.
type outboxCollector struct {
	outbox Outbox
	errs   prometheus.Counter
}

var (
	outboxDepth = prometheus.NewDesc("securetextd_outbox_depth",
		"Outbox jobs waiting to be carried out (pending, retries included), by kind.", []string{"kind"}, nil)
	outboxAge = prometheus.NewDesc("securetextd_outbox_oldest_job_age_seconds",
		"Age of the oldest pending outbox job; 0 when the outbox is empty.", nil, nil)
)

var (
	writeTxs = prometheus.NewDesc("securetextd_store_write_transactions_total",
		"Write transactions this node began (a group commit of several messages is one).", nil, nil)
	writeHeld = prometheus.NewDesc("securetextd_store_write_lock_seconds_total",
		"Time this node's write transactions held the store's write lock (on PostgreSQL, shared by every node).", nil, nil)
)

// writeLocker is a store that counts its write transactions.
type writeLocker interface {
	WriteLockStats() (txs int64, held time.Duration)
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxDepth
	ch <- outboxAge
	if _, ok := c.outbox.(writeLocker); ok {
		ch <- writeTxs
		ch <- writeHeld
	}
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.outbox.OutboxStats(ctx)
	if err != nil {
		c.errs.Inc()
		return
	}
	for _, kind := range []string{securetextd.JobKindText, securetextd.JobKindReply, securetextd.JobKindReset, securetextd.JobKindConfirm} {
		if _, ok := st.Pending[kind]; !ok {
			st.Pending[kind] = 0 // the usual kinds show even at zero
		}
	}
	for kind, n := range st.Pending {
		ch <- prometheus.MustNewConstMetric(outboxDepth, prometheus.GaugeValue, float64(n), kind)
	}
	age := 0.0
	if !st.Oldest.IsZero() {
		age = max(0, time.Since(st.Oldest).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(outboxAge, prometheus.GaugeValue, age)
	if w, ok := c.outbox.(writeLocker); ok {
		txs, held := w.WriteLockStats()
		ch <- prometheus.MustNewConstMetric(writeTxs, prometheus.CounterValue, float64(txs))
		ch <- prometheus.MustNewConstMetric(writeHeld, prometheus.CounterValue, held.Seconds())
	}
}
