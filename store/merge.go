package store

import (
	"strings"
	"sync"
)

// Merged rows. A group commit that runPipelined sends at once holds, for
// each of its messages, the same dozen INSERTs: one into blobs, one into
// chunks, one into messages, and so on. A statement costs much more than
// a row: on PostgreSQL its executor started and stopped, its table and
// indexes opened and locked, its foreign-key checks queued; on SQLite a
// trip through database/sql and the driver, a virtual machine reset,
// bound and stepped, its cursors opened. So the statements of one text
// are run as multi-row INSERTs of their rows, in the place of the first:
// ten messages, a dozen statements on PostgreSQL, a few dozen on SQLite
// (powerOfTwoRows).
//
// Moving a row ahead of the statements between may break only a foreign
// key (a row sent before the one it points to), never what the rows are:
// plain INSERTs, with no ON CONFLICT, RETURNING or SELECT, each of whose
// rows stands or falls alone. So mergeRows is used only by runPipelined,
// which on any error commits the batch again without it.

// maxMergedArgs bounds the arguments of one merged statement, well under
// PostgreSQL's 65,535.
const maxMergedArgs = 20000

// mergeRows returns qs with the plain single-row INSERTs of one text
// merged into multi-row INSERTs at the place of the first. Other
// statements stay as and where they are. Queries are in the "?" form
// (orig); bind turns one into the engine's (query). split gives how many
// of n rows still to merge the next statement takes: an engine that
// caches its statements by text bounds how many texts it makes.
func mergeRows(qs []queued, bind func(string) string, split func(n int) int) []queued {
	type rows struct {
		tuple string
		args  [][]any
		done  bool
	}
	texts := map[string]*rows{}
	for _, q := range qs {
		if r, ok := texts[q.orig]; ok {
			if r != nil {
				r.args = append(r.args, q.args)
			}
			continue
		}
		if tuple, ok := insertTuple(q.orig); ok {
			texts[q.orig] = &rows{tuple: tuple, args: [][]any{q.args}}
		} else {
			texts[q.orig] = nil
		}
	}
	out := make([]queued, 0, len(qs))
	for _, q := range qs {
		r := texts[q.orig]
		if r == nil || len(r.args) == 1 {
			out = append(out, q)
			continue
		}
		if r.done {
			continue
		}
		r.done = true
		for left := r.args; len(left) > 0; {
			n := max(1, min(split(len(left)), maxMergedArgs/max(1, len(left[0]))))
			n = min(n, len(left))
			args := make([]any, 0, n*len(left[0]))
			for _, a := range left[:n] {
				args = append(args, a...)
			}
			orig, query := mergedTexts.get(q.orig, r.tuple, n, bind)
			out = append(out, queued{orig: orig, query: query, args: args})
			left = left[n:]
		}
	}
	return out
}

// mergedText is a merged statement's text, in both forms.
type mergedText struct{ orig, query string }

// mergedTextCache keeps the texts mergeRows made, so that a group commit
// does not write them out again: the store's statements are constants,
// and the counts of rows few (powerOfTwoRows), or bounded by maxGroup.
// It is emptied when it holds maxMergedTexts.
type mergedTextCache struct {
	mu sync.Mutex
	m  map[mergedKey]mergedText
}

type mergedKey struct {
	orig string
	rows int
}

const maxMergedTexts = 4096

var mergedTexts mergedTextCache

// get returns the text of orig, a single-row INSERT whose VALUES tuple is
// tuple, with n rows, and that text bound.
func (c *mergedTextCache) get(orig, tuple string, n int, bind func(string) string) (string, string) {
	k := mergedKey{orig, n}
	c.mu.Lock()
	t, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return t.orig, t.query
	}
	var b strings.Builder
	b.WriteString(orig)
	for range n - 1 {
		b.WriteString(", ")
		b.WriteString(tuple)
	}
	t = mergedText{orig: b.String()}
	t.query = bind(t.orig)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxMergedTexts {
		c.m = make(map[mergedKey]mergedText)
	}
	c.m[k] = t
	c.mu.Unlock()
	return t.orig, t.query
}

// allRows is mergeRows's split for PostgreSQL: every row in one
// statement (up to maxMergedArgs).
func allRows(n int) int { return n }

// powerOfTwoRows is mergeRows's split for SQLite, whose connection keeps
// its prepared statements by text (the DSN's _stmt_cache_size): a
// statement of the largest power of two rows that n holds, so that a
// text merges into a handful of texts, not one for each count of rows.
func powerOfTwoRows(n int) int {
	p := 1
	for p*2 <= n {
		p *= 2
	}
	return p
}

// insertTuple returns the VALUES tuple of query, "(?, ?, 'committed', ?)",
// when query is a plain INSERT of one row: "INSERT INTO t (…) VALUES (…)",
// with nothing after the tuple and no SELECT in it.
func insertTuple(query string) (string, bool) {
	q := strings.TrimSpace(query)
	if !strings.HasPrefix(q, "INSERT INTO ") || strings.ContainsAny(q, ";") {
		return "", false
	}
	upper := strings.ToUpper(q)
	for _, w := range []string{"SELECT", "RETURNING", "ON CONFLICT", "DEFAULT"} {
		if strings.Contains(upper, w) {
			return "", false
		}
	}
	v := strings.Index(upper, "VALUES")
	if v < 0 || strings.Count(upper, "VALUES") != 1 || !strings.HasSuffix(strings.TrimSpace(q[:v]), ")") {
		return "", false
	}
	tuple := strings.TrimSpace(q[v+len("VALUES"):])
	if !strings.HasPrefix(tuple, "(") {
		return "", false
	}
	// One tuple: its parentheses close only at its end.
	depth := 0
	for i := 0; i < len(tuple); i++ {
		switch tuple[i] {
		case '\'':
			end := strings.IndexByte(tuple[i+1:], '\'')
			if end < 0 {
				return "", false
			}
			i += end + 1
		case '"':
			return "", false
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 && i != len(tuple)-1 {
				return "", false
			}
		}
	}
	if depth != 0 {
		return "", false
	}
	return tuple, true
}
