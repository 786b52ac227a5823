package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/securetextd/securetextd/notify"
	"github.com/securetextd/securetextd/store"
)

// The outgoing-mail directory from the command line: with mail.relay
// empty, replies, reset links and notices are sealed into mail.dir
// (notify/maildir.go) instead of sent. `mail list` and `mail show` open
// them with the key file; the daemon's retention sweep deletes them;
// doctor says where mail goes and finds plain files left from before.

// runMail lists or shows the emails sealed in mail.dir.
func runMail(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage{"mail needs a command: list or show"}
	}
	sub := args[0]
	fs := flag.NewFlagSet("mail "+sub, flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	switch {
	case sub != "list" && sub != "show":
		return errUsage{fmt.Sprintf("unknown mail command %q: use list or show", sub)}
	case sub == "list" && len(pos) > 0:
		return errUsage{"mail list takes no arguments"}
	case sub == "show" && len(pos) != 1:
		return errUsage{"mail show needs one FILE, as mail list names it"}
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	keys, err := store.LoadKeyFile(cfg.Path(cfg.Store.KeyFile))
	if err != nil {
		return fmt.Errorf("store.key_file: %w", err)
	}
	dir := cfg.Path(cfg.Mail.Dir)
	if sub == "show" {
		return showMail(dir, pos[0], keys, stdout)
	}
	return listMail(dir, keys, stdout)
}

// listMail prints one line per sealed email, oldest first.
func listMail(dir string, keys notify.Opener, stdout io.Writer) error {
	files, err := notify.ReadMailDir(dir, keys)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fmt.Fprintf(stdout, "no mail in %s.\n", dir)
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tKIND\tTO\tSIZE\tFILE")
		for _, f := range files {
			kind, to := f.Kind, f.To
			if f.Err != nil {
				kind, to = "?", "cannot open: "+f.Err.Error()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Time.UTC().Format("2006-01-02 15:04:05Z"), kind, to, size(f.Size), f.Name)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if plain, err := notify.UnsealedMailFiles(dir); err == nil && len(plain) > 0 {
		fmt.Fprintf(stdout, "\n%d unsealed .eml file(s) from an older version are in %s: see securetextd doctor.\n", len(plain), dir)
	}
	return nil
}

// showMail writes the message of one sealed email (RFC 5322) to stdout.
// name is a file of dir as `mail list` shows it, or a path to one.
func showMail(dir, name string, keys notify.Opener, stdout io.Writer) error {
	path := name
	if !strings.ContainsRune(name, filepath.Separator) {
		path = filepath.Join(dir, name)
	}
	_, rc, err := notify.OpenMailFile(path, keys)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.Copy(stdout, rc); err != nil {
		return fmt.Errorf("mail: %s: %w", filepath.Base(path), err)
	}
	return nil
}

// size is a file size for people: "812 B", "14 KiB", "3.2 MiB".
func size(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%d KiB", (n+1<<9)>>10)
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}

// doctorMail says where outgoing mail goes when there is no relay, and
// warns about plain .eml files that older versions left in mail.dir
// (readable by whoever reads the directory), without deleting them: they
// are the operator's.
func doctorMail(cfg Config, line func(level, what, detail string)) {
	dir := cfg.Path(cfg.Mail.Dir)
	if cfg.Mail.Relay == "" {
		n := "none yet"
		if keys, err := store.LoadKeyFile(cfg.Path(cfg.Store.KeyFile)); err == nil {
			if files, err := notify.ReadMailDir(dir, keys); err == nil && len(files) > 0 {
				n = fmt.Sprintf("%d, securetextd mail list shows them", len(files))
			}
		}
		line("warn", "mail relay", fmt.Sprintf("none: mail to senders is not sent but kept sealed in %s (%s); for a demo only: set mail.relay", dir, n))
	}
	plain, err := notify.UnsealedMailFiles(dir)
	if err != nil {
		line("FAIL", "mail.dir", err.Error())
		return
	}
	if len(plain) > 0 {
		line("warn", "mail.dir", fmt.Sprintf("%d unsealed .eml file(s) left by an older version are readable in %s (replies, reset links): read what you need, then remove them with: rm %s",
			len(plain), dir, filepath.Join(dir, "*.eml")))
	}
}

// sweepMailDir deletes the sealed emails of mail.dir older than
// store.retention, as the lifecycle sweep does for the database.
func sweepMailDir(ctx context.Context, cfg Config, now time.Time) (int, error) {
	if cfg.Store.Retention == 0 || ctx.Err() != nil {
		return 0, ctx.Err()
	}
	return notify.PurgeMailDir(cfg.Path(cfg.Mail.Dir), now.Add(-cfg.Store.Retention))
}
