package store

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCopyKilled kills the copy, as a process, with SIGKILL: inside a
// batch's transaction and just after a commit, in both directions. Each
// time, the copy run again carries on and ends as an uninterrupted copy
// does.
func TestCopyKilled(t *testing.T) {
	ctx := t.Context()
	s1 := sqliteOptions(t, "source.db")
	fx := fillStore(t, s1.Path)
	whole, err := Copy(ctx, s1, pgOptions(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := digests(t, whole)
	pg, s2 := pgOptions(t), sqliteOptions(t, "back.db")
	for _, dir := range []struct{ from, to Options }{{s1, pg}, {pg, s2}} {
		for i, at := range []string{"during", "after", "during"} {
			spec, _ := json.Marshal(killSpec{From: dir.from, To: dir.to, At: at, Batch: 3 + 4*i})
			child := helperProcess(t, map[string]string{"copy": string(spec)})
			if err := child.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			child.cmd.Wait()
		}
		res, err := Copy(ctx, dir.from, dir.to, nil)
		if err != nil {
			t.Fatalf("%s → %s after the kills: %v", dir.from.Driver, dir.to.Driver, err)
		}
		if !res.Resumed || res.Copied == 0 {
			t.Errorf("%s → %s: the copy after the kills resumed %v and copied %d rows: the kills were not in the middle", dir.from.Driver, dir.to.Driver, res.Resumed, res.Copied)
		}
		for name, d := range digests(t, res) {
			if want[name] != d {
				t.Errorf("%s → %s: table %s differs from an uninterrupted copy", dir.from.Driver, dir.to.Driver, name)
			}
		}
	}
	checkStore(t, s2, fx)
}

// killSpec tells the helper process which copy to run, and where to stop
// and wait to be killed: "during" batch Batch's transaction, or "after"
// its commit.
type killSpec struct {
	From, To Options
	At       string
	Batch    int
}

// helper is the test binary run again as a helper process (see
// TestCopyHelperProcess), which says "ready" on its standard output when
// it has done what it was asked.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func helperProcess(t *testing.T, env map[string]string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCopyHelperProcess$", "-test.count=1")
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, "STORE_COPY_HELPER_"+strings.ToUpper(k)+"="+v)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd, stdin}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if sc.Text() == "ready" {
			go io.Copy(io.Discard, stdout)
			return h
		}
	}
	cmd.Wait()
	t.Fatalf("the helper process ended before it was ready: %v", sc.Err())
	return nil
}

// stop ends a helper that waits for its standard input to close.
func (h *helper) stop(t *testing.T) {
	t.Helper()
	h.stdin.Close()
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("helper process: %v", err)
	}
}

// TestCopyHelperProcess is not a test: it is what the helper processes
// of the tests above run, as told by their environment. Without it, it
// does nothing.
func TestCopyHelperProcess(t *testing.T) {
	if path := os.Getenv("STORE_COPY_HELPER_HOLD"); path != "" {
		// A gateway's hold on its database: an open connection.
		db, err := sql.Open("sqlite3", sqliteDSN(path, readerStatements))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM messages`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		db.Close()
		return
	}
	if spec := os.Getenv("STORE_COPY_HELPER_COPY"); spec != "" {
		var k killSpec
		if err := json.Unmarshal([]byte(spec), &k); err != nil {
			t.Fatal(err)
		}
		batches := 0
		wait := func(at string) error {
			if at == k.At && batches == k.Batch {
				fmt.Println("ready")
				time.Sleep(time.Hour) // until killed
			}
			return nil
		}
		_, err := runCopy(context.Background(), t, k.From, k.To, func(c *copier) {
			c.duringBatch = func(string) error { batches++; return wait("during") }
			c.afterBatch = func(string) error { return wait("after") }
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		fmt.Println("ready") // the copy ended before that batch
	}
}
