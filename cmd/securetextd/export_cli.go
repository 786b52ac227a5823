package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/export"
)

// runExport writes a conversation as mail (export/), plain or sealed to an
// age recipient, to a path that must not exist, through a temporary file
// or directory renamed once complete, and audits it.
func runExport(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file")
	conv := fs.Int64("conversation", 0, "the conversation to export")
	format := fs.String("format", "", "mbox or eml-dir")
	out := fs.String("out", "", "the file (mbox) or directory (eml-dir) to create")
	by := fs.String("by", "", "who exports")
	sealedTo := fs.String("sealed-to", "", "an age recipient to encrypt the export to")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return errUsage{fmt.Sprintf("export takes no arguments, got %q", pos[0])}
	case *conv <= 0:
		return errUsage{"export needs --conversation N"}
	case *format != "mbox" && *format != "eml-dir":
		return errUsage{fmt.Sprintf("--format %q: use mbox or eml-dir", *format)}
	case *out == "":
		return errUsage{"export needs --out PATH"}
	}
	if err := byName("export", *by); err != nil {
		return err
	}
	var recipients []age.Recipient
	if *sealedTo != "" {
		if recipients, err = age.ParseRecipients(strings.NewReader(*sealedTo)); err != nil {
			return errUsage{fmt.Sprintf("--sealed-to: %v", err)}
		}
	}
	if _, err := os.Lstat(*out); err == nil {
		return fmt.Errorf("%s exists: export never overwrites; choose another --out", *out)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}

	cfg, db, err := openForCommand(*configPath)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := cliOrigin(*by)
	rec, err := db.ConversationRecord(ctx, *conv)
	if err != nil {
		return userError(err)
	}
	x := &export.Writer{Source: db, Record: rec, Domain: cfg.SMTP.Domain}
	publish := publishFile
	write := func(dst string) error {
		return writeExportFile(dst, recipients, func(w io.Writer) error { return x.MBox(ctx, w) })
	}
	if *format == "eml-dir" {
		publish = publishDir
		write = func(dst string) error { return writeEMLDir(ctx, dst, x, recipients) }
	}
	detail := fmt.Sprintf("format=%s messages=%d sealed=%t", *format, len(rec.Messages), len(recipients) > 0)
	err = publish(*out, write, func() error {
		// Audited before the export appears: no export goes unrecorded.
		return db.Audit(ctx, securetextd.AuditEvent{
			Event: securetextd.AuditExported, Actor: *by, ConversationID: *conv, Detail: detail,
		})
	})
	if err != nil {
		return err
	}
	sealed := ""
	if len(recipients) > 0 {
		sealed = ", sealed to " + *sealedTo
	}
	fmt.Fprintf(stdout, "Exported conversation %d: %d message(s) to %s (%s%s)\n", *conv, len(rec.Messages), *out, *format, sealed)
	return nil
}

// writeExportFile creates dst (mode 0600, never an existing file) and
// writes body to it, through age to recipients when there are any, and
// syncs it.
func writeExportFile(dst string, recipients []age.Recipient, body func(io.Writer) error) (err error) {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	var w io.Writer = f
	var sealer io.WriteCloser
	if len(recipients) > 0 {
		if sealer, err = age.Encrypt(f, recipients...); err != nil {
			return fmt.Errorf("export: seal: %w", err)
		}
		w = sealer
	}
	if err := body(w); err != nil {
		return err
	}
	if sealer != nil {
		if err := sealer.Close(); err != nil {
			return fmt.Errorf("export: seal: %w", err)
		}
	}
	return f.Sync()
}

// writeEMLDir writes each message of x into dir, one file apiece, in the
// conversation's order.
func writeEMLDir(ctx context.Context, dir string, x *export.Writer, recipients []age.Recipient) error {
	for i := range x.Record.Messages {
		name := x.FileName(i)
		if len(recipients) > 0 {
			name += ".age"
		}
		err := writeExportFile(filepath.Join(dir, name), recipients, func(w io.Writer) error { return x.WriteMessage(ctx, w, i) })
		if err != nil {
			return err
		}
	}
	return nil
}

// publishFile writes the file at out through a temporary file beside it,
// runs audit, then links the file in place: linking, unlike renaming,
// fails if out appeared meanwhile, so nothing is overwritten.
func publishFile(out string, write func(string) error, audit func() error) error {
	dir := filepath.Dir(out)
	tmp := filepath.Join(dir, "."+filepath.Base(out)+".part-"+randomSuffix())
	defer os.Remove(tmp)
	if err := write(tmp); err != nil {
		return err
	}
	if err := audit(); err != nil {
		return err
	}
	if err := os.Link(tmp, out); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists: export never overwrites; choose another --out", out)
		}
		return err
	}
	return syncDir(dir)
}

// publishDir is publishFile for a directory (0700), renamed in place:
// out is checked again just before.
func publishDir(out string, write func(string) error, audit func() error) error {
	dir := filepath.Dir(out)
	tmp := filepath.Join(dir, "."+filepath.Base(out)+".part-"+randomSuffix())
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := write(tmp); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := audit(); err != nil {
		return err
	}
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("%s exists: export never overwrites; choose another --out", out)
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// randomSuffix names a temporary file.
func randomSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}
