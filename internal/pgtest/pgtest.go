// Package pgtest runs a private PostgreSQL server for the tests: Debian's
// postgresql, a cluster made with initdb in a temporary directory, on a
// loopback port, as the postgres user when the tests run as root (the
// server refuses to run as root) and as the tests' own user otherwise. One
// server serves every test of a test binary; each test gets a database of
// its own.
//
// Tests run on PostgreSQL when SECURETEXTD_TEST_ENGINE=postgres (make test
// runs the store and gateway suites once so); on SQLite otherwise. When
// PostgreSQL is missing, a test that needs it fails, naming the package to
// install, or skips under go test -short.
package pgtest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the admin connection

	"github.com/securetextd/securetextd/internal/need"
)

// EngineEnv names the environment variable that picks the tests' engine.
const EngineEnv = "SECURETEXTD_TEST_ENGINE"

// Enabled reports whether the tests are to run on PostgreSQL.
func Enabled() bool { return os.Getenv(EngineEnv) == "postgres" }

// Server is a running private PostgreSQL server.
type Server struct {
	Dir  string // holds the data directory, the socket and the log
	Port int
	// Durable says whether the server fsyncs its commits: off for the
	// test suites (what they test is the gateway's crashes, not the
	// server's), on for benchmarks.
	Durable bool
	// Settings are more server settings, "name=value" each.
	Settings []string

	cmd   *exec.Cmd
	exit  chan error
	admin *sql.DB
	mu    sync.Mutex
	uid   *syscall.Credential
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
	dbCount    atomic.Int64
)

// initdb is where Debian's postgresql package puts initdb, one directory
// per major version.
const initdb = "/usr/lib/postgresql/*/bin/initdb"

// binDir finds the directory of Debian's PostgreSQL programs: the newest
// version installed.
func binDir() (string, error) {
	p, err := need.Lookup(initdb, "postgresql")
	if err != nil {
		return "", fmt.Errorf("PostgreSQL: %w", err)
	}
	return filepath.Dir(p), nil
}

// Need fails t, or skips it under -short, when PostgreSQL is not
// installed.
func Need(t testing.TB) {
	t.Helper()
	if _, err := binDir(); err != nil {
		need.Missing(t, err)
	}
}

// Shared returns the test binary's server, starting it on first use. Stop
// it at the end of TestMain with StopShared.
func Shared(t testing.TB) *Server {
	t.Helper()
	Need(t)
	sharedOnce.Do(func() { shared, sharedErr = Start(false) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// Main is the TestMain of a package whose tests may use the shared
// server: it runs them, stops the server, calls each of stop (the
// stopping of other shared servers, such as clamdtest.StopShared) and
// exits.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M, stop ...func()) {
	code := m.Run()
	StopShared()
	for _, f := range stop {
		f()
	}
	os.Exit(code)
}

// StopShared stops the shared server if one was started.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}

// Start makes a new cluster in a temporary directory and starts its
// server on a free loopback port.
func Start(durable bool) (*Server, error) {
	return StartWith(durable)
}

// StartWith is Start with more server settings, "name=value" each.
func StartWith(durable bool, settings ...string) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "securetextd-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, Durable: durable, Settings: settings}
	if os.Geteuid() == 0 {
		// The server will not run as root: run it as postgres, which
		// must be able to reach the directory.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgtest: running as root needs the postgres user (Debian's postgresql package makes it): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.uid = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chmod(dir, 0o711); err != nil {
			return nil, err
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-instructions")
	if !durable {
		initdb.Args = append(initdb.Args, "--no-sync")
	}
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.uid}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	if err := s.startServer(bin); err != nil {
		return nil, err
	}
	return s, nil
}

// startServer runs postgres in the foreground, as a child of this
// process that dies with it, and waits until it takes connections.
func (s *Server) startServer(bin string) error {
	if s.Port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		s.Port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	args := []string{"-D", filepath.Join(s.Dir, "data"), "-p", strconv.Itoa(s.Port), "-k", s.Dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "shared_buffers=64MB"}
	if !s.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	// PGTEST_SETTINGS adds server settings, for a look inside while
	// measuring: "shared_preload_libraries=pg_stat_statements track_io_timing=on".
	for _, kv := range append(s.Settings, strings.Fields(os.Getenv("PGTEST_SETTINGS"))...) {
		args = append(args, "-c", kv)
	}
	log, err := os.OpenFile(filepath.Join(s.Dir, "server.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = log, log
	// SIGQUIT is PostgreSQL's immediate shutdown: should the tests die,
	// the server goes with them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.uid, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("pgtest: postgres: %w", err)
	}
	log.Close()
	s.cmd, s.exit = cmd, make(chan error, 1)
	go func() { s.exit <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			c.Close()
			db, err := sql.Open("pgx", s.URL("postgres"))
			if err == nil {
				if err = db.Ping(); err == nil {
					s.admin = db
					return nil
				}
				db.Close()
			}
		}
		select {
		case err := <-s.exit:
			logText, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
			return fmt.Errorf("pgtest: postgres exited: %v\n%s", err, logText)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return errors.New("pgtest: postgres did not start in 30 s")
		}
	}
}

// PID is the server's process id (the postmaster, parent of every
// backend), or 0 when it is not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// URL is the connection URL of database name.
func (s *Server) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", s.Addr(), name)
}

// NewDatabase makes an empty database for t, dropped when t ends, and
// returns its URL.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name, err := s.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.DropDatabase(name) })
	return s.URL(name)
}

// CreateDatabase makes an empty database and returns its name.
func (s *Server) CreateDatabase() (string, error) {
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbCount.Add(1))
	if _, err := s.admin.Exec("CREATE DATABASE " + name); err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	return name, nil
}

// DropDatabase drops database name, ending its connections.
func (s *Server) DropDatabase(name string) {
	s.admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
}

// Stop shuts the server down (fast: connections are ended) and removes
// its directory.
func (s *Server) Stop() {
	s.Halt()
	os.RemoveAll(s.Dir)
}

// Halt shuts the server down, keeping its data: Resume starts it again on
// the same port. The failover tests use it.
func (s *Server) Halt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.admin != nil {
		s.admin.Close()
		s.admin = nil
	}
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exit:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exit
	}
	s.cmd = nil
}

// Resume starts a halted server again.
func (s *Server) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	bin, err := binDir()
	if err != nil {
		return err
	}
	return s.startServer(bin)
}

// Exec runs a statement on database name as the superuser, for tests
// that look behind the store's back.
func (s *Server) Exec(ctx context.Context, name, query string, args ...any) error {
	db, err := sql.Open("pgx", s.URL(name))
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, query, args...)
	return err
}

// Log returns what the server wrote to its log.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	return string(bytes.TrimSpace(b))
}
