package main

import (
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/notify"
	"github.com/securetextd/securetextd/smtp"
)

// Config is the whole configuration file. Every field has a default (see
// DefaultConfig), so a file that sets only some keys works.
type Config struct {
	SMTP struct {
		Domain            string `toml:"domain"`
		DefaultRegion     string `toml:"default_region"`
		SubmissionListen  string `toml:"submission_listen"`
		MaxMessageBytes   int64  `toml:"max_message_bytes"`
		TLSCert           string `toml:"tls_cert"`
		TLSKey            string `toml:"tls_key"`
		AllowInsecureAuth bool   `toml:"allow_insecure_auth"`
		DemoAccount       string `toml:"demo_account"`
		// The name in greetings and Message-IDs; "" is the host's FQDN
		// (config_hostname.go).
		Hostname string `toml:"hostname"`
		// The flood limits, for both listeners (config_smtp.go).
		MaxConnections      int           `toml:"max_connections"`
		MaxConnectionsPerIP int           `toml:"max_connections_per_ip"`
		IdleTimeout         time.Duration `toml:"idle_timeout"`
	} `toml:"smtp"`
	Relay struct {
		Listen          string   `toml:"listen"`
		TrustedNetworks []string `toml:"trusted_networks"`
		RequireTLS      bool     `toml:"require_tls"`
		Policy          string   `toml:"policy"`
		SenderDomains   []string `toml:"sender_domains"`
		DNSServer       string   `toml:"dns_server"`
	} `toml:"relay"`
	Store struct {
		Path      string        `toml:"path"`
		KeyFile   string        `toml:"key_file"`
		Retention time.Duration `toml:"retention"`
		// The engine (config_store.go).
		Driver   string `toml:"driver"`
		DSN      string `toml:"dsn"`
		MaxConns int    `toml:"max_conns"`
	} `toml:"store"`
	Portal struct {
		Listen          string        `toml:"listen"`
		PublicURL       string        `toml:"public_url"`
		IdleTimeout     time.Duration `toml:"idle_timeout"`
		SessionLifetime time.Duration `toml:"session_lifetime"`
		MaxReplyBytes   int64         `toml:"max_reply_bytes"`
		LockoutFailures int           `toml:"lockout_failures"`
		LockoutWindow   time.Duration `toml:"lockout_window"`
		AccessExpiry    time.Duration `toml:"access_expiry"`
		// HTTPS of its own, and the proxies in front (portal_edge.go).
		TLSCert        string   `toml:"tls_cert"`
		TLSKey         string   `toml:"tls_key"`
		TrustedProxies []string `toml:"trusted_proxies"`
		MaxConnections int      `toml:"max_connections"` // config_http.go
		// The second factor (config_factor.go).
		SecondFactor   string        `toml:"second_factor"`
		RememberDevice time.Duration `toml:"remember_device"`
		// The patient's language (config_language.go).
		DefaultLanguage string `toml:"default_language"`
	} `toml:"portal"`
	Brand struct {
		Org   string `toml:"org"`
		Color string `toml:"color"`
		Logo  string `toml:"logo"`
	} `toml:"brand"`
	SMS struct {
		Provider    string  `toml:"provider"`
		ConsoleFile string  `toml:"console_file"`
		Rate        float64 `toml:"rate"`
		Template    string  `toml:"template"`
		// Templates: the text per language (config_language.go).
		Templates        map[string]string `toml:"templates"`
		AllowedCountries []string          `toml:"allowed_countries"`
		Org              string            `toml:"org"`
		Vonage           struct {
			APIKey    string `toml:"api_key"`
			APISecret string `toml:"api_secret"`
			From      string `toml:"from"`
			BaseURL   string `toml:"base_url"`
			// Delivery receipts (lifecycle.go).
			SignatureSecret string `toml:"signature_secret"`
			SignatureMethod string `toml:"signature_method"`
		} `toml:"vonage"`
	} `toml:"sms"`
	Mail struct {
		Relay      string `toml:"relay"`
		From       string `toml:"from"`
		Dir        string `toml:"dir"`
		RequireTLS bool   `toml:"require_tls"`
		Username   string `toml:"username"`
		Password   string `toml:"password"`
		// The sender's notices (lifecycle.go).
		ReadReceipts    string `toml:"read_receipts"`
		DeliveryNotices bool   `toml:"delivery_notices"`
		// Signing the email recipients' notices (config_email.go).
		DKIMDomain   string `toml:"dkim_domain"`
		DKIMSelector string `toml:"dkim_selector"`
		DKIMKey      string `toml:"dkim_key"`
		// What a reply's email holds (config_replymode.go).
		ReplyMode string `toml:"reply_mode"`
	} `toml:"mail"`
	Conversations ConversationsConfig `toml:"conversations"` // config_replymode.go
	Limits        struct {
		DailyPerSender    int `toml:"daily_per_sender"`
		PerPhonePerHour   int `toml:"per_phone_per_hour"`
		PerAddressPerHour int `toml:"per_address_per_hour"` // config_email.go
		DailyOrg          int `toml:"daily_org"`            // config_limits.go
	} `toml:"limits"`
	EmailRecipients EmailRecipientsConfig `toml:"email_recipients"` // config_email.go
	Log             struct {
		Format string `toml:"format"`
		Level  string `toml:"level"`
	} `toml:"log"`
	API  APIConfig  `toml:"api"` // config_ops.go
	Ops  OpsConfig  `toml:"ops"`
	Scan ScanConfig `toml:"scan"` // config_scan.go

	Console ConsoleConfig `toml:"console"` // config_console.go

	// dir is the directory relative paths are resolved against.
	dir string
}

// DefaultConfig returns the configuration used for every key a file leaves
// out. It matches config.example.toml, except for the demo account, which
// only the example creates.
func DefaultConfig() Config {
	var c Config
	c.SMTP.Domain = "secure.text"
	c.SMTP.DefaultRegion = "US"
	c.SMTP.SubmissionListen = "127.0.0.1:2587"
	c.SMTP.MaxMessageBytes = 100 << 20
	c.SMTP.Hostname = "" // the host's FQDN, found at start (config_hostname.go)
	smtpLimitDefaults(&c)
	c.Relay.TrustedNetworks = []string{"127.0.0.1/32"}
	c.Relay.RequireTLS = true
	c.Relay.Policy = smtp.PolicyDMARC
	c.Relay.SenderDomains = []string{}
	c.Store.Path = "data/securetextd.db"
	c.Store.Driver = "sqlite" // store.SQLite
	c.Store.KeyFile = "data/securetextd.key"
	c.Portal.Listen = "127.0.0.1:8080"
	c.Portal.PublicURL = "http://127.0.0.1:8080"
	c.Portal.IdleTimeout = 15 * time.Minute
	c.Portal.SessionLifetime = 12 * time.Hour
	c.Portal.MaxReplyBytes = 25 << 20
	c.Portal.LockoutFailures = 5
	c.Portal.LockoutWindow = 15 * time.Minute
	c.Portal.TrustedProxies = []string{}
	c.Brand.Color = "#1d4e89"
	c.SMS.Provider = "console"
	c.SMS.Rate = 1
	c.SMS.Template = notify.DefaultTemplate
	c.SMS.AllowedCountries = []string{"US", "CA"}
	c.SMS.Org = "securetextd"
	c.SMS.Vonage.BaseURL = "https://rest.nexmo.com"
	c.Mail.From = "securetextd@localhost"
	c.Mail.Dir = "data/mail-out"
	c.Mail.RequireTLS = true
	c.Log.Format = "text"
	c.Log.Level = "info"
	lifecycleDefaults(&c)
	httpDefaults(&c)
	c.API = defaultAPIConfig()
	scanDefaults(&c)
	factorDefaults(&c)
	languageDefaults(&c)
	consoleDefaults(&c)
	replyModeDefaults(&c)
	return c
}

// LoadConfig reads and validates a configuration file. With path "", it
// reads the embedded config.example.toml, relative to the working directory.
func LoadConfig(path string) (Config, error) {
	data := securetextd.ExampleConfig
	dir := "."
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		dir = filepath.Dir(path)
	}
	return ParseConfig(data, dir)
}

// ParseConfig decodes a configuration over the defaults and validates it.
// The error lists every problem found, each naming its key: unknown keys,
// values of the wrong type and bad values, in the order of the file
// (config_check.go). Only a file that is not TOML at all stops at its
// first error, with its line.
func ParseConfig(data []byte, dir string) (Config, error) {
	c := DefaultConfig()
	c.dir = dir
	if err := c.decode(data); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ConfigError lists everything wrong with a configuration at once, one
// problem a line, each starting with its key.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string {
	if len(e.Problems) == 1 {
		return "config: " + e.Problems[0]
	}
	return fmt.Sprintf("config: %d problems:\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

func (c *Config) validate() []string {
	var p []string
	bad := func(key, format string, args ...any) {
		p = append(p, key+": "+fmt.Sprintf(format, args...))
	}

	if d := c.SMTP.Domain; d == "" || strings.ContainsAny(d, "@ \t<>") || !strings.Contains(d, ".") {
		bad("smtp.domain", "%q is not a domain name", d)
	}
	if _, ok := phonenumbers.GetSupportedRegions()[c.SMTP.DefaultRegion]; !ok {
		bad("smtp.default_region", "%q is not a region code (ISO 3166, such as \"US\")", c.SMTP.DefaultRegion)
	}
	if err := checkListen(c.SMTP.SubmissionListen); err != nil {
		bad("smtp.submission_listen", "%v", err)
	} else if c.SMTP.AllowInsecureAuth && !isLoopback(c.SMTP.SubmissionListen) {
		bad("smtp.allow_insecure_auth", "only allowed when smtp.submission_listen is a loopback address, not %q", c.SMTP.SubmissionListen)
	}
	if c.SMTP.MaxMessageBytes < 1024 || c.SMTP.MaxMessageBytes > 1<<30 {
		bad("smtp.max_message_bytes", "%d is out of range (1024 to 1073741824)", c.SMTP.MaxMessageBytes)
	}
	if (c.SMTP.TLSCert == "") != (c.SMTP.TLSKey == "") {
		bad("smtp.tls_cert", "set both smtp.tls_cert and smtp.tls_key, or neither")
	}
	if a := c.SMTP.DemoAccount; a != "" {
		if _, err := mail.ParseAddress(a); err != nil || strings.ContainsAny(a, "<> ") {
			bad("smtp.demo_account", "%q is not an email address", a)
		}
	}

	if c.Relay.Listen != "" {
		if err := checkListen(c.Relay.Listen); err != nil {
			bad("relay.listen", "%v", err)
		} else if c.Relay.Listen == c.SMTP.SubmissionListen && !strings.HasSuffix(c.Relay.Listen, ":0") {
			bad("relay.listen", "%q is also smtp.submission_listen", c.Relay.Listen)
		}
		if len(c.Relay.SenderDomains) == 0 {
			bad("relay.sender_domains", "must list the From domains that may send through the relay")
		}
		if len(c.Relay.TrustedNetworks) == 0 {
			bad("relay.trusted_networks", "must list the mail servers that may relay (CIDRs)")
		}
	}
	for _, n := range c.Relay.TrustedNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			bad("relay.trusted_networks", "%q is not a CIDR such as \"192.0.2.0/24\"", n)
		}
	}
	if err := smtp.ValidatePolicy(c.Relay.Policy); err != nil {
		bad("relay.policy", "%v", err)
	}
	for _, d := range c.Relay.SenderDomains {
		if err := smtp.ValidateSenderDomain(d); err != nil {
			bad("relay.sender_domains", "%v", err)
		}
	}
	if c.Relay.DNSServer != "" {
		if _, _, err := net.SplitHostPort(c.Relay.DNSServer); err != nil {
			bad("relay.dns_server", "%q is not host:port", c.Relay.DNSServer)
		}
	}

	if c.Store.Path == "" {
		bad("store.path", "must not be empty")
	}
	p = append(p, c.validateStore()...)
	if c.Store.KeyFile == "" {
		bad("store.key_file", "must not be empty")
	}

	if err := checkListen(c.Portal.Listen); err != nil {
		bad("portal.listen", "%v", err)
	}
	if u, err := url.Parse(c.Portal.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("portal.public_url", "%q is not an http:// or https:// URL", c.Portal.PublicURL)
	} else if u.Scheme == "http" && !isLoopback(net.JoinHostPort(u.Hostname(), "80")) {
		bad("portal.public_url", "%q: use https:// (plain http:// is only for a portal on loopback, in development)", c.Portal.PublicURL)
	}
	if d := c.Portal.IdleTimeout; d < time.Minute || d > 24*time.Hour {
		bad("portal.idle_timeout", "%v is out of range (1m to 24h)", d)
	}
	if d := c.Portal.SessionLifetime; d < c.Portal.IdleTimeout || d > 30*24*time.Hour {
		bad("portal.session_lifetime", "%v is out of range (portal.idle_timeout to 720h)", d)
	}
	if n := c.Portal.MaxReplyBytes; n < 1<<20 || n > 1<<30 {
		bad("portal.max_reply_bytes", "%d is out of range (1048576 to 1073741824)", n)
	}
	if n := c.Portal.LockoutFailures; n < 1 || n > 100 {
		bad("portal.lockout_failures", "%d is out of range (1 to 100)", n)
	}
	if d := c.Portal.LockoutWindow; d < time.Minute || d > 24*time.Hour {
		bad("portal.lockout_window", "%v is out of range (1m to 24h)", d)
	}

	if len(c.Brand.Org) > 40 {
		bad("brand.org", "must be at most 40 characters: it starts every text")
	}
	if !brandColor.MatchString(c.Brand.Color) {
		bad("brand.color", "%q is not a colour: use #RRGGBB", c.Brand.Color)
	}
	if c.Brand.Logo != "" {
		if fi, err := os.Stat(c.Path(c.Brand.Logo)); err != nil {
			bad("brand.logo", "%v", err)
		} else if fi.Size() > 256<<10 {
			bad("brand.logo", "%d bytes: use an image of at most 256 KiB", fi.Size())
		}
	}

	switch c.SMS.Provider {
	case "console":
	case "vonage":
		v := c.SMS.Vonage
		if len(v.APIKey) != 8 {
			bad("sms.vonage.api_key", "must be the 8-character key from the Vonage dashboard")
		}
		if v.APISecret == "" {
			bad("sms.vonage.api_secret", "must be set when sms.provider is \"vonage\"")
		}
		if v.From == "" {
			bad("sms.vonage.from", "must be set when sms.provider is \"vonage\" (a number or an alphanumeric sender id)")
		}
		if u, err := url.Parse(v.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("sms.vonage.base_url", "%q is not an http:// or https:// URL", v.BaseURL)
		}
	default:
		bad("sms.provider", "%q is not a provider: use \"console\" or \"vonage\"", c.SMS.Provider)
	}
	if c.SMS.Rate <= 0 || c.SMS.Rate > 1000 {
		bad("sms.rate", "%g is out of range (texts per second, above 0 and at most 1000)", c.SMS.Rate)
	}
	if _, err := notify.ParseTemplate(c.SMS.Template); err != nil {
		bad("sms.template", "%v", err)
	}
	if len(c.SMS.AllowedCountries) == 0 {
		bad("sms.allowed_countries", "must list at least one country")
	}
	regions := phonenumbers.GetSupportedRegions()
	for _, r := range c.SMS.AllowedCountries {
		if _, ok := regions[r]; !ok {
			bad("sms.allowed_countries", "%q is not a region code (ISO 3166, such as \"CA\")", r)
		}
	}
	if c.SMS.Org == "" || len(c.SMS.Org) > 40 {
		bad("sms.org", "must be 1 to 40 characters: it starts every text")
	}

	if c.Mail.Relay != "" {
		if _, _, err := net.SplitHostPort(c.Mail.Relay); err != nil {
			bad("mail.relay", "%q is not host:port", c.Mail.Relay)
		}
	} else if c.Mail.Dir == "" {
		bad("mail.dir", "must be set when mail.relay is empty")
	}
	if a, err := mail.ParseAddress(c.Mail.From); err != nil || a.Name != "" {
		bad("mail.from", "%q is not an email address", c.Mail.From)
	}
	if (c.Mail.Username == "") != (c.Mail.Password == "") {
		bad("mail.username", "set both mail.username and mail.password, or neither")
	}

	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		bad("log.format", "%q: use \"text\" or \"json\"", c.Log.Format)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level", "%q: use \"debug\", \"info\", \"warn\" or \"error\"", c.Log.Level)
	}
	p = append(p, c.validateLifecycle()...)
	p = append(p, c.validateSMTPLimits()...)
	p = append(p, c.validateHostname()...)
	p = append(p, c.validateOps()...)
	p = append(p, c.validateScan()...)
	p = append(p, c.validateFactor()...)
	p = append(p, c.validateLanguage()...)
	p = append(p, c.validateEmail()...)
	p = append(p, c.validatePortalEdge()...)
	p = append(p, c.validateConsole()...)
	p = append(p, c.validateReplyMode()...)
	p = append(p, c.validateOrgLimit()...)
	p = append(p, c.validateHTTP()...)
	p = append(p, c.validateProduction()...) // config_production.go
	return p
}

// Path resolves a path from the file against the file's directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

var brandColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// prefixes returns a list of CIDRs that validate has checked
// (relay.trusted_networks, portal.trusted_proxies), masked.
func prefixes(cidrs []string) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range cidrs {
		if p, err := netip.ParsePrefix(n); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// Org is the organization's name shown to recipients: brand.org, or sms.org
// when no brand is set.
func (c *Config) Org() string {
	if c.Brand.Org != "" {
		return c.Brand.Org
	}
	return c.SMS.Org
}

func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return fmt.Errorf("%q: use an IP address, not a name", addr)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%q: bad port", addr)
	}
	return nil
}

// isLoopback reports whether a listen address only accepts local clients.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
