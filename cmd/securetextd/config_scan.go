package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/securetextd/securetextd/clamd"
)

// ScanConfig is the [scan] section: malware scanning with ClamAV's
// daemon. Every part of every message, and every file of every reply, is
// streamed to clamd while it is sealed (store/scan.go).
type ScanConfig struct {
	// Clamd is clamd's address: "unix:/run/clamav/clamd.ctl" or
	// "tcp:127.0.0.1:3310". Empty turns scanning off (doctor warns).
	Clamd string `toml:"clamd"`
	// Timeout bounds each wait on clamd: connecting, taking a chunk,
	// giving its verdict once a part is sent.
	Timeout time.Duration `toml:"timeout"`
	// FailOpen lets content through unscanned, audited, when clamd is
	// down or times out; otherwise mail gets 451 4.7.1 and the portal
	// asks to try again.
	FailOpen bool `toml:"fail_open"`
}

func scanDefaults(c *Config) {
	c.Scan = ScanConfig{Timeout: 30 * time.Second}
}

// validateScan checks [scan].
func (c *Config) validateScan() []string {
	var p []string
	if c.Scan.Clamd != "" {
		if _, _, err := clamd.ParseAddress(c.Scan.Clamd); err != nil {
			p = append(p, "scan.clamd: "+err.Error())
		}
	}
	if t := c.Scan.Timeout; t < time.Second || t > 10*time.Minute {
		p = append(p, fmt.Sprintf("scan.timeout: %s is out of range (1s to 10m)", t))
	}
	return p
}

// scanner returns the clamd client the configuration asks for, or nil
// when scanning is off.
func (c *Config) scanner(logger *slog.Logger, metrics clamd.Metrics) (*clamd.Client, error) {
	if c.Scan.Clamd == "" {
		return nil, nil
	}
	s, err := clamd.New(c.Scan.Clamd, c.Scan.Timeout, logger.With("component", "clamd"), metrics)
	if err != nil {
		return nil, fmt.Errorf("scan.clamd: %w", err)
	}
	return s, nil
}

// doctorScan says whether content is scanned, and asks clamd for its
// version when it is.
func doctorScan(cfg Config, timeout time.Duration, line func(level, what, detail string)) {
	if cfg.Scan.Clamd == "" {
		line("warn", "scan.clamd", "empty: messages and replies are not scanned for malware; set it to clamd's socket (unix:/run/clamav/clamd.ctl)")
		return
	}
	c, err := cfg.scanner(slog.New(slog.DiscardHandler), nil)
	if err != nil {
		line("FAIL", "scan.clamd", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	v, err := c.Version(ctx)
	switch {
	case err != nil && cfg.Scan.FailOpen:
		line("warn", "scan.clamd", fmt.Sprintf("%s does not answer (%v): mail goes through unscanned (scan.fail_open)", cfg.Scan.Clamd, err))
	case err != nil:
		line("FAIL", "scan.clamd", fmt.Sprintf("%s does not answer (%v): mail gets 451 until it does", cfg.Scan.Clamd, err))
	default:
		line("ok", "scan.clamd", fmt.Sprintf("%s answers: %s; its StreamMaxLength must allow smtp.max_message_bytes (%d)", cfg.Scan.Clamd, v, cfg.SMTP.MaxMessageBytes))
	}
}
