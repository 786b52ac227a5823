package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/securetextd/securetextd/smtp"
	"github.com/securetextd/securetextd/store"
)

// runAPIKey makes, lists and revokes the REST API's keys.
func runAPIKey(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage{"apikey needs a command: create, list or revoke"}
	}
	sub := args[0]
	fs := flag.NewFlagSet("apikey "+sub, flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file")
	sender := fs.String("sender", "", "the sender account the key sends as")
	name := fs.String("name", "", "a note: what uses the key")
	admin := fs.Bool("admin", false, "an admin key: places and removes legal holds, cannot send")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	switch {
	case sub != "create" && sub != "list" && sub != "revoke":
		return errUsage{fmt.Sprintf("unknown apikey command %q: use create, list or revoke", sub)}
	case sub == "create" && (*sender == "" || len(pos) > 0):
		return errUsage{"apikey create needs --sender ADDRESS and nothing else"}
	case sub == "list" && len(pos) > 0:
		return errUsage{"apikey list takes no arguments"}
	case sub == "revoke" && (len(pos) == 1) == (*sender != ""):
		return errUsage{"apikey revoke needs a key's ID, or --sender ADDRESS to revoke all its keys"}
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	db, err := openStore(cfg, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()

	switch sub {
	case "create":
		create := db.CreateAPIKey
		if *admin {
			create = db.CreateAdminKey
		}
		token, k, err := create(ctx, *sender, *name)
		if err != nil {
			return userError(err)
		}
		fmt.Fprintf(stdout, "created API key %d for %s; it is shown only this once:\n\n    %s\n\n", k.ID, k.Sender, token)
		fmt.Fprintf(stdout, "send it as \"Authorization: Bearer %s…\"; revoke it with: securetextd apikey revoke %d\n", k.Prefix, k.ID)
	case "list":
		keys, err := db.ListAPIKeys(ctx, *sender)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKEY\tSENDER\tNAME\tCREATED\tLAST USED\tSTATE")
		for _, k := range keys {
			last, state := "never", "live"
			if !k.LastUsed.IsZero() {
				last = k.LastUsed.UTC().Format(time.RFC3339)
			}
			if !k.Revoked.IsZero() {
				state = "revoked " + k.Revoked.UTC().Format(time.RFC3339)
			}
			if k.Admin {
				state += " (admin)"
			}
			fmt.Fprintf(tw, "%d\t%s…\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, k.Sender, k.Name,
				k.Created.UTC().Format(time.RFC3339), last, state)
		}
		return tw.Flush()
	case "revoke":
		if *sender != "" {
			n, err := db.RevokeSenderAPIKeys(ctx, *sender)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked %d key(s) of %s\n", n, *sender)
			return nil
		}
		id, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil {
			return errUsage{fmt.Sprintf("%q is not a key ID (see securetextd apikey list)", pos[0])}
		}
		if err := db.RevokeAPIKey(ctx, id); err != nil {
			return userError(err)
		}
		fmt.Fprintf(stdout, "revoked API key %d: the next request with it is refused\n", id)
	}
	return nil
}

// runBackup copies the database while the gateway runs.
func runBackup(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file")
	out := fs.String("out", "", "file to create")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *out == "" || len(pos) > 0 {
		return errUsage{"backup needs --out FILE and nothing else"}
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	if cfg.Store.Driver == store.Postgres {
		return errBackupPostgres(cfg)
	}
	start := time.Now()
	info, err := store.Backup(context.Background(), cfg.Path(cfg.Store.Path), *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s: %d pages, %d bytes, integrity_check ok, in %s.\n",
		cfg.Path(cfg.Store.Path), *out, info.Pages, info.Bytes, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "content in the copy stays sealed: keep a copy of the key file (%s) too, stored apart from it.\n",
		cfg.Path(cfg.Store.KeyFile))
	return nil
}

// addKey puts a new identity first in an existing key file.
func addKey(path string, hybrid bool, stdout io.Writer) error {
	recipient, err := store.AddKeyToFile(path, hybrid)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added a new identity to %s (public key %s); it is first, so it seals from now on, and the\n", path, recipient)
	fmt.Fprintf(stdout, "older ones still open what they sealed; next:\n")
	fmt.Fprintf(stdout, "  1. restart securetextd, so that it seals to the new identity;\n")
	fmt.Fprintf(stdout, "  2. securetextd rekey --config FILE, which re-wraps every file key to it;\n")
	fmt.Fprintf(stdout, "  3. then remove the older identities from %s.\n", path)
	return nil
}

// runRekey re-wraps every stored file key to the newest identity.
func runRekey(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("rekey", flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return errUsage{"rekey takes no arguments"}
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	keys, err := store.LoadKeyFile(cfg.Path(cfg.Store.KeyFile))
	if err != nil {
		return fmt.Errorf("store.key_file: %w", err)
	}
	db, err := openStore(cfg, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, stop := signalContext()
	defer stop()
	last := time.Now()
	st, err := db.Rekey(ctx, func(st store.RekeyStats) {
		if time.Since(last) > 2*time.Second {
			last = time.Now()
			fmt.Fprintf(stdout, "… %d parts and %d values re-wrapped, %d already current\n", st.Blobs, st.Values, st.Current)
		}
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("rekey interrupted after %d parts and %d values; run it again to go on", st.Blobs, st.Values)
		}
		return err
	}
	fmt.Fprintf(stdout, "re-wrapped %d message parts (to the newest data key) and %d sealed values (to %s); %d were already current; content was not re-encrypted.\n",
		st.Blobs, st.Values, keys.Recipient(), st.Current)
	fmt.Fprintf(stdout, "if securetextd was restarted with this key file before this rekey, the older identities can now be\n")
	fmt.Fprintf(stdout, "removed from %s (keep a copy of them until a backup taken after this rekey has been checked).\n",
		cfg.Path(cfg.Store.KeyFile))
	return nil
}

// doctorEnv is what doctor reaches the outside with; tests replace it.
type doctorEnv struct {
	HTTPClient *http.Client
	MailTLS    *tls.Config // nil: the system's roots, for the relay's host
	Timeout    time.Duration
}

// runDoctor checks the installation, one line per check.
func runDoctor(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return errUsage{"doctor takes no arguments"}
	}
	return doctor(*configPath, stdout, doctorEnv{})
}

func doctor(configPath string, stdout io.Writer, env doctorEnv) error {
	if env.HTTPClient == nil {
		env.HTTPClient = &http.Client{}
	}
	if env.Timeout <= 0 {
		env.Timeout = 10 * time.Second
	}
	failed := 0
	line := func(level, what, detail string) {
		if level == "FAIL" {
			failed++
		}
		fmt.Fprintf(stdout, "%-4s  %s: %s\n", level, what, detail)
	}
	name := configPath
	if name == "" {
		name = "the embedded default (config.example.toml)"
	}
	cfg, err := LoadConfig(configPath)
	if err != nil {
		// A ConfigError says "config: " itself; the line has said it already.
		line("FAIL", "config", name+": "+strings.TrimPrefix(err.Error(), "config: "))
		return errors.New("the configuration does not load; fix it first")
	}
	line("ok", "config", name+"; "+doctorConfigDir(cfg, configPath))

	// The key file.
	keyPath := cfg.Path(cfg.Store.KeyFile)
	if fi, err := os.Stat(keyPath); err != nil {
		line("FAIL", "key file", fmt.Sprintf("%v: run securetextd keygen --out %s, or start the gateway once", err, keyPath))
	} else if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		line("FAIL", "key file", fmt.Sprintf("%s has mode %#o: run chmod 600 %s", keyPath, perm, keyPath))
	} else if keys, err := store.LoadKeyFile(keyPath); err != nil {
		line("FAIL", "key file", err.Error())
	} else {
		line("ok", "key file", fmt.Sprintf("%s, mode %#o, seals to %s", keyPath, perm, shortKey(keys.Recipient())))
	}

	// The database (doctor_store.go).
	doctorStore(cfg, env.Timeout, line)
	doctorScan(cfg, env.Timeout, line) // config_scan.go
	doctorDKIM(cfg, env.Timeout, line) // doctor_dkim.go

	// Exposure of /metrics.
	if _, private := cfg.opsOnPortal(); cfg.Ops.Listen == "" && !private {
		line("warn", "ops.listen", "empty: /metrics and /readyz are not served, as portal.public_url is https:// (the portal faces the internet); set ops.listen to a private address to serve them")
	} else if cfg.Ops.Listen == "" && !isLoopback(cfg.Portal.Listen) {
		line("warn", "ops.listen", fmt.Sprintf("empty: /metrics and /readyz are served on portal.listen (%s), which faces the recipients; set ops.listen to a private address", cfg.Portal.Listen))
	} else if cfg.Ops.Listen == "" {
		line("ok", "ops.listen", "metrics and health on the portal listener, which is loopback only")
	} else {
		line("ok", "ops.listen", cfg.Ops.Listen)
	}

	// The TLS certificates, and the brand colour's contrast (doctor_tls.go,
	// doctor_brand.go).
	doctorCerts(cfg, time.Now(), line)
	doctorBrand(cfg.Brand.Color, line)
	doctorTexts(cfg, line) // config_language.go

	// DNS for the relay's policy.
	if cfg.Relay.Listen != "" {
		doctorRelayDNS(cfg, env, line)
	}

	// The mail relay, or the sealed mail of mail.dir (mail_cli.go).
	if cfg.Mail.Relay != "" {
		doctorMailRelay(cfg, env, line)
	}
	doctorMail(cfg, line)

	// The SMS provider.
	if cfg.SMS.Provider == "vonage" {
		doctorVonage(cfg, env, line)
	} else {
		line("warn", "sms", "provider is \"console\": texts are printed, not sent")
	}

	if failed > 0 {
		return fmt.Errorf("%d check(s) failed", failed)
	}
	return nil
}

func shortKey(k string) string {
	if len(k) > 24 {
		return k[:20] + "…"
	}
	return k
}

// doctorRelayDNS looks up what the relay's policy will ask DNS for: the
// SPF and DMARC records of each sender domain.
func doctorRelayDNS(cfg Config, env doctorEnv, line func(level, what, detail string)) {
	r := resolver(cfg.Relay.DNSServer)
	for _, d := range cfg.Relay.SenderDomains {
		d = strings.TrimPrefix(d, "*.")
		ctx, cancel := context.WithTimeout(context.Background(), env.Timeout)
		spfRec, spfErr := txtWith(ctx, r, d, "v=spf1")
		dmarcRec, dmarcErr := txtWith(ctx, r, "_dmarc."+d, "v=DMARC1")
		cancel()
		what := "relay dns " + d
		switch cfg.Relay.Policy {
		case smtp.PolicySPF:
			if spfErr != nil {
				line("FAIL", what, "no SPF record: "+spfErr.Error()+" (relay.policy is spf)")
				continue
			}
		case smtp.PolicyDMARC:
			if dmarcErr != nil {
				line("FAIL", what, "no DMARC record at _dmarc."+d+": "+dmarcErr.Error()+" (relay.policy is dmarc)")
				continue
			}
		}
		var found []string
		if spfErr == nil {
			found = append(found, "SPF "+spfRec)
		}
		if dmarcErr == nil {
			found = append(found, "DMARC "+dmarcRec)
		}
		if len(found) == 0 {
			found = append(found, "no SPF or DMARC record (DKIM keys are looked up per message)")
		}
		line("ok", what, strings.Join(found, "; "))
	}
}

func txtWith(ctx context.Context, r *net.Resolver, name, prefix string) (string, error) {
	txts, err := r.LookupTXT(ctx, name)
	if err != nil {
		return "", err
	}
	for _, t := range txts {
		if strings.HasPrefix(t, prefix) {
			return t, nil
		}
	}
	return "", fmt.Errorf("no %q record among %d TXT records", prefix, len(txts))
}

// doctorMailRelay connects to the mail relay and upgrades to TLS, as the
// mail worker will.
func doctorMailRelay(cfg Config, env doctorEnv, line func(level, what, detail string)) {
	what := "mail relay " + cfg.Mail.Relay
	conn, err := net.DialTimeout("tcp", cfg.Mail.Relay, env.Timeout)
	if err != nil {
		line("FAIL", what, "cannot connect: "+err.Error()+" (check mail.relay and the firewall)")
		return
	}
	conn.SetDeadline(time.Now().Add(env.Timeout))
	c := gosmtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		line("FAIL", what, "EHLO refused: "+err.Error())
		return
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		if cfg.Mail.RequireTLS {
			line("FAIL", what, "offers no STARTTLS, and mail.require_tls is on: mail would wait forever (enable TLS on the relay)")
		} else {
			line("warn", what, "offers no STARTTLS: mail goes in the clear (mail.require_tls is off)")
		}
		return
	}
	c.Quit()
	tc := env.MailTLS
	if tc == nil {
		host, _, _ := net.SplitHostPort(cfg.Mail.Relay)
		tc = &tls.Config{ServerName: host}
	}
	conn, err = net.DialTimeout("tcp", cfg.Mail.Relay, env.Timeout)
	if err != nil {
		line("FAIL", what, "cannot connect: "+err.Error())
		return
	}
	conn.SetDeadline(time.Now().Add(env.Timeout))
	tlsClient, err := gosmtp.NewClientStartTLS(conn, tc)
	if err != nil {
		conn.Close()
		line("FAIL", what, "STARTTLS failed: "+err.Error()+" (is its certificate valid for this name?)")
		return
	}
	defer tlsClient.Close()
	state, _ := tlsClient.TLSConnectionState()
	line("ok", what, "connected, STARTTLS "+tls.VersionName(state.Version))
	tlsClient.Quit()
}

// doctorVonage asks Vonage for the account's balance: a request that
// proves the credentials and sends nothing.
func doctorVonage(cfg Config, env doctorEnv, line func(level, what, detail string)) {
	v := cfg.SMS.Vonage
	q := url.Values{"api_key": {v.APIKey}, "api_secret": {v.APISecret}}
	u := strings.TrimSuffix(v.BaseURL, "/") + "/account/get-balance?" + q.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), env.Timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := env.HTTPClient.Do(req)
	if err != nil {
		// The error would quote the URL, and with it the secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		line("FAIL", "vonage", "cannot reach "+v.BaseURL+": "+err.Error())
		return
	}
	defer resp.Body.Close()
	var bal struct {
		Value      float64 `json:"value"`
		AutoReload bool    `json:"autoReload"`
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		line("FAIL", "vonage", "credentials refused: check sms.vonage.api_key and sms.vonage.api_secret")
	case resp.StatusCode != http.StatusOK:
		line("FAIL", "vonage", "balance request answered "+resp.Status)
	case json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&bal) != nil:
		line("FAIL", "vonage", "balance request answered something that is not Vonage's JSON")
	case bal.Value <= 0 && !bal.AutoReload:
		line("FAIL", "vonage", fmt.Sprintf("credentials ok, but the balance is %.2f: texts will be refused (top up the account)", bal.Value))
	default:
		line("ok", "vonage", fmt.Sprintf("credentials ok, balance %.2f EUR", bal.Value))
	}
}

// signalContext is cancelled by SIGINT or SIGTERM, for commands that stop
// cleanly between steps.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
