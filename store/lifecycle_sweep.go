package store

import "context"

// The lifecycle's two sweeps, as the daemon runs them every ten minutes
// and `securetextd purge` runs them at once: each as its sweep
// (Exclusive), so that it never runs beside itself, on this node or
// another. ran is false, and nothing was done, when another run held it.

// ExpireSweep records the conversations whose access has expired
// (ExpireConversations) as the sweep SweepExpire, and returns how many.
func (db *DB) ExpireSweep(ctx context.Context) (expired int, ran bool, err error) {
	ran, err = db.Exclusive(ctx, SweepExpire, func(ctx context.Context) (err error) {
		expired, err = db.ExpireConversations(ctx)
		return err
	})
	return expired, ran, err
}

// PurgeSweep deletes the content past the retention period (Purge) as
// the sweep SweepPurge, and says what it deleted.
func (db *DB) PurgeSweep(ctx context.Context) (res PurgeResult, ran bool, err error) {
	ran, err = db.Exclusive(ctx, SweepPurge, func(ctx context.Context) (err error) {
		res, err = db.Purge(ctx)
		return err
	})
	return res, ran, err
}
