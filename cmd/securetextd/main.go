// Command securetextd is the secure text gateway: an SMTP server that turns
// email to <phone>@secure.text into a sealed message and a text with a link.
//
// This file holds the command line; Main (in run.go) wires the packages.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

const usage = `securetextd turns email into secure texts.

Usage:
  securetextd serve [--config FILE]
  securetextd keygen --out FILE [--x25519]
  securetextd user add|passwd ADDRESS [--config FILE] [--password-stdin]
  securetextd user add ADDRESS --admin [--config FILE] [--password-stdin]
  securetextd user admin ADDRESS on|off [--config FILE]
  securetextd user totp reset ADDRESS --by NAME [--config FILE]
  securetextd user remove ADDRESS [--config FILE]
  securetextd user list [--config FILE]
  securetextd purge [--config FILE]
  securetextd revoke [--config FILE] CONVERSATION... | --message ID
  securetextd hold add|remove CONVERSATION --by NAME [--reason TEXT] [--config FILE]
  securetextd hold list [--config FILE]
  securetextd delete CONVERSATION --by NAME [--config FILE]
  securetextd export --conversation N --format mbox|eml-dir --out PATH --by NAME [--sealed-to AGE_RECIPIENT]
  securetextd audit verify [--config FILE] [--anchor SEQ:HASH]
  securetextd audit export [--config FILE] [--since TIME] [--format jsonl|csv]
  securetextd report [--config FILE] [--sender ADDRESS] [--since TIME] [--json]
  securetextd apikey create|list|revoke [--sender ADDRESS] [ID] [--config FILE]
  securetextd mail list|show [FILE] [--config FILE]
  securetextd recipient list|show|unlock|reset|delete [PHONE] --by NAME [--full] [--config FILE]
  securetextd dkim keygen --out FILE [--algorithm rsa|ed25519] [--config FILE]
  securetextd backup --out FILE [--config FILE]
  securetextd store copy --from CONFIG --to CONFIG
  securetextd rekey [--config FILE]
  securetextd doctor [--config FILE]
  securetextd help COMMAND
  securetextd version

Every command has a manual: securetextd help COMMAND, or COMMAND --help.
Without --config, the embedded default (config.example.toml) is used, with
its data under ./data.
`

// errUsage marks a command line that could not be understood: exit code 2.
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

func main() {
	args := os.Args[1:]
	err := run(args, os.Stdin, os.Stdout, os.Stderr)
	var ue errUsage
	switch {
	case err == nil:
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "securetextd: %s\n%s\n", ue.msg, helpHint(args))
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "securetextd: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage{"no command given"}
	}
	// "securetextd help CMD" and "securetextd CMD --help" print the
	// command's manual (help.go).
	if done, err := runHelp(args, stdout); done {
		return err
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "apikey":
		return runAPIKey(rest, stdout)
	case "backup":
		return runBackup(rest, stdout)
	case "rekey":
		return runRekey(rest, stdout)
	case "store":
		return runStore(rest, stdout)
	case "doctor":
		return runDoctor(rest, stdout)
	case "serve":
		return runServe(rest, stdout, stderr)
	case "keygen":
		return runKeygen(rest, stdout)
	case "user":
		return runUser(rest, stdin, stdout)
	case "purge":
		return runPurge(rest, stdout)
	case "revoke":
		return runRevoke(rest, stdout)
	case "hold":
		return runHold(rest, stdout)
	case "delete":
		return runDelete(rest, stdout)
	case "export":
		return runExport(rest, stdout)
	case "audit":
		return runAudit(rest, stdout)
	case "report":
		return runReport(rest, stdout)
	case "mail":
		return runMail(rest, stdout)
	case "recipient":
		return runRecipient(rest, stdout)
	case "dkim":
		return runDKIM(rest, stdout) // dkim_cli.go
	case "version":
		fmt.Fprintf(stdout, "securetextd %s\n", securetextd.Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return errUsage{fmt.Sprintf("unknown command %q", cmd)}
	}
}

// parseFlags parses flags that may come before or after positional
// arguments ("user add --config f a@b" and "user add a@b --config f").
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, errUsage{err.Error()}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// shutdownGrace is how long a graceful shutdown may take: transfers and
// requests in progress finish within it, then whatever is left is closed.
const shutdownGrace = 30 * time.Second

func runServe(args []string, stdout, stderr io.Writer) error {
	// The signal handler comes first, before anything is opened or logged:
	// a SIGTERM before it ends the process with nothing to clean up; from
	// here on it starts a graceful shutdown. Once one has come, the default
	// action is restored, so a second signal ends the process at once,
	// during start-up too.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)

	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return errUsage{fmt.Sprintf("serve takes no arguments, got %q", pos[0])}
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	logger, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	// Every connection costs a file descriptor (rlimit_linux.go).
	if n, err := raiseFileLimit(); err != nil {
		logger.Warn("could not raise the open-file limit", "err", err)
	} else if n > 0 {
		logger.Info("open-file limit", "nofile", n)
	}

	m := &Main{Config: cfg, Logger: logger, Stdout: stdout}
	// Start-up runs to its end even when a signal comes meanwhile: it is
	// short, a second signal ends it at once, and a start-up cut halfway
	// would report the cut as a failure. Shutdown then begins at once.
	if err := m.Run(context.WithoutCancel(ctx)); err != nil {
		closeCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		m.Close(closeCtx)
		return err
	}
	stopHUP := m.watchHUP(*configPath) // SIGHUP reloads (reload.go)
	defer stopHUP()
	<-ctx.Done()
	logger.Info("shutting down; a second signal stops at once")

	closeCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	return m.Close(closeCtx)
}

func runKeygen(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	out := fs.String("out", "", "file to create (mode 0600)")
	x25519 := fs.Bool("x25519", false, "make a classic X25519 identity instead of a hybrid post-quantum one")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *out == "" || len(pos) > 0 {
		return errUsage{"keygen needs --out FILE and nothing else"}
	}
	if _, err := os.Stat(*out); err == nil {
		// Key rotation: the new identity goes first (ops_cli.go).
		return addKey(*out, !*x25519, stdout)
	}
	recipient, err := store.WriteKeyFile(*out, !*x25519)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s (public key %s)\n", *out, recipient)
	return nil
}

func runUser(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage{"user needs a command: add, list, remove, passwd, admin or totp"}
	}
	sub := args[0]
	if sub == "admin" || sub == "totp" {
		return runUserConsole(sub, args[1:], stdout) // user_console.go
	}
	fs := flag.NewFlagSet("user "+sub, flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	admin := fs.Bool("admin", false, "user add: the account sees every sender's messages in the console")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	wantArgs := 1
	if sub == "list" {
		wantArgs = 0
	}
	switch sub {
	case "add", "list", "remove", "passwd":
	default:
		return errUsage{fmt.Sprintf("unknown user command %q: use add, list, remove, passwd, admin or totp", sub)}
	}
	if *admin && sub != "add" {
		return errUsage{"--admin is for user add; use user admin ADDRESS on|off"}
	}
	if len(pos) != wantArgs {
		if wantArgs == 0 {
			return errUsage{"user list takes no address"}
		}
		return errUsage{fmt.Sprintf("user %s needs exactly one ADDRESS", sub)}
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
	case "list":
		senders, err := db.ListSenders(ctx)
		if err != nil {
			return err
		}
		for _, s := range senders {
			fmt.Fprintf(stdout, "%s\tcreated %s\n", s.Address, s.Created.UTC().Format(time.RFC3339))
		}
		return nil
	case "remove":
		if err := db.DeleteSender(ctx, pos[0]); err != nil {
			return userError(err)
		}
		fmt.Fprintf(stdout, "removed %s\n", pos[0])
		return auditSender(ctx, db, store.SenderRemoved, pos[0])
	}

	password, err := readPassword(stdin, stdout, *fromStdin)
	if err != nil {
		return err
	}
	if err := checkSenderPassword(password, pos[0], cfg.Org()); err != nil {
		return err
	}
	if sub == "add" {
		err = db.CreateSender(ctx, pos[0], password)
	} else {
		err = db.SetSenderPassword(ctx, pos[0], password)
	}
	if err != nil {
		return userError(err)
	}
	if *admin {
		if err := db.SetAdmin(operator(ctx), pos[0], true); err != nil {
			return userError(err)
		}
	}
	fmt.Fprintf(stdout, "saved %s\n", pos[0])
	return auditSender(ctx, db, sub, pos[0])
}

// userError turns a domain error into its message for the operator. The
// store words those messages as sentences, for the portal's pages and the
// API; the command line starts them in lowercase, as its other messages.
func userError(err error) error {
	if securetextd.ErrorCode(err) == securetextd.EINTERNAL {
		return err
	}
	return errors.New(lowerFirst(securetextd.ErrorMessage(err)))
}

// lowerFirst lowercases the first letter of s, unless it begins an
// acronym ("API key 3 …").
func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if !unicode.IsUpper(r) {
		return s
	}
	if next, _ := utf8.DecodeRuneInString(s[n:]); unicode.IsUpper(next) {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}

// readPassword reads a new password from the first line of standard input,
// or asks for it twice on the terminal without echo.
func readPassword(stdin io.Reader, stdout io.Writer, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", errors.New("no password on standard input")
		}
		return line, nil
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errUsage{"standard input is not a terminal: use --password-stdin"}
	}
	fmt.Fprint(stdout, "password: ")
	p1, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stdout)
	if err != nil {
		return "", err
	}
	fmt.Fprint(stdout, "password again: ")
	p2, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stdout)
	if err != nil {
		return "", err
	}
	if string(p1) != string(p2) {
		return "", errors.New("the passwords differ")
	}
	return string(p1), nil
}

// openStore opens the database, creating the data directory and the key
// file on first use. created, when not nil, is told whether a key was made.
func openStore(cfg Config, created *bool) (*store.DB, error) {
	keyPath := cfg.Path(cfg.Store.KeyFile)
	dbPath := cfg.Path(cfg.Store.Path)
	for _, dir := range []string{filepath.Dir(keyPath), filepath.Dir(dbPath)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
		if _, err := store.WriteKeyFile(keyPath, true); err != nil {
			return nil, fmt.Errorf("store.key_file: %w", err)
		}
		if created != nil {
			*created = true
		}
	}
	keys, err := store.LoadKeyFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("store.key_file: %w", err)
	}
	db, err := store.OpenWith(context.Background(), cfg.storeOptions(), keys)
	if err != nil {
		if cfg.Store.Driver == store.Postgres {
			return nil, fmt.Errorf("store.dsn: %w", err)
		}
		return nil, fmt.Errorf("store.path: %w", err)
	}
	db.Policy = cfg.policy()
	return db, nil
}
