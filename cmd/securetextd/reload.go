package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/notify"
	"github.com/securetextd/securetextd/portal"
)

// reloadable lists the configuration keys a running gateway takes up at
// SIGHUP (a key ending in "." covers its whole section). Everything else
// (listen addresses, the store, the key, the domain, the SMS provider and
// its credentials, the mail relay, the phone rules, lifecycle periods)
// needs a restart, which is graceful: the reload says which keys those are.
var reloadable = []string{
	"sms.template", "sms.templates", "sms.templates.", "sms.org", "sms.rate",
	"brand.",
	"portal.idle_timeout", "portal.session_lifetime", "portal.max_reply_bytes",
	"portal.lockout_failures", "portal.lockout_window",
	"api.",
	"smtp.tls_cert", "smtp.tls_key",
	"portal.tls_cert", "portal.tls_key", // when the portal serves TLS already
	"console.tls_cert", "console.tls_key", // when the console serves TLS already
}

func isReloadable(key string) bool {
	return slices.ContainsFunc(reloadable, func(r string) bool {
		return key == r || (strings.HasSuffix(r, ".") && strings.HasPrefix(key, r))
	})
}

// watchHUP reloads the configuration file at path on each SIGHUP, until
// the returned function is called.
func (m *Main) watchHUP(path string) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				m.Reload(path)
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}

// Reload reads the configuration file again (path "" is the embedded
// default) and applies what can change while the gateway runs: the text's
// template, organization and rate; the portal's brand, session timeouts,
// reply size and lockout limits; the API's limits; and the TLS certificate,
// which is read again from its files even when their names did not change
// (a renewed certificate). It logs the keys that changed but need a
// restart. A configuration that does not validate changes nothing.
func (m *Main) Reload(path string) error {
	log := m.Logger.With("component", "reload")
	next, err := LoadConfig(path)
	if err != nil {
		m.ops.metrics.Reloaded(false)
		log.Error("configuration not reloaded: it does not validate", "err", err)
		return err
	}
	err = m.apply(next)
	if err != nil {
		m.ops.metrics.Reloaded(false)
		log.Error("configuration not reloaded", "err", err)
		return err
	}
	var applied, restart []string
	for _, k := range configDiff(m.Config, next) {
		if isReloadable(k) {
			applied = append(applied, k)
		} else {
			restart = append(restart, k)
		}
	}
	m.Config = merged(m.Config, next)
	m.ops.metrics.Reloaded(true)
	log.Info("configuration reloaded (TLS certificate read again)", "changed", applied)
	if len(restart) > 0 {
		log.Warn("configuration changes that need a restart were not applied", "keys", restart)
	}
	return nil
}

// apply puts next's reloadable settings in place, all or nothing.
func (m *Main) apply(next Config) error {
	tmpl, err := notify.ParseTemplate(next.SMS.Template)
	if err != nil {
		return fmt.Errorf("sms.template: %w", err)
	}
	// portal.default_language needs a restart: the texts keep the one the
	// portal runs with.
	smsTexts, err := notify.NewTexts(next.SMS.Template, next.SMS.Templates, m.Config.Portal.DefaultLanguage)
	if err != nil {
		return err
	}
	var logo []byte
	if next.Brand.Logo != "" {
		if logo, err = os.ReadFile(next.Path(next.Brand.Logo)); err != nil {
			return fmt.Errorf("brand.logo: %w", err)
		}
	}
	hostname := m.hostname // smtp.hostname needs a restart
	cert, _, err := loadOrCreateCertificate(next.Path(next.SMTP.TLSCert), next.Path(next.SMTP.TLSKey),
		filepath.Dir(m.Config.Path(m.Config.Store.Path)), hostname)
	if err != nil {
		return err
	}
	portalCert, err := reloadCert(&m.ops.portalCert, "portal", next.Path(next.Portal.TLSCert), next.Path(next.Portal.TLSKey))
	if err != nil {
		return err
	}
	var consoleCert *tls.Certificate
	if m.Config.Console.Listen != "" { // a console that is off serves nothing to renew
		consoleCert, err = reloadCert(&m.ops.consoleCert, "console", next.Path(next.Console.TLSCert), next.Path(next.Console.TLSKey))
		if err != nil {
			return err
		}
	}
	ps, err := m.ops.portal.Load().Reconfigure(func(c *portal.Config) {
		c.Org, c.Color, c.Logo = next.Org(), next.Brand.Color, logo
		c.IdleTimeout, c.SessionLifetime = next.Portal.IdleTimeout, next.Portal.SessionLifetime
		c.MaxReplyBytes = next.Portal.MaxReplyBytes
		c.LockoutFailures, c.LockoutWindow = next.Portal.LockoutFailures, next.Portal.LockoutWindow
	}, m.Logger)
	if err != nil {
		return err
	}
	// The phone rules stay those the gateway started with.
	phones := securetextd.PhoneRules{DefaultRegion: m.Config.SMTP.DefaultRegion, AllowedCountries: m.Config.SMS.AllowedCountries}
	if err := m.ops.api.SetConfig(m.ops.apiConfig(next, phones, hostname)); err != nil {
		return err
	}
	// Nothing can fail from here on.
	m.ops.cert.Store(&cert)
	if portalCert != nil {
		m.ops.portalCert.Store(portalCert)
	}
	if consoleCert != nil {
		m.ops.consoleCert.Store(consoleCert)
	}
	m.ops.portal.Store(ps)
	m.ops.texts.Set(notify.TextSettings{Template: tmpl, Texts: smsTexts, Org: next.Org(), Rate: next.SMS.Rate})
	return nil
}

// merged is cur with next's reloadable keys.
func merged(cur, next Config) Config {
	out := cur
	out.SMS.Template, out.SMS.Org, out.SMS.Rate = next.SMS.Template, next.SMS.Org, next.SMS.Rate
	out.SMS.Templates = next.SMS.Templates
	out.Brand = next.Brand
	out.Portal.IdleTimeout, out.Portal.SessionLifetime = next.Portal.IdleTimeout, next.Portal.SessionLifetime
	out.Portal.MaxReplyBytes = next.Portal.MaxReplyBytes
	out.Portal.LockoutFailures, out.Portal.LockoutWindow = next.Portal.LockoutFailures, next.Portal.LockoutWindow
	out.API = next.API
	out.SMTP.TLSCert, out.SMTP.TLSKey = next.SMTP.TLSCert, next.SMTP.TLSKey
	out.Portal.TLSCert, out.Portal.TLSKey = next.Portal.TLSCert, next.Portal.TLSKey
	out.Console.TLSCert, out.Console.TLSKey = next.Console.TLSCert, next.Console.TLSKey
	return out
}

// configDiff returns the keys ("portal.listen") whose values differ
// between a and b, walking the struct by its toml tags, so that keys added
// later are compared too.
func configDiff(a, b Config) []string {
	var keys []string
	var walk func(prefix string, x, y reflect.Value)
	walk = func(prefix string, x, y reflect.Value) {
		t := x.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if !f.IsExported() || tag == "" || tag == "-" {
				continue
			}
			key := prefix + tag
			if f.Type.Kind() == reflect.Struct {
				walk(key+".", x.Field(i), y.Field(i))
				continue
			}
			if !reflect.DeepEqual(x.Field(i).Interface(), y.Field(i).Interface()) {
				keys = append(keys, key)
			}
		}
	}
	walk("", reflect.ValueOf(a), reflect.ValueOf(b))
	return keys
}
