package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// `securetextd recipient` lets an operator see and repair the accounts of
// phone numbers on the portal, so that no patient is locked out for good
// (issue 12): a lockout lifted, an account set up again from scratch, an
// account deleted. Every command names who runs it (--by NAME), and the
// audit trail records it with the actor "operator:NAME".

// operatorName reports whether s is what --by takes: a name or an
// address, short, one word: 1 to 64 letters, digits and . _ @ + -.
//
// It is what the regular expression ^[\pL\pN._@+-]{1,64}$ says (its test
// holds the two equal), written out because that expression, compiled at
// start, kept 1.3 MiB of the daemon's heap live for a command-line check:
// 64 copies of the Unicode tables of letters and digits.
func operatorName(s string) bool {
	n := 0
	for _, r := range s {
		n++
		if n > 64 || !(unicode.IsLetter(r) || unicode.IsNumber(r) || strings.ContainsRune("._@+-", r)) {
			return false
		}
	}
	return n > 0
}

func runRecipient(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage{"recipient needs a command: list, show, unlock, reset or delete"}
	}
	sub := args[0]
	switch sub {
	case "list", "show", "unlock", "reset", "delete":
	default:
		return errUsage{fmt.Sprintf("unknown recipient command %q: use list, show, unlock, reset or delete", sub)}
	}
	fs := flag.NewFlagSet("recipient "+sub, flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file")
	by := fs.String("by", "", "who runs the command, for the audit trail")
	full := fs.Bool("full", false, "list: show whole phone numbers")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	switch {
	case *by == "":
		return errUsage{fmt.Sprintf("recipient %s needs --by NAME: who runs it, for the audit trail", sub)}
	case !operatorName(*by):
		return errUsage{fmt.Sprintf("--by %q is not a name: one word of letters, digits and . _ @ + -, at most 64", *by)}
	case sub == "list" && len(pos) != 0:
		return errUsage{"recipient list takes no PHONE"}
	case sub != "list" && len(pos) != 1:
		return errUsage{fmt.Sprintf("recipient %s needs exactly one PHONE", sub)}
	case sub != "list" && *full:
		return errUsage{"--full is for recipient list"}
	}
	cfg, db, err := openForCommand(*configPath)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := securetextd.WithOrigin(context.Background(), securetextd.Origin{Actor: "operator:" + *by, Client: "cli"})
	if sub == "list" {
		return recipientList(ctx, db, stdout, *full)
	}
	rules := securetextd.PhoneRules{DefaultRegion: cfg.SMTP.DefaultRegion, AllowedCountries: cfg.SMS.AllowedCountries}
	phone, err := rules.Parse(pos[0])
	if err != nil {
		return fmt.Errorf("%q is not a phone number: %w", pos[0], err)
	}
	switch sub {
	case "show":
		return recipientShow(ctx, db, stdout, phone)
	case "unlock":
		if err := db.UnlockRecipient(ctx, phone); err != nil {
			return userError(err)
		}
		fmt.Fprintf(stdout, "unlocked %s: signing in is no longer paused\n", phone)
	case "reset":
		if err := db.ResetRecipient(ctx, phone); err != nil {
			return userError(err)
		}
		fmt.Fprintf(stdout, "reset %s: password and recovery address cleared, every session ended; the next link visit sets the account up again\n", phone)
	case "delete":
		if err := db.DeleteRecipient(ctx, phone); err != nil {
			return userError(err)
		}
		fmt.Fprintf(stdout, "deleted the account of %s and its sessions; its conversations stay until retention ends them\n", phone)
	}
	return nil
}

// recipientList prints one line per account.
func recipientList(ctx context.Context, db *store.DB, stdout io.Writer, full bool) error {
	list, err := db.Accounts(ctx)
	if err != nil {
		return err
	}
	detail := "masked"
	if full {
		detail = "full"
	}
	if err := db.Audit(ctx, securetextd.AuditEvent{Event: securetextd.AuditRecipientListed, Detail: detail}); err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "no recipient accounts.")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "phone\tcreated\tlast seen\trecovery address\tlocked")
	now := db.Now()
	for _, a := range list {
		phone := a.Phone.Masked()
		if full {
			phone = string(a.Phone)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", phone, stamp(a.Created), stamp(a.LastSeen), recoveryState(a), lockState(a, now))
	}
	return tw.Flush()
}

// recipientShow prints one account whole, its addresses masked.
func recipientShow(ctx context.Context, db *store.DB, stdout io.Writer, phone securetextd.Phone) error {
	a, err := db.Account(ctx, phone)
	if err != nil {
		return userError(err)
	}
	signIns, err := db.SignIns(ctx, phone)
	if err != nil {
		return err
	}
	if err := db.Audit(ctx, securetextd.AuditEvent{Event: securetextd.AuditRecipientShown, Detail: string(phone)}); err != nil {
		return err
	}
	password := "set"
	if a.NeedsSetup {
		password = "cleared by a reset: the next link visit sets it"
	}
	language := a.Language
	if language == "" {
		language = "not chosen"
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "phone:\t%s\n", a.Phone)
	fmt.Fprintf(tw, "created:\t%s\n", stamp(a.Created))
	fmt.Fprintf(tw, "last seen:\t%s\n", stamp(a.LastSeen))
	fmt.Fprintf(tw, "password:\t%s\n", password)
	fmt.Fprintf(tw, "recovery address:\t%s\n", recoveryState(a))
	if a.Pending != "" {
		fmt.Fprintf(tw, "waiting for confirmation:\t%s\n", store.MaskAddress(a.Pending))
	}
	fmt.Fprintf(tw, "language:\t%s\n", language)
	fmt.Fprintf(tw, "locked:\t%s\n", lockState(a, db.Now()))
	fmt.Fprintf(tw, "sessions:\t%d\n", a.Sessions)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(signIns) == 0 {
		fmt.Fprintln(stdout, "recent sign-ins: none")
		return nil
	}
	fmt.Fprintln(stdout, "recent sign-ins:")
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, in := range signIns {
		where := "internet"
		if in.Private {
			where = "private network"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s, %s\n", stamp(in.Time), in.Device, in.Network, where)
	}
	return tw.Flush()
}

// stamp writes a time for the operator, in UTC; "never" for zero.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// recoveryState says whether an account has a recovery address, and
// whether it is confirmed, with the address masked when it is known.
func recoveryState(a *securetextd.Account) string {
	var s string
	switch {
	case a.NeedsSetup:
		return "none (reset)"
	case a.Recovery == "" && !a.Confirmed:
		s = "none"
		if a.Pending != "" {
			s = "not confirmed"
		}
	case a.Confirmed:
		s = "confirmed"
	default:
		s = "not confirmed"
	}
	if a.Recovery != "" {
		s = store.MaskAddress(a.Recovery) + ", " + s
	}
	return s
}

// lockState says until when signing in is paused, or "no".
func lockState(a *securetextd.Account, now time.Time) string {
	if a.LockedUntil.IsZero() || !a.LockedUntil.After(now) {
		return "no"
	}
	return "until " + stamp(a.LockedUntil)
}
