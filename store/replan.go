package store

import (
	"context"
	"database/sql/driver"

	"github.com/jackc/pgx/v5"
)

// Statements planned for their arguments. pgx prepares each query text
// once per connection, and after five runs PostgreSQL may settle on a
// generic plan, one that does not look at the arguments. For most of the
// store's statements that is what saves the server's time. It is wrong for
// a claim of the jobs of some kinds ("reply", "notice", …) while thousands
// of texts wait for their turn at the SMS rate: the kind column has one
// common value, so the generic plan walks the pending jobs in due order
// and filters out every text, a few milliseconds of the server's CPU per
// claim, where a plan for the kinds asked finds none in a few index
// entries. A query run with a context from replan(ctx) is planned anew,
// for its arguments, each time it runs (pgx's unnamed statement, with the
// statement's description cached); on SQLite replan changes nothing.

// replanKey marks a context whose query is planned for its arguments.
type replanKey struct{}

// replan returns ctx marked so that a query run with it is planned for
// its arguments each time (see above).
func replan(ctx context.Context) context.Context {
	return context.WithValue(ctx, replanKey{}, true)
}

// planMode returns args led by the query mode that plans a query for its
// arguments when ctx asks for it (replan), args as they are otherwise.
func planMode(ctx context.Context, args []driver.NamedValue) []driver.NamedValue {
	if ctx.Value(replanKey{}) == nil {
		return args
	}
	return append([]driver.NamedValue{{Value: pgx.QueryExecModeCacheDescribe}}, args...)
}
