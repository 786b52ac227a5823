package store

import (
	"context"
	"database/sql"
	"fmt"
)

// SweepLimits deletes the rows of the shared limits (strikes.go,
// authfailures.go) that count nothing any more, and returns how many: a
// phone number or an address stays in them no longer than its count
// matters. The writes of those limits also delete them, but only when a
// new key comes; the daemon runs this on a timer, so that a quiet
// gateway forgets too. Each transaction deletes at most sweepBatch rows.
func (db *DB) SweepLimits(ctx context.Context) (int, error) {
	now := nanos(db.Now())
	total := 0
	for _, table := range []string{"limit_strikes", "auth_failures"} {
		// The table's name is one of the two above, never input.
		query := `DELETE FROM ` + table + ` WHERE (kind, key) IN (
			SELECT kind, key FROM ` + table + ` WHERE expires <= ? LIMIT ?)`
		for {
			var n int64
			err := db.update(ctx, func(tx *sql.Tx) error {
				res, err := tx.ExecContext(ctx, query, now, sweepBatch)
				if err != nil {
					return err
				}
				n, err = res.RowsAffected()
				return err
			})
			if err != nil {
				return total, fmt.Errorf("store: sweep limits: %w", err)
			}
			total += int(n)
			if n < sweepBatch {
				break
			}
		}
	}
	return total, nil
}
