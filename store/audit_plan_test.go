package store

import (
	"strings"
	"testing"
)

// TestAuditQueriesUseIndexes: the queries that read one conversation's or
// one message's audit rows search the trail by index, on SQLite, rather
// than read all of it: the trail grows for as long as the law keeps it,
// and the console reads a conversation's rows on each message page. A
// partial index (WHERE conversation_id != 0) is usable only by a query
// that repeats its condition, which is easy to drop by mistake.
func TestAuditQueriesUseIndexes(t *testing.T) {
	db := openTestDB(t)
	if db.eng.name != SQLite {
		t.Skip("the query plans checked are SQLite's; PostgreSQL's planner proves conversation_id != 0 from the value")
	}
	for name, q := range map[string]string{
		"history":      historyQuery,
		"record":       recordAuditQuery,
		"accessEvents": accessEventsQuery,
	} {
		rows, err := db.read.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, 1, 1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		if strings.Contains(text, "SCAN audit") || !strings.Contains(text, "INDEX audit_") {
			t.Errorf("%s reads the whole audit trail:\n%s", name, text)
		}
	}
}
