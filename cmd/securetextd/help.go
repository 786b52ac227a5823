package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// manuals are the man-page-like manuals of the commands, printed by
// "securetextd help COMMAND" and "securetextd COMMAND --help".
var manuals = map[string]string{
	"serve": `NAME
    securetextd serve - run the gateway

SYNOPSIS
    securetextd serve [--config FILE]

DESCRIPTION
    Opens the store (creating the database and, on first use, the key
    file), binds the SMTP submission listener, the relay listener when
    [relay] listen is set, the portal with the REST API under /api/v1, and
    the [ops] listener when set, then serves until a signal.

SIGNALS
    SIGTERM, SIGINT  Graceful shutdown: listeners close; idle SMTP
                     connections are closed (421); a new MAIL FROM gets
                     421; a DATA transfer in progress may finish (up to 30
                     seconds) and is answered 250 only once committed; HTTP
                     requests in progress finish; the outbox workers finish
                     the job in hand; the database is closed. Exit 0.
                     During start-up, start-up ends first, then the same.
    second signal    Exits at once, during start-up too. Nothing acknowledged is lost: a message
                     is answered 250 only after its commit.
    SIGHUP           Reloads the configuration file: sms.template(s), sms.org,
                     sms.rate, [brand], portal timeouts, reply size and
                     lockout limits, [api], and the TLS certificates of
                     SMTP, the portal and the console (read again from
                     their files). Other changed keys are logged
                     as needing a restart. A file that does not validate
                     changes nothing.

OPTIONS
    --config FILE    The configuration file. Without it, the embedded
                     config.example.toml, with its data under ./data.

EXIT STATUS
    0 after a graceful shutdown; 1 when start-up fails (the message names
    the key at fault); 2 for a bad command line.
`,
	"keygen": `NAME
    securetextd keygen - make an age identity, or add one to rotate the key

SYNOPSIS
    securetextd keygen --out FILE [--x25519]

DESCRIPTION
    With a new FILE: writes a hybrid post-quantum age identity
    (ML-KEM-768 + X25519) to it, mode 0600, and prints its public key.

    With an existing key file: puts a new identity first, before the old
    ones. The first identity seals; all of them open. Key rotation:
        1. securetextd keygen --out /etc/securetextd/key.txt
        2. restart securetextd (it seals to the new identity from then on)
        3. securetextd rekey --config FILE (re-wraps every file key)
        4. remove the old identities from the key file.

OPTIONS
    --out FILE   The key file to create, or to add an identity to.
    --x25519     A classic X25519 identity instead of a post-quantum one.
`,
	"user": `NAME
    securetextd user - manage sender accounts (SMTP AUTH)

SYNOPSIS
    securetextd user add|passwd ADDRESS [--config FILE] [--password-stdin]
    securetextd user add ADDRESS --admin [--config FILE] [--password-stdin]
    securetextd user remove ADDRESS [--config FILE]
    securetextd user list [--config FILE]
    securetextd user admin ADDRESS on|off [--config FILE]
    securetextd user totp reset ADDRESS --by NAME [--config FILE]

DESCRIPTION
    add makes an account that may submit mail as ADDRESS after SMTP AUTH;
    passwd sets a new password; remove deletes the account (its API keys
    with it; its messages stay); list shows the accounts. The password is
    asked twice on the terminal, or read from the first line of standard
    input with --password-stdin. A password needs at least 12 characters
    and must not be easy to guess (a common password, word, name, year,
    keyboard run, or the address or organization's name): the refusal
    says why. A passphrase of four or more unrelated words passes. The
    judge is securetextd-pwcheck, installed beside securetextd.

    The same account signs in to the console (console.listen). An admin
    (add --admin, or admin ADDRESS on) sees every sender's messages there;
    console.require_totp = "admins" (the default) makes admins set up an
    authenticator app (TOTP) at their first sign-in. totp reset clears an
    account's authenticator and recovery codes, and signs it out of the
    console: it sets one up again at its next sign-in. --by names who
    reset it, for the audit trail.
`,
	"apikey": `NAME
    securetextd apikey - manage the REST API's keys

SYNOPSIS
    securetextd apikey create --sender ADDRESS [--name NOTE] [--admin] [--config FILE]
    securetextd apikey list [--sender ADDRESS] [--config FILE]
    securetextd apikey revoke ID [--config FILE]
    securetextd apikey revoke --sender ADDRESS [--config FILE]

DESCRIPTION
    An API key lets software send as one sender account through
    POST /api/v1/messages, and read the state of that account's messages.
    create prints the key ("stx_" and 43 characters) once: the store keeps
    only its SHA-256 and its first 12 characters, which list shows. revoke
    refuses the next request made with the key (or with every key of the
    sender). The daemon need not be restarted.

    --admin makes an admin key instead, answerable to the --sender
    account: it places, removes and lists legal holds through
    /api/v1/conversations/{id}/hold and /api/v1/holds, and cannot send
    or read messages.

EXAMPLES
    securetextd apikey create --sender dr.jones@clinic.example --name "EHR"
`,
	"backup": `NAME
    securetextd backup - copy the database while the gateway runs

SYNOPSIS
    securetextd backup --out FILE [--config FILE]

DESCRIPTION
    Copies store.path to FILE through SQLite's online backup API: one
    consistent snapshot, taken under a read transaction that does not stop
    the gateway from accepting mail. The copy is checked with PRAGMA
    integrity_check before it is renamed into place, mode 0600. FILE must
    not exist.

    Content stays sealed in the copy: restoring it needs the key file,
    which must be backed up too, and kept apart from the database copies.

    With store.driver = "postgres" it refuses: back the database up with
    PostgreSQL's own tools (pg_dump, or pg_basebackup with WAL archiving
    for point-in-time recovery), and the key file beside them.

EXAMPLES
    securetextd backup --config /etc/securetextd/securetextd.toml \
        --out /var/backups/securetextd-$(date +%F).db
`,
	"rekey": `NAME
    securetextd rekey - re-wrap every stored file key to the newest identity

SYNOPSIS
    securetextd rekey [--config FILE]

DESCRIPTION
    Every message part, manifest, outbox payload and recovery address is
    an age file sealed with its own file key. rekey opens each file key
    with any identity of the key file and wraps it again to the first
    (newest) one, in a new age header; the content is not decrypted or
    re-encrypted. The old header's bytes are zeroed.

    It runs beside the gateway, one short transaction at a time, in
    bounded memory. Interrupted (a crash, ^C), it is resumed by running it
    again: what already opens with the newest identity is skipped.

    Run it after "securetextd keygen" on the key file and a restart of the
    gateway; then the older identities can be removed from the key file.
`,
	"doctor": `NAME
    securetextd doctor - check an installation

SYNOPSIS
    securetextd doctor [--config FILE]

DESCRIPTION
    Checks, one line each, "ok", "warn" or "FAIL" and what to do: the
    configuration, and what its relative paths are relative to (the
    file's directory; for the embedded default, the working directory);
    the key file (mode 0600, readable identities); the database (schema
    version, mode); clamd (its version, or a warning that nothing is
    scanned when scan.clamd is empty); whether /metrics is exposed on a
    public portal listener; each TLS certificate (smtp.tls_cert, or the self-signed one
    serve makes when it is empty, portal.tls_cert and console.tls_cert): its subject and
    expiry, a warning 30 days before it, a failure once expired or when
    it or its key does not load; the contrast of brand.color with the
    text the portal writes on it and as the colour of links on white
    (WCAG 2 asks for 4.5:1); the DNS records the relay's policy needs
    (SPF, DMARC) for each sender domain; the DKIM key of the notices to
    email recipients (it loads, and DNS publishes it; a warning when
    email recipients are on and notices go unsigned); the mail relay (connect, EHLO,
    STARTTLS), or, without one, that mail is kept sealed in mail.dir and
    not sent; plain .eml files that older versions left in mail.dir (it
    says how to remove them, and removes nothing); and the Vonage
    credentials (a balance request, which sends nothing).

EXIT STATUS
    0 when no check failed, 1 otherwise.
`,
	"mail": `NAME
    securetextd mail - read the mail kept sealed in mail.dir

SYNOPSIS
    securetextd mail list [--config FILE]
    securetextd mail show FILE [--config FILE]

DESCRIPTION
    With mail.relay empty (the embedded default, for a demo), the gateway
    does not send mail: each reply of a recipient (with its photos and
    files), reset link, delivery notice and read receipt is sealed with
    the store's key into a file of mail.dir, mode 0600, named by the time
    it was written and its outbox job, never by its content:
        20261123T100000.123456789Z-17.eml.age
    Each is a standard age file (age -d -i KEYFILE opens it too): one line
    of JSON (kind, job, recipient), then the message.

    list shows one line per email, oldest first: when it was written, its
    kind (reply, reset, confirm, notice, mdn, read, undelivered), its
    recipient, its size on disk, and its FILE. show writes the message of FILE (a
    name that list shows, or a path) to standard output, as RFC 5322: save
    it as a .eml file to open it in a mail program. Both need the key file.

    The daemon deletes these files once they are older than
    store.retention, as it purges the database. A serve whose
    portal.public_url is https refuses an empty mail.relay.

EXAMPLES
    securetextd mail list --config config.example.toml
    securetextd mail show 20261123T100000.123456789Z-17.eml.age --config config.example.toml > reply.eml
`,
	"recipient": `NAME
    securetextd recipient - see and repair the accounts of phone numbers

SYNOPSIS
    securetextd recipient list --by NAME [--full] [--config FILE]
    securetextd recipient show PHONE --by NAME [--config FILE]
    securetextd recipient unlock PHONE --by NAME [--config FILE]
    securetextd recipient reset PHONE --by NAME [--config FILE]
    securetextd recipient delete PHONE --by NAME [--config FILE]

DESCRIPTION
    Each phone number that opened a link has an account on the portal:
    one password, and a recovery email address where reset links go once
    its owner has confirmed it. These commands help a patient who cannot
    get in. Each records who ran it (--by NAME, required) in the audit
    trail, as the actor "operator:NAME".

    list     One line per account: the phone number (masked unless
             --full), when the account was made, when it was last seen,
             its recovery address (none, not confirmed, confirmed), and
             whether signing in is paused after wrong passwords.
    show     One account: the above, the recovery address masked, an
             address waiting for confirmation, the language chosen, the
             sessions and the latest sign-ins (device and network).
    unlock   Lifts the pause of the number after too many wrong passwords
             or reset requests, at once. Wrong passwords are counted per
             client address too: a pause of the patient's own address
             ends with its window (portal.lockout_window).
    reset    Clears the password and the recovery address, ends every
             session and lifts any pause. The next visit of any link to
             the number sets the account up again, as a first visit.
             For a patient who forgot the password and never confirmed
             an address. Make sure, first, that you are speaking with the
             patient.
    delete   Deletes the account and its sessions. Its conversations stay
             until store.retention ends them; a later link asks for a new
             password.

    PHONE is read as the gateway reads recipients: E.164, or a national
    number of smtp.default_region.

EXAMPLES
    securetextd recipient list --by jane
    securetextd recipient reset 212-555-0123 --by jane --config /etc/securetextd.toml
`,
	"version": `NAME
    securetextd version - print the version

SYNOPSIS
    securetextd version
`,
}

// manualsOf describes the commands another part of the program owns by
// their usage lines, until they have manuals of their own.
func manualFor(cmd string) string {
	if m, ok := manuals[cmd]; ok {
		return m
	}
	if m, ok := lifecycleManuals[cmd]; ok { // lifecycle.go
		return m
	}
	if m, ok := storeManuals[cmd]; ok { // store_cli.go
		return m
	}
	if m, ok := holdManuals[cmd]; ok { // hold_cli.go
		return m
	}
	if m, ok := dkimManuals[cmd]; ok { // dkim_cli.go
		return m
	}
	var lines []string
	for l := range strings.SplitSeq(usage, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "securetextd "+cmd+" ") || strings.TrimSpace(l) == "securetextd "+cmd {
			lines = append(lines, "    "+strings.TrimSpace(l))
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return fmt.Sprintf("NAME\n    securetextd %s\n\nSYNOPSIS\n%s\n", cmd, strings.Join(lines, "\n"))
}

// runHelp prints a manual when args ask for one: "help COMMAND", or a
// command with -h or --help. It reports whether it handled args.
func runHelp(args []string, stdout io.Writer) (bool, error) {
	cmd := args[0]
	switch {
	case cmd == "help" && len(args) > 1:
		cmd = args[1]
	case cmd == "help":
		return false, nil
	case !slices.ContainsFunc(args[1:], func(a string) bool { return a == "-h" || a == "--help" || a == "-help" }):
		return false, nil
	}
	m := manualFor(cmd)
	if m == "" {
		return true, errUsage{fmt.Sprintf("no manual for %q", cmd)}
	}
	fmt.Fprint(stdout, m)
	return true, nil
}

// helpHint is the line printed under a usage error: it names the manual
// of the command that args tried, or the list of commands. The usage
// itself would bury the error (issue 16).
func helpHint(args []string) string {
	if len(args) > 0 && args[0] != "help" && manualFor(args[0]) != "" {
		return fmt.Sprintf("run 'securetextd help %s' for usage", args[0])
	}
	return "run 'securetextd help' for the list of commands"
}
