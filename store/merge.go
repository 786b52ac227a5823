package store

import (
	"strings"
)

// Merged rows. A group commit that runPipelined sends at once holds, for
// each of its messages, the same dozen INSERTs: one into blobs, one into
// chunks, one into messages, and so on. PostgreSQL's cost of a statement
// is much more than that of a row (its executor started and stopped, its
// table and indexes opened and locked, its foreign-key checks queued), so
// the statements of one text are sent as one INSERT of all their rows,
// in the place of the first: ten messages, a dozen statements.
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
// merged into one multi-row INSERT at the place of the first. Other
// statements stay as and where they are. Queries are in the "?" form.
func mergeRows(qs []queued) []queued {
	out := make([]queued, 0, len(qs))
	at := map[string]int{} // text → its merged statement in out
	rows := map[int]int{}  // index in out → rows merged into it
	tuples := map[int]string{}
	for _, q := range qs {
		tuple, ok := insertTuple(q.orig)
		if !ok {
			out = append(out, q)
			continue
		}
		i, seen := at[q.orig]
		if !seen || len(out[i].args)+len(q.args) > maxMergedArgs {
			at[q.orig] = len(out)
			rows[len(out)] = 1
			tuples[len(out)] = tuple
			out = append(out, queued{orig: q.orig, args: q.args})
			continue
		}
		out[i].args = append(out[i].args[:len(out[i].args):len(out[i].args)], q.args...)
		rows[i]++
	}
	for i, n := range rows {
		if n == 1 {
			out[i].query = rebind(out[i].orig)
			continue
		}
		var b strings.Builder
		b.WriteString(out[i].orig)
		for range n - 1 {
			b.WriteString(", ")
			b.WriteString(tuples[i])
		}
		out[i].orig = b.String()
		out[i].query = rebind(out[i].orig)
	}
	for i := range out {
		if out[i].query == "" {
			out[i].query = rebind(out[i].orig)
		}
	}
	return out
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
