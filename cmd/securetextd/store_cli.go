package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/securetextd/securetextd/store"
)

// runStore runs the store's own commands: copy, which moves a store from
// one engine to another (store/copy.go does the work).
func runStore(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "copy" {
		return errUsage{"store needs a command: copy"}
	}
	fs := flag.NewFlagSet("store copy", flag.ContinueOnError)
	from := fs.String("from", "", "the configuration of the store to copy")
	to := fs.String("to", "", "the configuration of the empty store to fill")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 || *from == "" || *to == "" {
		return errUsage{"store copy needs --from CONFIG and --to CONFIG, and nothing else"}
	}
	src, err := LoadConfig(*from)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	dst, err := LoadConfig(*to)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}

	// ^C or SIGTERM ends the batch in hand, rolled back; what was
	// committed stays, and the next run carries on from there.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintf(stdout, "copying the store in %s\n           into %s.\n", describeStore(src), describeStore(dst))
	if sk, dk := src.Path(src.Store.KeyFile), dst.Path(dst.Store.KeyFile); sk != dk {
		fmt.Fprintf(stdout, "note: the copy stays sealed to the key file of --from (%s); --to names %s: give the gateways of the copy that same key file.\n", sk, dk)
	}
	res, err := store.Copy(ctx, src.storeOptions(), dst.storeOptions(), copyReporter(stdout))
	if ctx.Err() != nil {
		return errors.New("store copy: interrupted; what was copied stays: run the same command again to carry on")
	}
	if res != nil && len(res.Tables) > 0 {
		printCopyCheck(stdout, res)
	}
	if err != nil {
		return err
	}
	var rows int64
	for _, t := range res.Tables {
		rows += t.Rows
	}
	switch {
	case res.Copied == 0 && res.Resumed:
		fmt.Fprintf(stdout, "\nthe copy is good: it was complete; this run checked it")
	case res.Resumed:
		fmt.Fprintf(stdout, "\nthe copy is good: this run carried on a copy cut short, and copied %d rows", res.Copied)
	default:
		fmt.Fprintf(stdout, "\nthe copy is good: this run copied %d rows", res.Copied)
	}
	fmt.Fprintf(stdout, "; all %d tables (%d rows) have the same count and digest on both sides.\n", len(res.Tables), rows)
	fmt.Fprintf(stdout, "start the gateway with --config %s and the same key file; keep the source until you have checked it (securetextd audit verify --config %s).\n", *to, *to)
	return nil
}

// describeStore names the configured store for a person: the SQLite
// file, or the PostgreSQL database and its server, never the DSN's
// password.
func describeStore(c Config) string {
	if c.Store.Driver != store.Postgres {
		return "the SQLite file " + c.Path(c.Store.Path)
	}
	u, err := url.Parse(c.Store.DSN)
	if err != nil {
		return "a PostgreSQL database"
	}
	return fmt.Sprintf("the PostgreSQL database %s on %s", strings.TrimPrefix(u.Path, "/"), u.Host)
}

// copyReporter prints a line when a table is copied, and every few
// seconds during a long table, copied or checked.
func copyReporter(w io.Writer) func(store.CopyProgress) {
	last := time.Now()
	stage := ""
	return func(p store.CopyProgress) {
		if p.Stage != stage {
			stage = p.Stage
			fmt.Fprintf(w, "%s:\n", map[string]string{"copy": "copying", "check": "checking both sides"}[stage])
		}
		if (p.Stage == "check" || p.Done < p.Rows) && time.Since(last) < 5*time.Second {
			return
		}
		last = time.Now()
		fmt.Fprintf(w, "  %-22s %d of %d rows\n", p.Table, p.Done, p.Rows)
	}
}

// printCopyCheck prints the final check, one line per table.
func printCopyCheck(w io.Writer, res *store.CopyResult) {
	fmt.Fprintln(w, "\nthe check (rows, and the sum of each row's SHA-256):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TABLE\tROWS\tDIGEST\tBOTH SIDES")
	for _, t := range res.Tables {
		verdict := "same"
		if !t.OK() {
			verdict = fmt.Sprintf("DIFFERS: the destination has %d rows, digest %x", t.DestRows, t.DestDigest[:8])
		}
		fmt.Fprintf(tw, "  %s\t%d\t%x\t%s\n", t.Table, t.Rows, t.Digest[:8], verdict)
	}
	tw.Flush()
}

// storeManuals are the manuals of the store's commands (see manuals).
var storeManuals = map[string]string{
	"store": `NAME
    securetextd store copy - move a store to another engine (SQLite, PostgreSQL)

SYNOPSIS
    securetextd store copy --from CONFIG --to CONFIG

DESCRIPTION
    Copies the store that the configuration --from names (store.driver,
    store.path or store.dsn) into the empty store that --to names: a
    SQLite file into a PostgreSQL database, to run several gateway nodes
    on it, or back into a new SQLite file. The destination's tables are
    made by the store's own migrations.

    Rows are copied as they are: sealed content stays sealed, and ids do
    not change, so every sealed value, bound to its place, opens in the
    copy with the same key file. The copy does not read the key file;
    the gateways of the copy need the same one.

    Stop the gateway first (every node). A SQLite file that a process
    holds open, or a database that securetextd sessions are connected
    to, is refused, and so is a destination that holds anything but an
    unfinished copy of the same source; the refusal names what it found.

    Tables are copied in batches of a few MiB, each committed on its own.
    Cut short (^C, a crash, SIGKILL), the same command carries on where
    it stopped, copying nothing twice. At the end every table is read
    on both sides, and its rows counted and digested (the sum of each
    row's SHA-256): the copy is called good only when all are the same.
    Run on a finished copy, it copies nothing and checks again.

EXIT STATUS
    0 when the copy is good; 1 when it was refused, cut short, or
    differs from its source.

EXAMPLES
    systemctl stop securetextd
    securetextd store copy --from /etc/securetextd/securetextd.toml \
        --to /etc/securetextd/cluster.toml
`,
}
