package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/securetextd/securetextd"
)

// openPostgres opens a pool of connections to the PostgreSQL database at
// dsn, whose queries are written with "?" placeholders (see rebind). app
// names its sessions (pg_stat_activity): gatewayApp, or copyApp.
func openPostgres(dsn string, maxConns int, app string) (*sql.DB, error) {
	return openPostgresCounted(dsn, maxConns, app, nil)
}

// openPostgresCounted is openPostgres counting the pool's round trips to
// the server in transactions in trips (nil: not counted).
func openPostgresCounted(dsn string, maxConns int, app string, trips *atomic.Int64) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message quotes the URL, password and all.
		return nil, errors.New("store.dsn is not a PostgreSQL URL (postgres://user@host:port/database)")
	}
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	cfg.RuntimeParams["application_name"] = app
	// A statement that waits longer than this on a lock or a dying server
	// fails, and its SMTP client is told to try again, rather than hold
	// its session open.
	cfg.RuntimeParams["statement_timeout"] = "60000"
	cfg.RuntimeParams["idle_in_transaction_session_timeout"] = "120000"
	db := sql.OpenDB(rebindConnector{Connector: stdlib.GetConnector(*cfg), trips: trips})
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	return db, nil
}

// The application names of the store's PostgreSQL sessions: store copy
// refuses a database that gateways (or other commands) are connected to,
// which it tells from its own sessions by their name.
const (
	gatewayApp = "securetextd"
	copyApp    = "securetextd store copy"
	doctorApp  = "securetextd doctor"
)

// rebindConnector makes connections that rewrite "?" placeholders into
// "$n" before pgx sees a query, so that the store's SQL is one text for
// both engines. Its connections also mark every error that says the
// server is down or failing over as errUnreachable (see unreachable), at
// the one place every query passes: a read on a path that wraps its own
// errors, or a connection that fails to open, is EUNAVAILABLE all the
// same (SMTP's 451 4.3.0, the portal's try-again page), never an
// internal error.
//
// A connector given a counter counts its connections' round trips to the
// server in it: what a commit costs while it holds the write lock
// (DB.roundTrips).
type rebindConnector struct {
	driver.Connector
	trips *atomic.Int64
}

func (c rebindConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, unreachable(err)
	}
	return &rebindConn{Conn: conn.(*stdlib.Conn), trips: c.trips}, nil
}

// rebindConn is a pgx connection whose queries go through rebind, and
// whose errors through unreachable. database/sql still sees
// driver.ErrBadConn in an error so marked (errors.Is), and retries on a
// new connection as it would.
//
// It also pipelines the statements a transaction marks as not needing
// their results at once (pipeline.go).
type rebindConn struct {
	*stdlib.Conn
	inTx    bool
	pending []queued      // statements waiting for the next round trip
	trips   *atomic.Int64 // counts round trips; nil: not counted
	begun   bool          // beginLocked began a transaction that BeginTx takes
	ended   bool          // commitQueued ran the transaction's COMMIT
}

// trip counts a round trip to the server made in a transaction: what a
// commit costs while it holds the write lock. A read outside one (the
// conversation a commit reads ahead, continue.go) waits on no lock.
func (c *rebindConn) trip() {
	if c.inTx {
		c.count()
	}
}

// count counts a round trip, in a transaction or not.
func (c *rebindConn) count() {
	if c.trips != nil {
		c.trips.Add(1)
	}
}

func (c *rebindConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *rebindConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if _, err := c.flush(ctx, "", nil); err != nil {
		return nil, unreachable(err)
	}
	c.trip()
	st, err := c.Conn.PrepareContext(ctx, rebind(query))
	return st, unreachable(err)
}

func (c *rebindConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.inTx && (query == commitStatement || query == mergedCommitStatement) {
		res, err := c.commitQueued(ctx, query)
		return res, unreachable(err)
	}
	if query == mergedRunStatement {
		return queuedResult{}, nil // the queue goes with the COMMIT
	}
	if c.queue(ctx, query, args) {
		return queuedResult{}, nil
	}
	if len(c.pending) > 0 {
		// The queue and this statement in one round trip.
		res, err := c.flush(ctx, query, args)
		return res, unreachable(err)
	}
	c.trip()
	res, err := c.Conn.ExecContext(ctx, rebind(query), args)
	return res, unreachable(err)
}

func (c *rebindConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if len(c.pending) > 0 && ctx.Value(alongKey{}) != nil {
		rows, err := c.queryAlong(ctx, query, args) // pipeline_query.go
		return rows, unreachable(err)
	}
	if _, err := c.flush(ctx, "", nil); err != nil {
		return nil, unreachable(err)
	}
	c.trip()
	rows, err := c.Conn.QueryContext(ctx, rebind(query), planMode(ctx, args))
	return rows, unreachable(err)
}

func (c *rebindConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.begun {
		// beginLocked began it (beginlocked.go).
		c.begun, c.inTx, c.pending = false, true, c.pending[:0]
		return pipelineTx{Tx: begunTx{c}, c: c}, nil
	}
	c.count() // it begins one
	tx, err := c.Conn.BeginTx(ctx, opts)
	if err != nil {
		return nil, unreachable(err)
	}
	c.inTx, c.pending = true, c.pending[:0]
	return pipelineTx{Tx: tx, c: c}, nil
}

func (c *rebindConn) Ping(ctx context.Context) error {
	return unreachable(c.Conn.Ping(ctx))
}

// errUnreachable is what an operation says when the database server
// cannot be reached or is failing over: a temporary failure (SMTP's 451
// 4.3.0, the portal's try-again page), not a bug.
var errUnreachable = securetextd.Errorf(securetextd.EUNAVAILABLE, "The gateway's database is unreachable; try again later.")

// unreachable marks err as errUnreachable when it says that the database
// server is down, restarting, refusing connections or read-only (a
// standby not yet promoted), keeping err for the log.
func unreachable(err error) error {
	if err == nil || errors.Is(err, errUnreachable) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case len(pe.Code) == 5 && pe.Code[:2] == "08", // connection exception
			pe.Code == "57P01", // admin_shutdown
			pe.Code == "57P02", // crash_shutdown
			pe.Code == "57P03", // cannot_connect_now
			pe.Code == "25006", // read_only_sql_transaction
			pe.Code == "53300": // too_many_connections
			return fmt.Errorf("%w: %w", errUnreachable, err)
		}
		return err
	}
	var ce *pgconn.ConnectError
	var ne *net.OpError
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return fmt.Errorf("%w: %w", errUnreachable, err)
	}
	return err
}

// pgDiskFull reports whether err is PostgreSQL's disk_full (SQLSTATE 53100).
func pgDiskFull(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "53100"
}

// pgReadOnly reports whether err is PostgreSQL's read_only_sql_transaction
// (SQLSTATE 25006): the server takes no writes, being a standby not yet
// promoted or a database set default_transaction_read_only.
func pgReadOnly(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "25006"
}
