package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/securetextd/securetextd"
)

// What a small message's commit writes (issue 15). The probe commits
// messages after an emptied WAL and reads the WAL's frame headers: which
// pages each commit appended, mapped to the tables and indexes they
// belong to (SQLite's dbstat table, in the sqlite3 command-line tool or a
// build with -tags sqlite_dbstat). The bytes the process passed to write
// system calls meanwhile (wchar in /proc/self/io) count what the WAL does
// not show: statement and savepoint journals spilled to temporary files.

// errRefused is the failure of the commit that TestSmallCommitWrites
// puts in a group to make it commit with savepoints.
var errRefused = errors.New("refused by the test")

// groupedCommits commits n small messages as one group commit: a first
// grouped call holds the writer until the n drafts are all waiting, so
// that they make the next batch. With failing, one more grouped call in
// the batch fails, so that the batch runs again with a savepoint per
// commit (runGroup).
func groupedCommits(t *testing.T, db *DB, n int, failing bool) {
	t.Helper()
	commits := n
	if failing {
		commits++
	}
	heldCommits(t, db, commits, func(i int) error {
		if i < n {
			return commitSmall(db, i)
		}
		err := db.updateGrouped(context.Background(), func(context.Context, *sql.Tx) error { return errRefused })
		if !errors.Is(err, errRefused) {
			return fmt.Errorf("the failing commit returned %v", err)
		}
		return nil
	})
}

// commitSmall commits a message of 1 KiB of text to one phone, as the
// bench's small messages are.
func commitSmall(db *DB, i int) error {
	d := db.NewDraft()
	defer d.Discard()
	w, err := d.CreatePart(securetextd.Part{Kind: securetextd.PartText, ContentType: "text/plain"})
	if err != nil {
		return err
	}
	w.Write(randomBytes(uint64(i), 1<<10))
	if err := w.Close(); err != nil {
		return err
	}
	m := &securetextd.Message{Sender: "a@example.org", Subject: "Results", Auth: "smtp-auth"}
	_, err = d.Commit(context.Background(), m, []securetextd.Phone{"+12125550123"})
	return err
}

// walPages empties the WAL, runs fn, and returns the page numbers of the
// frames fn's commits appended, in order, and the bytes the process
// passed to write system calls meanwhile.
func walPages(t *testing.T, db *DB, fn func()) (pages []uint32, wchar int64) {
	t.Helper()
	var busy, log, done int
	if err := db.write.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &log, &done); err != nil || busy != 0 {
		t.Fatalf("checkpoint: busy %d, %v", busy, err)
	}
	w0 := selfWchar(t)
	fn()
	wchar = selfWchar(t) - w0
	b, err := os.ReadFile(db.path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 32 {
		return nil, wchar
	}
	size := int(binary.BigEndian.Uint32(b[8:]))
	for off := 32; off+24+size <= len(b); off += 24 + size {
		pages = append(pages, binary.BigEndian.Uint32(b[off:]))
	}
	return pages, wchar
}

// selfWchar is wchar of /proc/self/io.
func selfWchar(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io (%v): this probe counts the process's writes on Linux", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "wchar:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	t.Fatal("no wchar in /proc/self/io")
	return 0
}

// pageOwners maps page numbers to the table or index owning them, from
// dbstat: in this binary if built with it, else in the sqlite3 tool; nil
// when neither has it.
func pageOwners(db *DB) map[uint32]string {
	owners := map[uint32]string{}
	rows, err := db.read.Query("SELECT name, pageno FROM dbstat")
	if err == nil {
		defer rows.Close()
		for rows.Next() {
			var name string
			var page uint32
			if rows.Scan(&name, &page) == nil {
				owners[page] = name
			}
		}
		return owners
	}
	out, err := exec.Command("sqlite3", "-readonly", db.path, "SELECT name || ' ' || pageno FROM dbstat").Output()
	if err != nil {
		return nil
	}
	for line := range strings.Lines(string(out)) {
		name, page, _ := strings.Cut(strings.TrimSpace(line), " ")
		n, _ := strconv.ParseUint(page, 10, 32)
		owners[uint32(n)] = name
	}
	return owners
}

// byOwner counts frames by the table or index owning their page; nil
// without dbstat.
func byOwner(db *DB, pages []uint32) map[string]int {
	owners := pageOwners(db)
	if owners == nil {
		return nil
	}
	count := map[string]int{}
	for _, p := range pages {
		name := owners[p]
		if name == "" {
			name = "(free page)"
		}
		count[name]++
	}
	return count
}

// describePages counts frames by owner: "messages 2, blobs 1, …".
func describePages(db *DB, pages []uint32) string {
	count := byOwner(db, pages)
	if count == nil {
		return fmt.Sprintf("pages %v (no dbstat here: build with -tags sqlite_dbstat or install sqlite3 to name them)", pages)
	}
	var names []string
	for n := range count {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return count[b] - count[a] })
	var s []string
	for _, n := range names {
		s = append(s, fmt.Sprintf("%s %d", n, count[n]))
	}
	return strings.Join(s, ", ")
}

// commitWrites is what TestSmallCommitWrites measured, written as JSON to
// the file $SECURETEXTD_COMMIT_WRITES names (the bench reads it).
type commitWrites struct {
	Messages int            `json:"messages"` // committed in the measurement
	Group    int            `json:"group"`    // messages per group commit
	Frames   int            `json:"frames"`   // WAL frames appended
	Page     int            `json:"page"`     // page size
	Wchar    int64          `json:"wchar"`    // bytes passed to write system calls
	Owners   map[string]int `json:"owners"`   // frames by table or index; nil without dbstat
	// Savepoints: one commit of each group failed, so that the group ran
	// again with a savepoint per commit.
	Savepoints bool `json:"savepoints"`
	// Phones: TestPhonesCommitWrites's commits, to 1,000 phones, each
	// joining its conversation, on a store of pages of Page bytes.
	Phones bool `json:"phones"`
}

// TestSmallCommitWrites checks what small messages' commits write: in
// group commits of 16, at most 14 KiB per message passed to write system
// calls, WAL frames included (15 to 15.5 KB before migration 0017 took
// three indexes and a b-tree per commit away, 13.5 KB after). It measures beside them groups that run
// with a savepoint per commit, as every group did before, whose journals
// spilled to temporary files passed 129 KB per message.
func TestSmallCommitWrites(t *testing.T) {
	db := openTestDB(t)
	if db.eng.name != SQLite {
		t.Skip("the probe reads SQLite's WAL; PostgreSQL's writes are in the bench (pg_stat_wal)")
	}
	// Tables of some depth, as on a gateway that has been running.
	for range 20 {
		groupedCommits(t, db, 16, false)
	}

	var out []commitWrites
	pages, wchar := walPages(t, db, func() {
		if err := commitSmall(db, 1000); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("one message alone: %d WAL frames, %d distinct pages, %d bytes written: %s",
		len(pages), len(distinct(pages)), wchar, describePages(db, pages))
	out = append(out, commitWrites{Messages: 1, Group: 1, Frames: len(pages), Wchar: wchar, Owners: byOwner(db, pages)})

	// Eight groups: a b-tree's page splits (three or four pages written
	// at once) come every few groups.
	const n, groups = 16, 8
	for _, failing := range []bool{false, true} {
		pages, wchar = walPages(t, db, func() {
			for range groups {
				groupedCommits(t, db, n, failing)
			}
		})
		per := wchar / (n * groups)
		how := "none failing: no savepoints"
		if failing {
			how = "one more failing in each: a savepoint per commit"
		}
		t.Logf("%d group commits of %d messages (%s): %.1f WAL frames per message, %d bytes written per message: %s",
			groups, n, how, float64(len(pages))/(n*groups), per, describePages(db, pages))
		out = append(out, commitWrites{Messages: n * groups, Group: n, Frames: len(pages), Wchar: wchar, Owners: byOwner(db, pages), Savepoints: failing})
		// 15.4 KB with the audit index by time and parts keyed by rowid
		// (before migration 0017), 14.4 KB without.
		if limit := int64(15 << 10); !failing && per > limit {
			t.Errorf("a grouped small message passed %d bytes to write system calls, want at most %d", per, limit)
		}
	}

	if path := os.Getenv("SECURETEXTD_COMMIT_WRITES"); path != "" {
		var page int
		db.write.QueryRow("PRAGMA page_size").Scan(&page)
		for i := range out {
			out[i].Page = page
		}
		// For the bench, side by side: the bench's shape of commits on
		// SQLite's default page size and on the store's.
		for _, page := range []int{4096, pageSize} {
			out = append(out, phonesCommitWrites(t, page))
		}
		b, _ := json.Marshal(out)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func distinct(pages []uint32) []uint32 {
	s := slices.Clone(pages)
	slices.Sort(s)
	return slices.Compact(s)
}
