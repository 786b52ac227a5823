package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// Legal holds and deletes from the command line: hold add|remove|list,
// delete. Each change is audited with the name given with --by, from the
// client "cli"; a hold's reason goes to the store sealed, and is never
// printed but by hold list.

// byName checks --by, which every command that changes a hold or deletes
// needs: who is doing it, for the audit trail.
func byName(cmd, by string) error {
	if by == "" {
		return errUsage{cmd + " needs --by NAME: who you are, for the audit trail"}
	}
	if err := store.CheckActor(by); err != nil {
		return errUsage{"--by: " + securetextd.ErrorMessage(err)}
	}
	return nil
}

// conversationArg reads the one CONVERSATION argument of cmd.
func conversationArg(cmd string, pos []string) (int64, error) {
	if len(pos) != 1 {
		return 0, errUsage{cmd + " needs exactly one CONVERSATION id"}
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return 0, errUsage{fmt.Sprintf("%q is not a conversation id", pos[0])}
	}
	return id, nil
}

// cliOrigin is the context of a command run by the operator named by.
func cliOrigin(by string) context.Context {
	return securetextd.WithOrigin(context.Background(), securetextd.Origin{Actor: by, Client: "cli"})
}

func runHold(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage{"hold needs a command: add, remove or list"}
	}
	sub := args[0]
	fs := flag.NewFlagSet("hold "+sub, flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file")
	reason := fs.String("reason", "", "why the conversation is held (kept sealed)")
	by := fs.String("by", "", "who places or removes the hold")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	var id int64
	switch sub {
	case "add", "remove":
		if id, err = conversationArg("hold "+sub, pos); err != nil {
			return err
		}
		if err := byName("hold "+sub, *by); err != nil {
			return err
		}
		if sub == "add" && *reason == "" {
			return errUsage{"hold add needs --reason TEXT: the matter, subpoena or audit the hold is for"}
		}
		if sub == "remove" && *reason != "" {
			return errUsage{"hold remove takes no --reason"}
		}
	case "list":
		if len(pos) > 0 || *reason != "" || *by != "" {
			return errUsage{"hold list takes no arguments"}
		}
	default:
		return errUsage{fmt.Sprintf("unknown hold command %q: use add, remove or list", sub)}
	}
	_, db, err := openForCommand(*configPath)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := cliOrigin(*by)

	switch sub {
	case "add":
		if err := db.PlaceHold(ctx, id, *reason, *by); err != nil {
			return userError(err)
		}
		fmt.Fprintf(stdout, "Conversation %d is held: retention and deletes leave it whole until `securetextd hold remove %d`\n", id, id)
	case "remove":
		done, err := db.RemoveHold(ctx, id, *by)
		if err != nil {
			return userError(err)
		}
		fmt.Fprintf(stdout, "Removed the hold on conversation %d\n", id)
		if done != nil {
			fmt.Fprintf(stdout, "The delete deferred by the hold is done: %d message(s) purged\n", done.Purged)
		}
	case "list":
		holds, err := db.ListHolds(ctx)
		if err != nil {
			return err
		}
		if len(holds) == 0 {
			fmt.Fprintln(stdout, "No conversation is held.")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CONVERSATION\tPLACED\tBY\tDELETE\tREASON")
		for _, h := range holds {
			pending := "-"
			if h.DeletePending {
				pending = "deferred"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", h.ConversationID, h.Placed.UTC().Format(time.RFC3339), h.By, pending, strconv.Quote(h.Reason))
		}
		return tw.Flush()
	}
	return nil
}

// runDelete deletes a conversation on its sender's behalf, or records the
// delete until its hold is removed.
func runDelete(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("delete", flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file")
	by := fs.String("by", "", "who deletes")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	id, err := conversationArg("delete", pos)
	if err != nil {
		return err
	}
	if err := byName("delete", *by); err != nil {
		return err
	}
	_, db, err := openForCommand(*configPath)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := db.DeleteConversation(cliOrigin(*by), id, *by)
	if err != nil {
		return userError(err)
	}
	if res.Deferred {
		fmt.Fprintf(stdout, "Conversation %d is withdrawn and %s\n", id, securetextd.DeferredMessage)
		return nil
	}
	fmt.Fprintf(stdout, "Deleted conversation %d: %d message(s) purged\n", id, res.Purged)
	return nil
}

var holdManuals = map[string]string{
	"hold": `NAME
    securetextd hold - keep a conversation whole for a legal matter

SYNOPSIS
    securetextd hold add CONVERSATION --reason TEXT --by NAME [--config FILE]
    securetextd hold remove CONVERSATION --by NAME [--config FILE]
    securetextd hold list [--config FILE]

DESCRIPTION
    A held conversation is never purged: the retention sweep (and purge)
    leave its messages, and a message it shares with another phone's
    conversation, as they are; a delete of it (securetextd delete, or its
    sender through the API) withdraws it at once but deletes nothing, says
    "held: deletion deferred until the hold is removed", and is carried
    out when the hold is removed. Access still expires as usual.

    --reason is free text and may name a patient or a matter: it is
    sealed in the store like message content, shown only by hold list,
    and never logged or written to the audit trail. --by names who acts;
    placing and removing a hold are audit events (hold.placed,
    hold.removed) with that name.

    The REST API does the same for admin keys (apikey create --admin).

EXAMPLES
    securetextd hold add 42 --reason "Subpoena 2026-117" --by "Pat Legal"
    securetextd hold list
    securetextd hold remove 42 --by "Pat Legal"
`,
	"delete": `NAME
    securetextd delete - delete a conversation now, for its sender

SYNOPSIS
    securetextd delete CONVERSATION --by NAME [--config FILE]

DESCRIPTION
    Withdraws the conversation (its link and inbox stop showing it) and
    purges the content of its messages as the retention sweep would:
    bodies, files and sealed manifests. A message sent to several phones
    is kept until every conversation that holds it is deleted, or its
    retention ends.

    A held conversation (securetextd hold) is withdrawn but not purged:
    the delete is recorded, this prints "held: deletion deferred until the
    hold is removed", and it happens when the hold is removed.
`,
	"export": `NAME
    securetextd export - write a conversation as standard mail

SYNOPSIS
    securetextd export --conversation N --format mbox|eml-dir --out PATH --by NAME
                       [--sealed-to AGE_RECIPIENT] [--config FILE]

DESCRIPTION
    Writes every message of conversation N, in both directions, as an
    email: the sender's messages with their bodies and attachments, the
    patient's replies with their files, each opened from the sealed store,
    and in each a text part with that message's access history from the
    audit trail (each row with its seq and hash).

    --format mbox writes one mboxrd file (Thunderbird, mutt and Python's
    mailbox read it); eml-dir writes a directory with one .eml file per
    message, in order.

    --sealed-to writes it encrypted to an age recipient ("age1…", a
    post-quantum "age1pq1…", or an SSH public key) instead: the file, or
    each file of the directory (.eml.age), is an age file, and nothing
    readable is written to disk. Open it with: age -d -i KEY PATH.

    PATH must not exist: export never overwrites. It writes a temporary
    file (mode 0600) or directory (0700) beside PATH and renames it when
    it is complete. Each export is an audit event (conversation.exported)
    with the name given with --by.
`,
}
