package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/notify"
	"github.com/securetextd/securetextd/portal"
	"github.com/securetextd/securetextd/smtp"
	"github.com/securetextd/securetextd/store"
)

// Main is the running gateway. Run starts it, Close stops it; tests call
// both with loopback addresses and a temporary directory.
type Main struct {
	Config Config
	Logger *slog.Logger
	// Stdout receives what an operator should read at start: a generated
	// demo password and the next steps.
	Stdout io.Writer
	// HTTPClient, when set, is used to reach the SMS provider (tests).
	HTTPClient *http.Client
	// MailTLS, when set, is the TLS configuration for the mail relay
	// (tests trust their own relay's certificate with it).
	MailTLS *tls.Config

	// SubmissionAddr, RelayAddr and PortalAddr are the bound addresses,
	// known after Run (useful with port 0). RelayAddr is empty without a
	// relay listener.
	SubmissionAddr, RelayAddr, PortalAddr string
	// ConsoleAddr is the console's bound address; empty when it is off.
	ConsoleAddr string
	// OpsAddr is the bound [ops] listen address; empty when metrics and
	// health are served on the portal listener.
	OpsAddr string
	ops     *opsState // metrics, health, the API, reloads (ops.go)
	// hostname is the name the gateway goes by (smtp.hostname, or the
	// host's FQDN), found once at start.
	hostname string

	db         *store.DB
	submission *smtp.Server
	relay      *smtp.Server
	portal     *http.Server
	console    *os.File
	consoleSrv *consoleServer // the clinician's console (console.go)

	stopWorker context.CancelFunc
	wg         sync.WaitGroup
	listeners  []net.Listener // every listener Run opened (listeners.go)

	// readHeaderTimeout, when set, replaces the HTTP servers' (tests).
	readHeaderTimeout time.Duration
}

// Run opens the store, binds the listeners (so that a bad address fails
// here) and starts serving in goroutines.
func (m *Main) Run(ctx context.Context) error {
	cfg := m.Config
	if m.Stdout == nil {
		m.Stdout = io.Discard
	}
	log := m.Logger

	var keyCreated bool
	db, err := openStore(cfg, &keyCreated)
	if err != nil {
		return err
	}
	m.db = db
	m.ops = m.newOps()
	if keyCreated {
		log.Info("created a new key file", "path", cfg.Path(cfg.Store.KeyFile))
	}
	// SQLite: refuse a second serving process, clear up after the last.
	st, err := db.StartNode(ctx)
	if err != nil {
		return err
	}
	if st.Orphans > 0 {
		log.Info("removed unfinished uploads from before a restart", "blobs", st.Orphans)
	}
	if st.Released > 0 {
		log.Info("released the jobs a stopped process had claimed", "jobs", st.Released)
	}
	demoPassword, err := m.ensureDemoAccount(ctx)
	if err != nil {
		return err
	}
	if err := m.auditStart(ctx, db.SealingKey()); err != nil {
		return err
	}

	// The greeting of both listeners, the self-signed certificate and
	// every Message-ID the gateway makes name it (config_hostname.go).
	hostname := cfg.smtpHostname(ctx)
	m.hostname = hostname
	db.MessageIDHost = hostname
	// Malware scanning of every part, as it is sealed (config_scan.go).
	scanner, err := cfg.scanner(log, m.ops.metrics)
	if err != nil {
		return err
	}
	if scanner != nil {
		db.Scanner, db.ScanFailOpen = scanner, cfg.Scan.FailOpen
	} else {
		log.Info("malware scanning is off: scan.clamd is empty")
	}
	dataDir := filepath.Dir(cfg.Path(cfg.Store.Path))
	cert, generated, err := loadOrCreateCertificate(cfg.Path(cfg.SMTP.TLSCert), cfg.Path(cfg.SMTP.TLSKey), dataDir, hostname)
	if err != nil {
		return err
	}
	if generated {
		log.Info("generated a self-signed TLS certificate", "dir", dataDir)
	}

	portalTLS, err := m.ops.portalTLS(cfg) // nil: plain HTTP (portal_edge.go)
	if err != nil {
		return err
	}

	tmpl, err := notify.ParseTemplate(cfg.SMS.Template)
	if err != nil {
		return fmt.Errorf("sms.template: %w", err)
	}
	smsTexts, err := cfg.smsTexts()
	if err != nil {
		return err
	}
	segments, warnings := smsTexts.Check(cfg.Org(), cfg.Portal.PublicURL)
	log.Info("sms texts", "segments", segments)
	for _, w := range warnings {
		log.Warn("sms.template: " + w)
	}
	sms, err := m.smsProvider()
	if err != nil {
		return err
	}

	subL, err := m.listen("tcp", cfg.SMTP.SubmissionListen)
	if err != nil {
		return fmt.Errorf("smtp.submission_listen: %w", err)
	}
	portalL, err := m.listen("tcp", cfg.Portal.Listen)
	if err != nil {
		subL.Close()
		return fmt.Errorf("portal.listen: %w", err)
	}
	// The portal's own connection cap, under any TLS (listener.go).
	portalL = portal.LimitListener(portalL, cfg.Portal.MaxConnections)
	m.SubmissionAddr = subL.Addr().String()
	m.PortalAddr = portalL.Addr().String()
	portalL = servePortalTLS(portalL, portalTLS)
	if err := m.ops.listen(); err != nil {
		subL.Close()
		portalL.Close()
		return err
	}

	phones := securetextd.PhoneRules{
		DefaultRegion:    cfg.SMTP.DefaultRegion,
		AllowedCountries: cfg.SMS.AllowedCountries,
	}
	smtpCfg := smtp.Config{
		Hostname:          hostname,
		Domain:            cfg.SMTP.Domain,
		Phones:            phones,
		EmailRecipients:   cfg.EmailRecipients.Enabled,
		MaxMessageBytes:   cfg.SMTP.MaxMessageBytes,
		TLS:               m.ops.tlsConfig(cert), // reloaded by SIGHUP
		AllowInsecureAuth: cfg.SMTP.AllowInsecureAuth,
		Metrics:           m.ops.metrics,
		// Each listener counts its own connections.
		MaxConnections:      cfg.SMTP.MaxConnections,
		MaxConnectionsPerIP: cfg.SMTP.MaxConnectionsPerIP,
		IdleTimeout:         cfg.SMTP.IdleTimeout,
	}
	m.submission = smtp.NewSubmission(smtpCfg, db, log)
	var relayL net.Listener
	if cfg.Relay.Listen != "" {
		if relayL, err = m.listen("tcp", cfg.Relay.Listen); err != nil {
			subL.Close()
			portalL.Close()
			return fmt.Errorf("relay.listen: %w", err)
		}
		m.RelayAddr = relayL.Addr().String()
		m.relay = smtp.NewRelay(smtp.RelayConfig{
			Config:          smtpCfg,
			TrustedNetworks: prefixes(cfg.Relay.TrustedNetworks),
			RequireTLS:      cfg.Relay.RequireTLS,
			Policy:          cfg.Relay.Policy,
			SenderDomains:   cfg.Relay.SenderDomains,
			Resolver:        resolver(cfg.Relay.DNSServer),
		}, db, log)
	}

	var logo []byte
	if cfg.Brand.Logo != "" {
		if logo, err = os.ReadFile(cfg.Path(cfg.Brand.Logo)); err != nil {
			subL.Close()
			portalL.Close()
			return fmt.Errorf("brand.logo: %w", err)
		}
	}
	ps, err := portal.New(portal.Config{
		Org:             cfg.Org(),
		Color:           cfg.Brand.Color,
		Logo:            logo,
		Secure:          strings.HasPrefix(cfg.Portal.PublicURL, "https://"),
		IdleTimeout:     cfg.Portal.IdleTimeout,
		SessionLifetime: cfg.Portal.SessionLifetime,
		MaxReplyBytes:   cfg.Portal.MaxReplyBytes,
		LockoutFailures: cfg.Portal.LockoutFailures,
		LockoutWindow:   cfg.Portal.LockoutWindow,
		AccessExpiry:    cfg.Portal.AccessExpiry,
		ParsePhone:      cfg.parseRecipient(phones),
		Metrics:         m.ops.metrics,

		VonageSignatureSecret: cfg.SMS.Vonage.SignatureSecret,
		VonageSignatureMethod: cfg.SMS.Vonage.SignatureMethod,

		SecondFactor:   cfg.Portal.SecondFactor,
		Codes:          db.Codes(),
		RememberDevice: cfg.Portal.RememberDevice,

		DefaultLanguage: cfg.Portal.DefaultLanguage,
	}, db, log)
	if err != nil {
		subL.Close()
		portalL.Close()
		return fmt.Errorf("portal: %w", err)
	}
	// The portal with the REST API beside it, and what of metrics and
	// health belongs there (opsOnPortal, ops.go).
	handler, err := m.ops.handler(ps, phones, hostname)
	if err != nil {
		subL.Close()
		portalL.Close()
		return fmt.Errorf("api: %w", err)
	}
	m.portal = m.httpServer(handler)

	dkim, err := cfg.dkim()
	if err != nil {
		subL.Close()
		portalL.Close()
		return err
	}
	color, onColor := cfg.brandColors()
	mailer, err := notify.NewMailer(notify.MailConfig{
		DefaultLanguage: cfg.Portal.DefaultLanguage,
		Relay:           cfg.Mail.Relay,
		RequireTLS:      cfg.Mail.RequireTLS,
		Username:        cfg.Mail.Username,
		Password:        cfg.Mail.Password,
		TLSConfig:       m.MailTLS,
		From:            cfg.Mail.From,
		Dir:             cfg.Path(cfg.Mail.Dir),
		Seal:            db.Keyring(), // the emails in Dir are sealed
		Org:             cfg.Org(),
		Domain:          cfg.SMTP.Domain,
		PublicURL:       cfg.Portal.PublicURL,
		Hostname:        hostname,
		Color:           color,
		OnColor:         onColor,
		DKIM:            dkim,
		ReplyMode:       cfg.Mail.ReplyMode,
		ConsoleURL:      cfg.consoleURL(),
	}, db, log)
	if err != nil {
		subL.Close()
		portalL.Close()
		return fmt.Errorf("mail: %w", err)
	}

	if err := m.startConsole(cfg, db, log, phones); err != nil {
		subL.Close()
		portalL.Close()
		return err
	}

	workerCtx, stopWorker := context.WithCancel(context.Background())
	m.stopWorker = stopWorker
	// Two drains of the one outbox: texts at the SMS rate, and mail
	// (replies, resets), so that a slow relay never holds up a text.
	texts := &notify.Worker{
		Outbox:    db,
		SMS:       sms,
		Template:  tmpl,
		Texts:     smsTexts,
		Org:       cfg.Org(),
		PublicURL: cfg.Portal.PublicURL,
		Rate:      cfg.SMS.Rate,
		Logger:    log,
		Metrics:   m.ops.metrics,
		Live:      &m.ops.texts, // reloaded by SIGHUP
		Poll:      outboxPoll(db),
	}
	mail := &notify.Worker{Outbox: db, Mail: mailer, Logger: log, Metrics: m.ops.metrics, Poll: outboxPoll(db)}
	// The goroutines get the servers as values: Close clears the fields.
	submission, relaySrv, portalSrv := m.submission, m.relay, m.portal
	m.goServe("smtp", func() error { return submission.Serve(subL) })
	if relaySrv != nil {
		m.goServe("relay", func() error { return relaySrv.Serve(relayL) })
	}
	m.goServe("portal", func() error {
		if err := portalSrv.Serve(portalL); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	m.goServe("notify-texts", m.ops.running("texts", func() error { return texts.Run(workerCtx) }))
	m.goServe("notify-mail", m.ops.running("mail", func() error { return mail.Run(workerCtx) }))
	m.ops.serve()
	m.goServe("sweep", func() error { return m.sweepOrphans(workerCtx) })
	m.goServe("lifecycle", func() error { return m.sweepLifecycle(workerCtx, cfg) })
	m.goServe("sessions", func() error { return m.sweepSessions(workerCtx) })

	// What start-up made and dropped (the configuration's parse, the
	// templates' and catalogues' sources, the migrations) goes back to
	// the system now rather than stay resident under the working set.
	debug.FreeOSMemory()
	log.Info("securetextd started", "version", securetextd.Version,
		"submission", m.SubmissionAddr, "portal", m.PortalAddr, "relay", m.RelayAddr, "sms", cfg.SMS.Provider)
	m.printNextSteps(demoPassword)
	return nil
}

func (m *Main) goServe(name string, f func() error) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		// A listener Close closed ends its Serve with net.ErrClosed.
		if err := f(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, net.ErrClosed) {
			m.Logger.Error("stopped", "component", name, "err", err)
		}
	}()
}

// sweepOrphans removes, every hour, the sealed chunks of uploads that never
// finished (a client that vanished mid-DATA), once they are an hour old:
// older than any upload under way, on this node or another.
func (m *Main) sweepOrphans(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.sweep(ctx, store.SweepOrphans, func(ctx context.Context) error { // sweeps.go
				_, err := m.db.SweepOrphans(ctx, time.Now().Add(-time.Hour))
				return err
			})
		}
	}
}

// Close stops accepting, lets sessions in progress finish until ctx is
// done, stops the outbox worker after its current job, and closes the
// store.
//
// It closes every listener itself before it shuts a server down: a
// server's Shutdown only closes the listeners its Serve has registered,
// and a Serve that has not started yet (a SIGTERM just as start-up ends)
// would otherwise register its listener afterwards and accept forever.
//
// Close may be called more than once; later calls do nothing.
func (m *Main) Close(ctx context.Context) error {
	var errs []error
	if m.ops != nil {
		m.ops.closing.Store(true) // /readyz fails from now on
	}
	m.closeListeners()
	if m.submission != nil {
		if err := m.submission.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, err)
		}
		m.submission = nil
	}
	if m.relay != nil {
		if err := m.relay.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, err)
		}
		m.relay = nil
	}
	if m.portal != nil {
		if err := m.portal.Shutdown(ctx); err != nil {
			m.portal.Close() // the deadline passed: cut what is left
		}
		m.portal = nil
	}
	m.closeConsole(ctx)
	if m.stopWorker != nil {
		m.stopWorker()
		m.stopWorker = nil
	}
	if m.ops != nil {
		m.ops.close(ctx)
	}
	m.wg.Wait()
	// The session sweep reads consoleSrv until its goroutine has ended.
	m.consoleSrv = nil
	if m.db != nil {
		errs = append(errs, m.db.Close())
		m.db = nil
	}
	if m.console != nil {
		errs = append(errs, m.console.Close())
		m.console = nil
	}
	return errors.Join(errs...)
}

func (m *Main) smsProvider() (notify.SMSProvider, error) {
	cfg := m.Config.SMS
	switch cfg.Provider {
	case "vonage":
		v, err := notify.NewVonage(notify.VonageConfig{
			APIKey:     cfg.Vonage.APIKey,
			APISecret:  cfg.Vonage.APISecret,
			From:       cfg.Vonage.From,
			BaseURL:    cfg.Vonage.BaseURL,
			HTTPClient: m.HTTPClient,
			Callback:   m.Config.dlrCallback(),
		})
		if err != nil {
			return nil, fmt.Errorf("sms.vonage: %w", err)
		}
		return v, nil
	default:
		w := m.Stdout
		if cfg.ConsoleFile != "" {
			f, err := os.OpenFile(m.Config.Path(cfg.ConsoleFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				return nil, fmt.Errorf("sms.console_file: %w", err)
			}
			m.console = f
			w = f
		}
		return notify.NewConsole(w, m.Config.Org()), nil
	}
}

// ensureDemoAccount creates smtp.demo_account with a random password when
// there is no sender account yet, and returns the password to print.
func (m *Main) ensureDemoAccount(ctx context.Context) (string, error) {
	addr := m.Config.SMTP.DemoAccount
	if addr == "" {
		return "", nil
	}
	n, err := m.db.CountSenders(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	// 26 characters of base32, 130 random bits: strong by construction
	// (securetextd-pwcheck's TestGeneratedPasswordsPass holds it to the rule
	// of every other sender's password).
	password := rand.Text()
	if err := m.db.CreateSender(ctx, addr, password); err != nil {
		return "", fmt.Errorf("smtp.demo_account: %w", err)
	}
	return password, nil
}

func (m *Main) printNextSteps(demoPassword string) {
	cfg := m.Config
	w := m.Stdout
	fmt.Fprintf(w, "\nsecuretextd is running.\n")
	fmt.Fprintf(w, "  SMTP submission (STARTTLS + AUTH): %s\n", m.SubmissionAddr)
	fmt.Fprintf(w, "  recipient portal:                   %s\n", cfg.Portal.PublicURL)
	if demoPassword != "" {
		fmt.Fprintf(w, "\ncreated the demo sender account %s with the password:\n\n    %s\n\n", cfg.SMTP.DemoAccount, demoPassword)
		fmt.Fprintf(w, "it is shown only this once; send a first message with:\n\n")
		fmt.Fprintf(w, "    curl -sS --url smtp://%s --ssl-reqd --insecure --crlf --user '%s:%s' \\\n", m.SubmissionAddr, cfg.SMTP.DemoAccount, demoPassword)
		fmt.Fprintf(w, "      --mail-from %s --mail-rcpt 2125550123@%s --upload-file examples/first-message.eml\n\n", cfg.SMTP.DemoAccount, cfg.SMTP.Domain)
	}
	if cfg.SMS.Provider == "console" {
		where := "below, as a JSON line"
		if cfg.SMS.ConsoleFile != "" {
			where = "in " + cfg.Path(cfg.SMS.ConsoleFile)
		}
		fmt.Fprintf(w, "texts are not sent: each appears %s, with its link.\n\n", where)
	}
	if cfg.Mail.Relay == "" {
		fmt.Fprintf(w, "mail to senders is not sent: it is kept sealed in %s (securetextd mail list shows it).\n\n", cfg.Path(cfg.Mail.Dir))
	}
}

// newLogger builds the process's one logger from [log].
func newLogger(cfg Config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// resolver returns the resolver for DKIM, SPF and DMARC lookups: the
// system's, or one that asks only the server at addr ("host:port").
func resolver(addr string) *net.Resolver {
	if addr == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}
