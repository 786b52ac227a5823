package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/pgtest"
)

// TestStoreCopyCommand moves a gateway's SQLite store into PostgreSQL and
// back into a new file with "securetextd store copy", as an operator
// would, and opens each copy with the gateway's commands and key file:
// the message reads back, and "audit verify" passes. It also holds the
// command's usage, manual and refusals.
func TestStoreCopyCommand(t *testing.T) {
	pgtest.Need(t)
	pg, err := pgtest.Start(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	dir := t.TempDir()
	key := filepath.Join(dir, "key.txt")
	config := func(name, store string) string {
		path := filepath.Join(dir, name+".toml")
		body := fmt.Sprintf("[store]\nkey_file = %q\n%s\n", key, store)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	dbName, err := pg.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	sqliteCfg := config("single", fmt.Sprintf("path = %q", filepath.Join(dir, "data", "securetextd.db")))
	pgCfg := config("cluster", fmt.Sprintf("driver = \"postgres\"\ndsn = %q", pg.URL(dbName)))
	backCfg := config("back", fmt.Sprintf("path = %q", filepath.Join(dir, "back", "securetextd.db")))

	// The gateway's store, with a message in it; then the gateway stops.
	cfg, err := LoadConfig(sqliteCfg)
	if err != nil {
		t.Fatal(err)
	}
	db, err := openStore(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	d := db.NewDraft()
	w, _ := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
	io.WriteString(w, "Your results are normal.")
	w.Close()
	r, err := d.Commit(ctx, &securetextd.Message{Sender: "dr.who@clinic.example", Subject: "Results"}, []securetextd.Phone{"+12125550123"})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	copyCmd := func(from, to string) (string, error) {
		var out bytes.Buffer
		err := run([]string{"store", "copy", "--from", from, "--to", to}, strings.NewReader(""), &out, io.Discard)
		return out.String(), err
	}
	out, err := copyCmd(sqliteCfg, pgCfg)
	if err != nil {
		t.Fatalf("store copy: %v\n%s", err, out)
	}
	for _, want := range []string{
		"copying the store in the SQLite file " + filepath.Join(dir, "data", "securetextd.db"),
		"into the PostgreSQL database " + dbName + " on 127.0.0.1:",
		"  messages ", "the copy is good: this run copied ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("store copy's output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "note: the copy stays sealed") {
		t.Errorf("a note about key files, though both configs name the same:\n%s", out)
	}
	if out, err = copyCmd(pgCfg, backCfg); err != nil {
		t.Fatalf("store copy back: %v\n%s", err, out)
	}
	// Run again over a finished copy, it only checks.
	if out, err = copyCmd(sqliteCfg, pgCfg); err != nil || !strings.Contains(out, "the copy is good: it was complete; this run checked it") {
		t.Errorf("store copy run again: %v\n%s", err, out)
	}

	for _, c := range []string{pgCfg, backCfg} {
		var out bytes.Buffer
		if err := run([]string{"audit", "verify", "--config", c}, strings.NewReader(""), &out, io.Discard); err != nil {
			t.Errorf("audit verify --config %s: %v\n%s", filepath.Base(c), err, out.String())
		}
		cfg, err := LoadConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		db, err := openStore(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		m, err := db.Message(context.Background(), r.MessageID)
		if err != nil || m.Subject != "Results" {
			t.Errorf("%s: message %d: %+v, %v", filepath.Base(c), r.MessageID, m, err)
		}
		db.Close()
	}

	// Into a store that a gateway opened: refused, naming what is there.
	usedCfg := config("used", fmt.Sprintf("path = %q", filepath.Join(dir, "used", "securetextd.db")))
	if cfg, err := LoadConfig(usedCfg); err != nil {
		t.Fatal(err)
	} else if db, err := openStore(cfg, nil); err != nil {
		t.Fatal(err)
	} else {
		db.Close()
	}
	if out, err := copyCmd(pgCfg, usedCfg); err == nil || !strings.Contains(err.Error(), "the destination already holds data that is not a copy of this source (its row id=1 of data_keys is not the source's): data_keys (1 row)") {
		t.Errorf("store copy into a used store: %v\n%s", err, out)
	}
	var help bytes.Buffer
	if err := run([]string{"help", "store"}, nil, &help, io.Discard); err != nil || !strings.Contains(help.String(), "securetextd store copy --from CONFIG --to CONFIG") {
		t.Errorf("help store: %v\n%s", err, help.String())
	}
	for _, args := range [][]string{{"store"}, {"store", "move"}, {"store", "copy", "--from", sqliteCfg}, {"store", "copy", "--from", sqliteCfg, "--to", pgCfg, "extra"}} {
		if err := run(args, nil, io.Discard, io.Discard); !isUsage(err) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

// isUsage reports whether err is a command-line usage error (exit 2).
func isUsage(err error) bool {
	_, ok := err.(errUsage)
	return ok
}
