package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/securetextd/securetextd/internal/pgtest"
	"github.com/securetextd/securetextd/store"
)

// Cluster test parameters: clusterKills SIGKILLs of node A; texts at
// clusterRate a second for the whole cluster, slower than the load
// brings messages in, so that a backlog holds the rate to its limit.
const (
	clusterNodes = 3
	clusterKills = 10
	clusterRate  = 40
	clusterLoad  = 20 // SMTP sessions
)

// TestCluster runs three gateway processes on one PostgreSQL database,
// with the same configuration and key file, under load from twenty SMTP
// sessions spread across them, and SIGKILLs node A ten times at random
// moments, restarting it each time. At the end:
//
//   - every message that got 250 was texted, and no more texts went out
//     twice than there were kills (the text in flight at each);
//   - every link opens on every node;
//   - the texts kept to sms.rate for the cluster as a whole, measured
//     from the times the fake Vonage server got them;
//   - no sweep ran on two nodes at once (the store's sweep log);
//   - `securetextd audit verify` passes.
func TestCluster(t *testing.T) {
	if !pgtest.Enabled() {
		t.Skip("needs PostgreSQL: runs with SECURETEXTD_TEST_ENGINE=postgres (make test's second pass)")
	}
	pgtest.Need(t)
	dsn := testDSN(t)
	vonage := newFakeVonage(t)
	key := filepath.Join(t.TempDir(), "key.txt")
	if _, err := store.WriteKeyFile(key, true); err != nil {
		t.Fatal(err)
	}
	text := crashConfigText(t, vonage.URL) // on PostgreSQL: testDSN(t)
	for old, new := range map[string]string{
		`key_file = "data/key.txt"`: fmt.Sprintf("key_file = %q", key),
		"rate = 1000":               fmt.Sprintf("rate = %d", clusterRate),
		"allow_insecure_auth = true\n": "allow_insecure_auth = true\n" +
			"max_connections_per_ip = 1000 # every client is on loopback\n",
	} {
		if !strings.Contains(text, old) {
			t.Fatalf("the crash test's configuration has no %q", old)
		}
		text = strings.Replace(text, old, new, 1)
	}
	var cfgPaths []string
	for i := range clusterNodes {
		dir := t.TempDir()
		path := filepath.Join(dir, "securetextd.toml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cfgPaths = append(cfgPaths, path)
		if i == 0 {
			if err := run([]string{"user", "add", "dr.who@clinic.example", "--config", path, "--password-stdin"},
				strings.NewReader("correct horse battery\n"), io.Discard, os.Stderr); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The nodes start at once, so that their start-up sweeps meet.
	nodes := make([]*daemon, clusterNodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			nodes[i] = startDaemonLog(t, cfgPaths[i], filepath.Join(filepath.Dir(cfgPaths[i]), "daemon.log"))
		})
	}
	wg.Wait()
	var mu sync.Mutex
	up := make([]*string, clusterNodes) // submission addresses; nil while down
	portals := make([]string, clusterNodes)
	for i, d := range nodes {
		up[i], portals[i] = &d.submission, d.portal
	}
	var turn int
	load := &crashLoad{t: t, stop: make(chan struct{}), small: true, pause: 100 * time.Millisecond}
	load.pick = func() *string {
		mu.Lock()
		defer mu.Unlock()
		for range clusterNodes {
			turn = (turn + 1) % clusterNodes
			if up[turn] != nil {
				return up[turn]
			}
		}
		return nil
	}
	load.run(clusterLoad)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	start := time.Now()
	a := nodes[0]
	for k := range clusterKills {
		time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
		mu.Lock()
		up[0] = nil
		mu.Unlock()
		if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		a.cmd.Wait()
		if k == clusterKills-1 {
			break
		}
		a = startDaemonLog(t, cfgPaths[0], filepath.Join(filepath.Dir(cfgPaths[0]), "daemon.log"))
		mu.Lock()
		up[0], portals[0] = &a.submission, a.portal
		mu.Unlock()
	}
	close(load.stop)
	load.wg.Wait()
	// Node A's last start, with no load: it too must see the whole store.
	a = startDaemonLog(t, cfgPaths[0], filepath.Join(filepath.Dir(cfgPaths[0]), "daemon.log"))
	portals[0] = a.portal

	ackedPhones := map[string]bool{} // phone digits
	var replies []string             // the refusals
	for _, m := range load.msgs {
		switch m.outcome {
		case acked:
			ackedPhones[m.phone] = true
		case refused:
			replies = append(replies, m.reply)
		}
	}
	t.Logf("%d kills of node A in %v: %d messages acknowledged, %d refused, %d without an answer",
		clusterKills, time.Since(start).Round(time.Millisecond), len(ackedPhones), len(replies), len(load.msgs)-len(ackedPhones)-len(replies))
	if len(ackedPhones) < clusterKills*clusterLoad {
		t.Fatalf("only %d messages were acknowledged: the load did not run", len(ackedPhones))
	}
	for _, r := range replies {
		if !strings.HasPrefix(r, "SMTP error 4") {
			t.Errorf("a message was refused for good: %s", r)
		}
	}

	// Every acknowledged message is texted. A job that node A held when
	// it was killed waits for its lease (a minute) before another node
	// takes it over.
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	waitTextsSent(t, raw, 3*time.Minute, "the load")
	texts := vonage.sent()
	perPhone := map[string]int{}
	tokens := map[string]string{} // phone → link token
	for _, tx := range texts {
		perPhone[tx.To]++
		if m := linkRE.FindStringSubmatch(tx.Text); m != nil {
			tokens[tx.To] = m[1]
		}
	}
	dups := 0
	for phone := range ackedPhones {
		if perPhone[phone] == 0 {
			t.Errorf("message to %s was acknowledged but never texted", phone)
		}
	}
	for _, n := range perPhone {
		dups += n - 1
	}
	t.Logf("%d texts to %d phones, %d sent twice", len(texts), len(perPhone), dups)
	if dups > clusterKills {
		t.Errorf("%d texts went out twice, more than one per kill (%d)", dups, clusterKills)
	}

	checkClusterRate(t, texts)

	// Every link opens on every node: a sample of them, each on all three.
	phones := make([]string, 0, len(tokens))
	for p := range tokens {
		phones = append(phones, p)
	}
	slices.Sort(phones)
	for i, p := range phones {
		if i%max(1, len(phones)/30) != 0 {
			continue
		}
		for n, portal := range portals {
			resp, err := http.Get("http://" + portal + "/m/" + tokens[p])
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "secure message") {
				t.Errorf("the link to %s on node %c: %d", p, 'A'+n, resp.StatusCode)
			}
		}
	}

	// No sweep ran on two nodes at once, and some ran: each start sweeps.
	cfg, err := LoadConfig(cfgPaths[1])
	if err != nil {
		t.Fatal(err)
	}
	keys, err := store.LoadKeyFile(key)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenWith(context.Background(), cfg.storeOptions(), keys)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runs, err := db.SweepRuns(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) < clusterKills {
		t.Errorf("%d sweeps ran, want at least one per start of node A", len(runs))
	}
	if err := db.VerifySweeps(t.Context()); err != nil {
		t.Errorf("sweeps: %v", err)
	}
	t.Logf("%d sweep runs, none at once on two nodes", len(runs))

	var out strings.Builder
	if err := run([]string{"audit", "verify", "--config", cfgPaths[2]}, nil, &out, &out); err != nil {
		t.Errorf("audit verify: %v\n%s", err, out.String())
	}
}

// checkClusterRate holds the texts to clusterRate a second, measured
// where they arrive: any clusterRate+1 texts in a row span at least a
// second, less a fifth for the jitter of the way there. Nodes that each
// kept the rate on their own would send three times as fast. It also
// checks that the load kept a backlog, so that the rate was reached at
// all and the check means something.
func checkClusterRate(t *testing.T, texts []sentText) {
	t.Helper()
	times := make([]time.Time, len(texts))
	for i, tx := range texts {
		times[i] = tx.At
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	if len(times) <= 2*clusterRate {
		t.Fatalf("only %d texts: too few to measure a rate of %d a second", len(times), clusterRate)
	}
	fastest := time.Duration(1 << 62)
	for i := 0; i+clusterRate < len(times); i++ {
		fastest = min(fastest, times[i+clusterRate].Sub(times[i]))
	}
	t.Logf("the fastest %d texts in a row took %v (sms.rate %d a second, for the cluster)", clusterRate+1, fastest, clusterRate)
	if fastest < 800*time.Millisecond {
		t.Errorf("%d texts in a row went out in %v: faster than sms.rate = %d a second for the cluster", clusterRate+1, fastest, clusterRate)
	}
	if fastest > 1500*time.Millisecond {
		t.Errorf("the fastest %d texts in a row took %v: the load never kept the outbox busy, so the rate was not tested", clusterRate+1, fastest)
	}
}
