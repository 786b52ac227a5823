package store

import (
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/internal/pgtest"
)

// compiles counts, per table and column, what SQLite's authorizer is
// asked while statements are compiled on the store's connections. The
// authorizer is consulted only when a statement is compiled, never when a
// compiled one runs, so a count that grows while an operation is repeated
// is a statement compiled anew on each run.
type compiles struct {
	mu    sync.Mutex
	on    bool
	calls map[string]int
}

// watch sets c as the authorizer of every connection of pool, which opens
// at most n of them.
func (c *compiles) watch(t *testing.T, pool *sql.DB, n int) {
	t.Helper()
	ctx := t.Context()
	var conns []*sql.Conn
	for range n { // all held at once, so that each is a different one
		conn, err := pool.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	for _, conn := range conns {
		err := conn.Raw(func(dc any) error {
			sc, ok := dc.(*sqlite3.SQLiteConn)
			if w, isWriter := dc.(*sqliteConn); isWriter {
				sc, ok = w.Conn(), true
			}
			if !ok {
				return fmt.Errorf("connection is a %T", dc)
			}
			sc.RegisterAuthorizer(func(op int, arg1, arg2, _ string) int {
				// Transaction control (BEGIN, COMMIT, ROLLBACK) is run by
				// the driver as text each time, and costs no planning.
				if op != sqlite3.SQLITE_TRANSACTION {
					c.mu.Lock()
					if c.on {
						c.calls[fmt.Sprintf("op %d on %s %s", op, arg1, arg2)]++
					}
					c.mu.Unlock()
				}
				return sqlite3.SQLITE_OK
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
}

// during runs op a few times to fill the connections' statement caches,
// then ten times counting compiles, and returns what was compiled.
func (c *compiles) during(op func()) []string {
	for range 2 * readers {
		op()
	}
	c.mu.Lock()
	c.on = true
	clear(c.calls)
	c.mu.Unlock()
	for range 10 {
		op()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on = false
	var out []string
	for k, n := range c.calls {
		out = append(out, fmt.Sprintf("%s (%d times)", k, n))
	}
	slices.Sort(out)
	return out
}

// TestStatementsStayPrepared: the statements of a message's commit, of
// the texts' claims, and of every read a portal page makes are compiled
// once per connection and then reused from the driver's statement cache
// (_stmt_cache_size).
//
// SQLite can defeat that cache. When the planner weighs a bound value in
// a loop that does not look rows up by it, as the inner loop of a join
// does with the outer table's "col = ?", or as any loop does with an
// equality its index does not cover, it marks the statement to be
// compiled again when that value is bound anew; and mattn/go-sqlite3
// clears the bindings before each run, so such a statement is compiled on
// every run: four times the cost of the query itself on the conversation
// page, where OpenPart's join and MarkViewed's were compiled for each
// view. The cure is in the text: a scalar subquery instead of the join, a
// constant written into the text instead of bound. This test finds any
// statement that needs it.
func TestStatementsStayPrepared(t *testing.T) {
	if pgtest.Enabled() {
		t.Skip("SQLite's statement cache: the SQLite pass of make test runs this")
	}
	db := openTestDB(t)
	ctx := t.Context()
	c := &compiles{calls: map[string]int{}}
	c.watch(t, db.read, readers)
	c.watch(t, db.write, 1)

	phone := securetextd.Phone("+12125550123")
	for i := range 3 {
		if err := commitSmall(db, i); err != nil {
			t.Fatal(err)
		}
	}
	token := drainJobs(t, db)[0].Token
	var msg, conv int64
	if err := db.read.QueryRowContext(ctx,
		`SELECT message_id, conversation_id FROM conversation_messages ORDER BY message_id DESC LIMIT 1`).Scan(&msg, &conv); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRecipient(ctx, phone, "a long test passphrase", "ana@example.org"); err != nil {
		t.Fatal(err)
	}
	session, err := db.CreateSession(ctx, phone)
	if err != nil {
		t.Fatal(err)
	}
	i := 10
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"commit of a small message", func() error { i++; return commitSmall(db, i) }},
		{"commit of a small message that joins its conversation", func() error {
			// conversations.continue = "per-sender", the gateway's default.
			db.Policy.ContinuePerSender = true
			defer func() { db.Policy.ContinuePerSender = false }()
			i++
			return commitSmall(db, i)
		}},
		{"claim and completion of a text", func() error {
			j, err := db.ClaimJob(ctx, db.Now(), time.Minute, nil, securetextd.JobKindText)
			if err != nil {
				return err
			}
			return db.CompleteClaim(ctx, j)
		}},
		{"NextDueExcept", func() error {
			_, _, err := db.NextDueExcept(ctx, []int64{1}, securetextd.JobKindText, securetextd.JobKindReply)
			return err
		}},
		{"ConversationByToken", func() error { _, err := db.ConversationByToken(ctx, token); return err }},
		{"Session", func() error { _, err := db.Session(ctx, session, time.Hour, 24*time.Hour); return err }},
		{"Recipient", func() error { _, err := db.Recipient(ctx, phone); return err }},
		{"Inbox", func() error { _, err := db.Inbox(ctx, phone); return err }},
		{"Conversation", func() error { _, err := db.Conversation(ctx, conv); return err }},
		{"ConversationAccess", func() error { return db.ConversationAccess(ctx, conv) }},
		{"ConversationWithAccess", func() error { _, _, err := db.ConversationWithAccess(ctx, conv); return err }},
		{"ConversationMessages", func() error { _, err := db.ConversationMessages(ctx, conv); return err }},
		{"MessageInConversation", func() error { _, _, err := db.MessageInConversation(ctx, conv, msg); return err }},
		{"ConversationMessage", func() error { _, err := db.ConversationMessage(ctx, conv, msg); return err }},
		{"OpenPart", func() error { _, _, err := db.OpenPart(ctx, msg, 0); return err }},
		{"LastSeen", func() error { _, err := db.LastSeen(ctx, conv, phone); return err }},
		{"MarkViewed", func() error { return db.MarkViewed(ctx, conv, []int64{msg}) }},
	} {
		var failed error
		compiled := c.during(func() {
			if err := op.run(); err != nil && failed == nil {
				failed = err
			}
		})
		if failed != nil {
			t.Errorf("%s: %v", op.name, failed)
			continue
		}
		if len(compiled) > 0 {
			t.Errorf("%s compiles a statement on every run; the authorizer was asked:\n\t%s", op.name, strings.Join(compiled, "\n\t"))
		}
	}
}
