package main

import (
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/console"
	"github.com/securetextd/securetextd/store"
)

// The information lifecycle from the command line and in the daemon: the
// sweep that records expiries and purges content, and the purge, revoke,
// audit and report commands (their flags and output; the store does the
// work). The lifecycle's configuration keys are in config_lifecycle.go.

// auditStart records, when the daemon starts, the configuration it runs
// with and the key that seals; a key that differs from the last one
// recorded is a key change.
func (m *Main) auditStart(ctx context.Context, publicKey string) error {
	ctx = securetextd.WithOrigin(ctx, securetextd.Origin{Actor: "operator"})
	return m.db.RecordStart(ctx, "sha256:"+m.Config.fingerprint(), publicKey)
}

// lifecycleEvery is how often the daemon records expiries and purges.
const lifecycleEvery = 10 * time.Minute

// sweepLifecycle records expired conversations and purges content past
// the retention period, at start and then every lifecycleEvery, and logs
// the head of the audit trail once a day, so that the logs hold anchors
// that a later `audit verify --anchor` can check the trail against.
//
// cfg is the configuration the daemon started with: mail.dir and
// store.retention take a restart, and m.Config is Reload's to change.
func (m *Main) sweepLifecycle(ctx context.Context, cfg Config) error {
	t := time.NewTicker(lifecycleEvery)
	defer t.Stop()
	var logged time.Time
	for {
		// Each on one node at a time (sweeps.go).
		n, ran, err := m.db.ExpireSweep(ctx)
		if n > 0 {
			m.Logger.Info("conversations expired", "count", n)
		}
		m.sweepDone(ctx, store.SweepExpire, ran, err)
		res, ran, err := m.db.PurgeSweep(ctx)
		if res.Messages > 0 {
			m.Logger.Info("content purged", "messages", res.Messages, "jobs", res.Jobs, "checkpointed", res.Checkpointed)
		}
		m.sweepDone(ctx, store.SweepPurge, ran, err)
		if n, err := sweepMailDir(ctx, cfg, m.db.Now()); err != nil { // mail_cli.go
			m.Logger.Error("purge mail.dir", "err", err)
		} else if n > 0 {
			m.Logger.Info("sealed mail purged", "files", n)
		}
		if time.Since(logged) >= 24*time.Hour {
			if head, err := m.db.AuditHead(ctx); err == nil && head != nil {
				m.Logger.Info("audit head", "seq", head.Seq, "hash", hex.EncodeToString(head.Hash))
				logged = time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// openForCommand loads the configuration of a command and opens its
// store, with the configuration's policy.
func openForCommand(configPath string) (Config, *store.DB, error) {
	cfg, err := LoadConfig(configPath)
	if err != nil {
		return cfg, nil, err
	}
	db, err := openStore(cfg, nil)
	if err != nil {
		return cfg, nil, err
	}
	return cfg, db, nil
}

// auditSender records a change to a sender account (store.SenderAdded,
// SenderPassword, SenderRemoved) made with `securetextd user`.
func auditSender(ctx context.Context, db *store.DB, what, address string) error {
	return db.RecordSenderChange(operator(ctx), what, address)
}

// operator is the context of a command an operator runs.
func operator(ctx context.Context) context.Context {
	return securetextd.WithOrigin(ctx, securetextd.Origin{Actor: "operator", Client: "cli"})
}

// runPurge records expiries and deletes the content past the retention
// period now, as the daemon does every ten minutes.
func runPurge(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("purge", flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return errUsage{"purge takes no arguments"}
	}
	cfg, db, err := openForCommand(*configPath)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := operator(context.Background())
	// The daemon's sweeps, and never beside them (sweeps.go).
	expired, ranExpire, err := db.ExpireSweep(ctx)
	if err != nil {
		return err
	}
	res, ranPurge, err := db.PurgeSweep(ctx)
	if err != nil {
		return err
	}
	if !ranExpire || !ranPurge {
		fmt.Fprintf(stdout, "the daemon is sweeping at this moment (on this machine or another node): it does what purge would; run purge again when it is done to see the counts.\n")
	}
	mails, err := sweepMailDir(ctx, cfg, db.Now())
	if err != nil {
		return err
	}
	if cfg.Store.Retention == 0 {
		fmt.Fprintf(stdout, "store.retention is 0s: content is kept.\n")
	}
	fmt.Fprintf(stdout, "conversations expired: %d\nmessages purged: %d\nfinished jobs deleted: %d\nsealed emails deleted from mail.dir: %d\n", expired, res.Messages, res.Jobs, mails)
	if (res.Messages > 0 || res.Jobs > 0) && !res.Checkpointed {
		fmt.Fprintf(stdout, "the WAL could not be checkpointed (a reader was busy): the next purge tries again.\n")
	}
	return nil
}

// runRevoke withdraws conversations, by their ids or by the message that
// started them.
func runRevoke(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file")
	message := fs.Int64("message", 0, "withdraw every conversation of this message id")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if (*message == 0) == (len(pos) == 0) {
		return errUsage{"revoke needs CONVERSATION ids or --message ID"}
	}
	var convs []int64
	for _, a := range pos {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			return errUsage{fmt.Sprintf("%q is not a conversation id", a)}
		}
		convs = append(convs, id)
	}
	_, db, err := openForCommand(*configPath)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := operator(context.Background())
	if *message != 0 {
		ids, err := db.RevokeMessage(ctx, *message)
		if err != nil {
			return userError(err)
		}
		for _, id := range ids {
			fmt.Fprintf(stdout, "withdrew conversation %d\n", id)
		}
		if len(ids) == 0 {
			fmt.Fprintf(stdout, "every conversation of message %d was withdrawn already\n", *message)
		}
		return nil
	}
	var errs []error
	for _, id := range convs {
		err := db.RevokeConversation(ctx, id)
		switch securetextd.ErrorCode(err) {
		case "":
			fmt.Fprintf(stdout, "withdrew conversation %d\n", id)
		case securetextd.EREVOKED:
			fmt.Fprintf(stdout, "conversation %d was withdrawn already\n", id)
		default:
			errs = append(errs, fmt.Errorf("conversation %d: %w", id, userError(err)))
		}
	}
	return errors.Join(errs...)
}

// runAudit verifies or exports the audit trail.
func runAudit(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage{"audit needs a command: verify or export"}
	}
	sub := args[0]
	fs := flag.NewFlagSet("audit "+sub, flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file")
	since := fs.String("since", "", "export rows from this time on: RFC 3339, a date (2006-01-02), or a duration back from now (720h)")
	format := fs.String("format", "jsonl", "export format: jsonl or csv")
	anchor := fs.String("anchor", "", "verify: SEQ:HASH, a head recorded earlier, that the trail must still hold")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return errUsage{fmt.Sprintf("audit %s takes no arguments", sub)}
	}
	switch sub {
	case "verify", "export":
	default:
		return errUsage{fmt.Sprintf("unknown audit command %q: use verify or export", sub)}
	}
	from, err := parseSince(*since, time.Now())
	if err != nil {
		return errUsage{err.Error()}
	}
	if *format != "jsonl" && *format != "csv" {
		return errUsage{fmt.Sprintf("--format %q: use jsonl or csv", *format)}
	}
	_, db, err := openForCommand(*configPath)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	if sub == "export" {
		return exportAudit(ctx, db, from, *format, stdout)
	}
	return verifyAudit(ctx, db, *anchor, stdout)
}

// verifyAudit checks the chain, and the anchor if one is given.
func verifyAudit(ctx context.Context, db *store.DB, anchor string, stdout io.Writer) error {
	check, err := db.VerifyAudit(ctx)
	if err != nil {
		return err
	}
	if !check.OK() {
		return fmt.Errorf("audit trail broken at row %d: %s", check.Seq, check.Problem)
	}
	if anchor != "" {
		a, err := store.ParseAuditAnchor(anchor)
		if err != nil {
			return errUsage{"--anchor wants SEQ:HASH, as `audit verify` printed it"}
		}
		if err := db.CheckAuditAnchor(ctx, a); err != nil {
			return err
		}
	}
	if check.Rows == 0 {
		fmt.Fprintf(stdout, "the audit trail is empty.\n")
		return nil
	}
	fmt.Fprintf(stdout, "the audit trail verifies: %d rows.\nhead: %s (record it to check later runs with --anchor)\n",
		check.Rows, store.AnchorOf(check.Head))
	return nil
}

// auditRecord is a row of the trail as it is exported.
type auditRecord struct {
	Seq          int64  `json:"seq"`
	Time         string `json:"time"`
	Event        string `json:"event"`
	Actor        string `json:"actor"`
	Conversation int64  `json:"conversation,omitempty"`
	Message      int64  `json:"message,omitempty"`
	Client       string `json:"client,omitempty"`
	UserAgent    string `json:"user_agent,omitempty"`
	Detail       string `json:"detail,omitempty"`
	Hash         string `json:"hash"`
}

func record(ev securetextd.AuditEvent) auditRecord {
	return auditRecord{
		Seq: ev.Seq, Time: ev.Time.UTC().Format(time.RFC3339Nano), Event: ev.Event, Actor: ev.Actor,
		Conversation: ev.ConversationID, Message: ev.MessageID, Client: ev.Client, UserAgent: ev.UserAgent,
		Detail: ev.Detail, Hash: hex.EncodeToString(ev.Hash),
	}
}

// exportAudit writes the trail from since on as JSON lines or CSV (with
// a header row), for a compliance officer's tools.
func exportAudit(ctx context.Context, db *store.DB, since time.Time, format string, w io.Writer) error {
	if format == "csv" {
		cw := csv.NewWriter(w)
		cw.Write([]string{"seq", "time", "event", "actor", "conversation", "message", "client", "user_agent", "detail", "hash"})
		err := db.AuditTrail(ctx, since, func(ev securetextd.AuditEvent) error {
			r := record(ev)
			return cw.Write([]string{strconv.FormatInt(r.Seq, 10), r.Time, r.Event, console.CSVSafe(r.Actor),
				strconv.FormatInt(r.Conversation, 10), strconv.FormatInt(r.Message, 10),
				console.CSVSafe(r.Client), console.CSVSafe(r.UserAgent), console.CSVSafe(r.Detail), r.Hash})
		})
		cw.Flush()
		return errors.Join(err, cw.Error())
	}
	enc := json.NewEncoder(w)
	return db.AuditTrail(ctx, since, func(ev securetextd.AuditEvent) error { return enc.Encode(record(ev)) })
}

// parseSince reads --since: RFC 3339, a date, or a duration back from now.
// "" is the beginning.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: use a time (2006-01-02T15:04:05Z), a date (2006-01-02) or a duration (720h)", s)
}

// runReport lists each message sent to a phone with its state and the
// history of its conversation.
func runReport(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file")
	sender := fs.String("sender", "", "only the messages of this sender address")
	since := fs.String("since", "", "only messages received since: RFC 3339, a date, or a duration back from now")
	asJSON := fs.Bool("json", false, "write JSON lines instead of text")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return errUsage{"report takes no arguments"}
	}
	from, err := parseSince(*since, time.Now())
	if err != nil {
		return errUsage{err.Error()}
	}
	_, db, err := openForCommand(*configPath)
	if err != nil {
		return err
	}
	defer db.Close()
	msgs, err := db.SentMessages(context.Background(), *sender, from)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, m := range msgs {
			hist := make([]auditRecord, len(m.History))
			for i, ev := range m.History {
				hist[i] = record(ev)
			}
			if err := enc.Encode(map[string]any{
				"message": m.MessageID, "conversation": m.ConversationID, "sender": m.Sender,
				"phone": m.Phone, "received": m.Received.UTC().Format(time.RFC3339), "state": m.State, "history": hist,
			}); err != nil {
				return err
			}
		}
		return nil
	}
	if len(msgs) == 0 {
		fmt.Fprintln(stdout, "no messages.")
	}
	for _, m := range msgs {
		fmt.Fprintf(stdout, "message %d to %s (conversation %d) from %s, %s: %s\n",
			m.MessageID, m.Phone, m.ConversationID, m.Sender, m.Received.UTC().Format("2006-01-02 15:04 MST"), m.State)
		for _, ev := range m.History {
			line := fmt.Sprintf("  %s  %-22s %s", ev.Time.UTC().Format("2006-01-02 15:04:05"), ev.Event, ev.Actor)
			if ev.Client != "" {
				line += " from " + ev.Client
			}
			if ev.UserAgent != "" {
				line += " (" + ev.UserAgent + ")"
			}
			if ev.Detail != "" {
				line += ": " + ev.Detail
			}
			fmt.Fprintln(stdout, line)
		}
	}
	return nil
}

// lifecycleManuals are the manuals of the lifecycle's commands, for
// "securetextd help COMMAND" (help.go).
var lifecycleManuals = map[string]string{
	"purge": `NAME
    securetextd purge - delete content past the retention period now

SYNOPSIS
    securetextd purge [--config FILE]

DESCRIPTION
    Records the conversations whose access has expired (portal.access_expiry)
    in the audit trail, then deletes the content of every message received
    more than store.retention ago: its parts and their sealed chunks, and its
    sealed manifest (subject, names, filenames). Rows are deleted in
    transactions of 50 messages, SQLite's secure_delete zeroes the freed
    pages, and the WAL is checkpointed and truncated, so that the deleted
    ciphertext is in no file. The message rows and the audit trail stay:
    who sent what to which number when, and every access.

    The sealed emails of mail.dir (written when mail.relay is empty) that
    are older than store.retention are deleted too.

    The daemon does the same every ten minutes; purge is for running it at
    once. With store.retention = "0s" it deletes nothing.
`,
	"revoke": `NAME
    securetextd revoke - withdraw conversations

SYNOPSIS
    securetextd revoke [--config FILE] CONVERSATION...
    securetextd revoke [--config FILE] --message ID

DESCRIPTION
    Withdraws each conversation given by id, or every conversation of the
    message with the given id (one per phone it went to): the recipient
    can no longer open it, and its link says that the sender withdrew it.
    Texts about it still queued are not sent, and no later message joins
    it. Ids are in the delivery notice mailed to the sender and in
    securetextd report. The same as the link in the delivery notice.
`,
	"audit": `NAME
    securetextd audit - verify or export the audit trail

SYNOPSIS
    securetextd audit verify [--config FILE] [--anchor SEQ:HASH]
    securetextd audit export [--config FILE] [--since TIME] [--format jsonl|csv]

DESCRIPTION
    The audit trail holds every message accepted or refused, text queued,
    sent, delivered or failed, link opened, password set, login, failed
    login and lockout, view, download, reply, reset, receipt, expiry,
    withdrawal, purge, configuration and key change: with its time, actor,
    conversation, client address and user agent, never content. Each row
    carries the SHA-256 of the row before it and of itself.

    verify recomputes the chain and names the first row that was altered,
    removed or inserted (exit 1), or prints the number of rows and the head
    (SEQ:HASH). Record the head elsewhere: --anchor checks that a later
    trail still holds it, which catches a rewritten or shortened history.
    The daemon logs the head once a day.

    export writes the rows from --since on (RFC 3339, a date, or a duration
    back from now such as 720h), as JSON lines or CSV with a header row.
`,
	"report": `NAME
    securetextd report - what became of each message sent

SYNOPSIS
    securetextd report [--config FILE] [--sender ADDRESS] [--since TIME] [--json]

DESCRIPTION
    Lists each message sent to a phone, one line per phone, with its state
    (queued, texted, delivered, read, replied, failed, expired, revoked,
    purged) and the history of its conversation from the audit trail: text
    sent and delivered, link opened, logins, views, downloads, replies.
    --sender keeps one sender's messages; --since those received since a
    time (RFC 3339, a date, or a duration back from now).
`,
}
