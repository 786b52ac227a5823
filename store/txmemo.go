package store

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"sync"
)

// A write transaction holds the write lock (engine.go) from its first
// statement to its commit: nothing else writes meanwhile, on any node. So
// what it read of the ids in use, or of the audit chain's head, stays true
// until it commits, except for what it wrote itself. txMemo keeps those
// answers for the transaction that holds the lock, so that a group commit
// of thirty messages asks for the next message id, blob id, job id and the
// chain's head once each instead of thirty times: each question is a round
// trip to PostgreSQL, taken while every node waits for the lock.
//
// The memo belongs to one transaction, and is forgotten when another one
// asks. A savepoint rolled back (one commit of a group failing) restores
// it as it was before (see inSavepoint), as the rows are.
type txMemo struct {
	mu   sync.Mutex
	tx   *sql.Tx
	next map[string]int64 // table → the next id to give
	head *chainHead       // the audit trail's last row; nil: not read yet
}

// chainHead is the last row of the audit trail.
type chainHead struct {
	seq  int64
	hash []byte
}

// idQueries read the next free id of each table whose ids the store gives.
// A job's id is also above every text's, whose row outlives its job (see
// addJob).
var idQueries = map[string]string{
	"messages":      `SELECT coalesce(max(id), 0) + 1 FROM messages`,
	"blobs":         `SELECT coalesce(max(id), 0) + 1 FROM blobs`,
	"conversations": `SELECT coalesce(max(id), 0) + 1 FROM conversations`,
	"api_keys":      `SELECT coalesce(max(id), 0) + 1 FROM api_keys`,
	"jobs": `SELECT coalesce(max(id), 0) + 1 FROM (
		SELECT max(id) AS id FROM jobs UNION ALL SELECT max(job_id) FROM texts) AS ids`,
}

// nextID reserves the next id of table in tx, a write transaction: one
// more than any in use, and than any this transaction reserved before.
func (db *DB) nextID(ctx context.Context, tx *sql.Tx, table string) (int64, error) {
	m := &db.memo
	m.mu.Lock()
	defer m.mu.Unlock()
	m.use(tx)
	id, ok := m.next[table]
	if !ok {
		query, known := idQueries[table]
		if !known {
			return 0, errors.New("store: no id query for table " + table)
		}
		if err := tx.QueryRowContext(ctx, query).Scan(&id); err != nil {
			return 0, err
		}
	}
	m.next[table] = id + 1
	return id, nil
}

// chainHead returns the audit trail's last row as tx sees it, with
// ok false when the trail is empty.
func (db *DB) chainHead(ctx context.Context, tx *sql.Tx) (chainHead, error) {
	m := &db.memo
	m.mu.Lock()
	defer m.mu.Unlock()
	m.use(tx)
	if m.head != nil {
		return *m.head, nil
	}
	h := chainHead{hash: make([]byte, 32)}
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&h.seq, &h.hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return chainHead{}, err
	}
	m.head = &h
	return h, nil
}

// appended records that tx appended the row seq, hash to the trail.
func (db *DB) appended(tx *sql.Tx, seq int64, hash []byte) {
	m := &db.memo
	m.mu.Lock()
	defer m.mu.Unlock()
	m.use(tx)
	m.head = &chainHead{seq: seq, hash: hash}
}

// use makes the memo tx's, forgetting another transaction's.
func (m *txMemo) use(tx *sql.Tx) {
	if m.tx != tx {
		m.tx, m.next, m.head = tx, make(map[string]int64), nil
	}
}

// memoState is a copy of the memo, to restore when a savepoint is rolled
// back.
type memoState struct {
	tx   *sql.Tx
	next map[string]int64
	head *chainHead
}

func (db *DB) saveMemo() memoState {
	m := &db.memo
	m.mu.Lock()
	defer m.mu.Unlock()
	return memoState{tx: m.tx, next: maps.Clone(m.next), head: m.head}
}

func (db *DB) restoreMemo(s memoState) {
	m := &db.memo
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tx, m.next, m.head = s.tx, s.next, s.head
}
