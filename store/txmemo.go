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
// trip to PostgreSQL, taken while every node waits for the lock; and
// it asks them all in one query (memoQuery), the first time any is needed.
//
// The memo belongs to one transaction, and is forgotten when another one
// asks. A savepoint rolled back (one commit of a group failing) restores
// it as it was before (see inSavepoint), as the rows are.
type txMemo struct {
	mu   sync.Mutex
	tx   *sql.Tx
	next map[string]int64 // table → the next id to give; nil: not read yet
	head *chainHead       // the audit trail's last row
}

// chainHead is the last row of the audit trail.
type chainHead struct {
	seq  int64
	hash []byte
}

// idTables are the tables whose ids the store gives, in the order
// memoQuery reads their next free ids.
var idTables = [...]string{"messages", "blobs", "conversations", "api_keys", "jobs", "numbered_links"}

// memoQuery reads, in one round trip, the next free id of each of
// idTables and the audit trail's last row (NULLs for an empty trail). A
// job's id is also above every text's, whose row outlives its job (see
// addJob). Each max() is one step down an index, so reading all of them
// costs the server no more than the round trip it saves: a transaction
// that commits a message needs four of them and the chain's head.
const memoQuery = `SELECT
	(SELECT coalesce(max(id), 0) + 1 FROM messages),
	(SELECT coalesce(max(id), 0) + 1 FROM blobs),
	(SELECT coalesce(max(id), 0) + 1 FROM conversations),
	(SELECT coalesce(max(id), 0) + 1 FROM api_keys),
	(SELECT coalesce(max(id), 0) + 1 FROM (
		SELECT max(id) AS id FROM jobs UNION ALL SELECT max(job_id) FROM texts) AS ids),
	(SELECT coalesce(max(id), 0) + 1 FROM numbered_links),
	(SELECT seq FROM audit ORDER BY seq DESC LIMIT 1),
	(SELECT hash FROM audit ORDER BY seq DESC LIMIT 1)`

// nextID reserves the next id of table in tx, a write transaction: one
// more than any in use, and than any this transaction reserved before.
func (db *DB) nextID(ctx context.Context, tx *sql.Tx, table string) (int64, error) {
	m := &db.memo
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.load(ctx, tx); err != nil {
		return 0, err
	}
	id, ok := m.next[table]
	if !ok {
		return 0, errors.New("store: no id for table " + table)
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
	if err := m.load(ctx, tx); err != nil {
		return chainHead{}, err
	}
	return *m.head, nil
}

// load makes the memo tx's, reading what it keeps (memoQuery) unless it
// holds tx's answers already. The caller holds m.mu.
func (m *txMemo) load(ctx context.Context, tx *sql.Tx) error {
	m.use(tx)
	if m.next != nil {
		return nil
	}
	var next [len(idTables)]int64
	var seq sql.NullInt64
	var hash []byte
	if err := tx.QueryRowContext(ctx, memoQuery).Scan(&next[0], &next[1], &next[2], &next[3], &next[4], &next[5], &seq, &hash); err != nil {
		return err
	}
	m.set(next, seq, hash)
	return nil
}

// set keeps the answers of memoQuery. The caller holds m.mu.
func (m *txMemo) set(next [len(idTables)]int64, seq sql.NullInt64, hash []byte) {
	m.next = make(map[string]int64, len(idTables))
	for i, t := range idTables {
		m.next[t] = next[i]
	}
	h := chainHead{seq: seq.Int64, hash: hash}
	if !seq.Valid {
		h.hash = make([]byte, 32)
	}
	m.head = &h
}

// appended records that tx appended the row seq, hash to the trail.
func (db *DB) appended(tx *sql.Tx, seq int64, hash []byte) {
	m := &db.memo
	m.mu.Lock()
	defer m.mu.Unlock()
	m.use(tx)
	m.head = &chainHead{seq: seq, hash: hash}
}

// preset makes the memo tx's, with the answers of memoQuery read as tx
// began (beginGroup).
func (m *txMemo) preset(tx *sql.Tx, next [len(idTables)]int64, seq sql.NullInt64, hash []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tx = tx
	m.set(next, seq, hash)
}

// use makes the memo tx's, forgetting another transaction's.
func (m *txMemo) use(tx *sql.Tx) {
	if m.tx != tx {
		m.tx, m.next, m.head = tx, nil, nil
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
