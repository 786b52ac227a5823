// Package clamdtest runs a private ClamAV daemon for the tests: Debian's
// clamav-daemon, on a unix socket in a temporary directory, with a
// configuration and a signature database of its own. There is no network
// for freshclam, so the database holds two signatures the tests make: the
// EICAR test file (a .ndb body signature) and Sample, a few test-made
// bytes known by their MD5 (a .hdb hash signature, which matches only the
// whole file, so a finding proves the scanner was sent every byte of it).
// With so small a database clamd starts in a fraction of a second.
//
// One daemon serves every test of a test binary (Shared); a test that
// stops its daemon starts one of its own (Start). When clamd is missing, a
// test that needs it fails, naming the package to install, or skips under
// go test -short.
package clamdtest

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/securetextd/securetextd/internal/need"
)

// Program and Package name clamd and the Debian package that brings it.
const (
	Program = "/usr/sbin/clamd"
	Package = "clamav-daemon"
)

// The names clamd gives the two findings; it marks signatures from
// databases that are not signed by ClamAV as UNOFFICIAL.
const (
	EICARName  = "Securetextd.Test.EICAR.UNOFFICIAL"
	SampleName = "Securetextd.Test.Sample.UNOFFICIAL"
)

// EICAR returns the EICAR anti-virus test file: harmless, and found by
// every scanner. It is put together at run time so that this source file
// is not itself a finding.
func EICAR() []byte {
	return []byte(`X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR` + `-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`)
}

// Sample returns the test-made sample: 192 KiB of bytes from a fixed
// seed, found by its hash.
func Sample() []byte {
	b := make([]byte, 192<<10)
	rand.NewChaCha8([32]byte([]byte("securetextd clamdtest sample 001"))).Read(b)
	return b
}

// Server is a running private clamd.
type Server struct {
	Dir    string // holds the configuration, database, socket and log
	Socket string

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan error
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
)

// Need fails t, or skips it under -short, when clamd is not installed.
func Need(t testing.TB) {
	t.Helper()
	need.Program(t, Program, Package)
}

// Shared returns the test binary's clamd, starting it on first use. Stop
// it at the end of TestMain with StopShared.
func Shared(t testing.TB) *Server {
	t.Helper()
	Need(t)
	sharedOnce.Do(func() { shared, sharedErr = Start() })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// StopShared stops the shared clamd if one was started.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}

// Start writes a configuration and the signature database into a new
// temporary directory and starts clamd on it; it returns once clamd
// answers PING.
func Start() (*Server, error) {
	if _, err := need.Lookup(Program, Package); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "clamd-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, Socket: filepath.Join(dir, "clamd.sock")}
	sum := md5.Sum(Sample())
	files := map[string]string{
		"test.ndb": "Securetextd.Test.EICAR:0:*:" + hex.EncodeToString(EICAR()) + "\n",
		"test.hdb": fmt.Sprintf("%s:%d:Securetextd.Test.Sample\n", hex.EncodeToString(sum[:]), len(Sample())),
		// StreamMaxLength and the scan limits above the gateway's
		// largest message (100 MiB), as the README asks of an
		// operator's clamd.
		"clamd.conf": strings.Join([]string{
			"Foreground yes",
			"LocalSocket " + s.Socket,
			"DatabaseDirectory " + dir,
			"TemporaryDirectory " + dir,
			"LogFile " + filepath.Join(dir, "clamd.log"),
			"StreamMaxLength 200M",
			"MaxFileSize 200M",
			"MaxScanSize 400M",
			"MaxThreads 4",
			"SelfCheck 0",
		}, "\n") + "\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			return nil, err
		}
	}
	if err := s.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// start runs clamd in the foreground as a child of this process that dies
// with it, and waits until it answers.
func (s *Server) start() error {
	cmd := exec.Command(Program, "-c", filepath.Join(s.Dir, "clamd.conf"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("clamdtest: %w", err)
	}
	s.cmd, s.exit = cmd, make(chan error, 1)
	go func() { s.exit <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if s.ping() == nil {
			return nil
		}
		select {
		case err := <-s.exit:
			s.cmd = nil
			return fmt.Errorf("clamdtest: clamd exited: %v\n%s", err, s.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("clamdtest: clamd did not answer in 60 s\n%s", s.Log())
		}
	}
}

// ping sends PING and expects PONG.
func (s *Server) ping() error {
	c, err := net.DialTimeout("unix", s.Socket, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("zPING\x00")); err != nil {
		return err
	}
	b := make([]byte, 16)
	n, _ := c.Read(b)
	if string(b[:n]) != "PONG\x00" {
		return errors.New("no PONG")
	}
	return nil
}

// Addr is the daemon's address as scan.clamd takes it.
func (s *Server) Addr() string { return "unix:" + s.Socket }

// PID is clamd's process id, or 0 when it is not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Halt stops clamd (SIGTERM, as systemd does), keeping its directory:
// its socket goes away with it.
func (s *Server) Halt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exit:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exit
	}
	s.cmd = nil
}

// Stop stops clamd and removes its directory.
func (s *Server) Stop() {
	s.Halt()
	os.RemoveAll(s.Dir)
}

// Log returns what clamd wrote to its log.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "clamd.log"))
	return strings.TrimSpace(string(b))
}

// Resume starts a halted clamd again, on the same socket.
func (s *Server) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.start()
}

// Own starts a clamd of its own for t, stopped when t ends: for a test
// that stops or pauses it.
func Own(t testing.TB) *Server {
	t.Helper()
	Need(t)
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}
