package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/console"
	"github.com/securetextd/securetextd/internal/webedge"
	"github.com/securetextd/securetextd/store"
)

// consoleServer is the clinician's console as Main runs it: its own
// listener (console.listen), with the portal's edge (webedge) and the
// portal's session and lockout limits.
type consoleServer struct {
	http           *http.Server
	idle, lifetime time.Duration // its sessions' limits, for the sweep
}

// startConsole binds console.listen and serves the console, unless
// console.listen is empty. Sessions and lockouts follow the portal's keys.
func (m *Main) startConsole(cfg Config, db *store.DB, log *slog.Logger, phones securetextd.PhoneRules) error {
	cc := cfg.Console
	if cc.Listen == "" {
		log.Info("the console is off: console.listen is empty")
		return nil
	}
	var tc *tls.Config
	if cc.TLSCert != "" {
		cert, err := loadKeyPair("console.tls_cert", cfg.Path(cc.TLSCert), "console.tls_key", cfg.Path(cc.TLSKey))
		if err != nil {
			return err
		}
		tc = m.ops.consoleCert.config(cert, "h2", "http/1.1") // renewed by SIGHUP (reload.go)
	}
	s, err := console.New(console.Config{
		Org:             cfg.Org(),
		Secure:          strings.HasPrefix(cc.PublicURL, "https://"),
		IdleTimeout:     cfg.Portal.IdleTimeout,
		SessionLifetime: cfg.Portal.SessionLifetime,
		LockoutFailures: cfg.Portal.LockoutFailures,
		LockoutWindow:   cfg.Portal.LockoutWindow,
		RequireTOTP:     cc.RequireTOTP,
		ParsePhone:      phones.Parse,
		MaxMessageBytes: cfg.SMTP.MaxMessageBytes,
		MaxRecipients:   50, // smtp's MaxRecipients
		MessageIDHost:   db.MessageIDHost,
		Limits:          console.Limits{DailyPerSender: cfg.Limits.DailyPerSender, PerPhonePerHour: cfg.Limits.PerPhonePerHour, DailyOrg: cfg.Limits.DailyOrg},
	}, db, log)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	l, err := m.listen("tcp", cc.Listen)
	if err != nil {
		return fmt.Errorf("console.listen: %w", err)
	}
	l = webedge.LimitListener(l, cfg.Portal.MaxConnections)
	m.ConsoleAddr = l.Addr().String()
	l = servePortalTLS(l, tc)
	srv := m.httpServer(webedge.ResolveClient(prefixes(cc.TrustedProxies), s))
	m.consoleSrv = &consoleServer{http: srv, idle: cfg.Portal.IdleTimeout, lifetime: cfg.Portal.SessionLifetime}
	m.goServe("console", func() error {
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return nil
}

// closeConsole stops the console, cutting what is left at ctx's deadline.
func (m *Main) closeConsole(ctx context.Context) {
	if m.consoleSrv == nil {
		return
	}
	if err := m.consoleSrv.http.Shutdown(ctx); err != nil {
		m.consoleSrv.http.Close()
	}
}

// sweepConsoleSessions deletes the console's ended sessions, beside the
// portal's (sessions.go).
func (m *Main) sweepConsoleSessions(ctx context.Context) error {
	if m.consoleSrv == nil {
		return nil
	}
	n, err := m.db.SweepConsoleSessions(ctx, m.consoleSrv.idle, m.consoleSrv.lifetime)
	if n > 0 {
		m.Logger.Debug("ended console sessions swept", "sessions", n)
	}
	return err
}
