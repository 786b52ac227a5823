package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// largeSize is one message just under the gateway's default 100 MiB limit.
const largeSize = 100<<20 - 64<<10

// largeRun is one 100 MiB message sent to one server.
type largeRun struct {
	seconds float64 // MAIL FROM to the 250 after the data
	peakKiB int64   // VmHWM of the server during the run; 0 when not read
	idleKiB int64   // VmRSS before the run
}

type largeResult struct {
	runs map[string][]largeRun
	// order lists the names in the order of the report.
	order []string
}

// runLarge sends the same 100 MiB message (a base64 attachment, from a
// file) to the gateway and to each peer, round after round, and runs the
// ceiling program on the same bytes.
func runLarge(work string, rounds int, gw *gateway, peers []*peer, between func(*peer)) *largeResult {
	path := filepath.Join(work, "large.eml")
	messageFile(path, largeSize)
	defer os.Remove(path)
	res := &largeResult{runs: map[string][]largeRun{}}
	variant := gw.peer.name + ", " + gogcVariant
	res.order = []string{gw.peer.name, variant, "age + SQLite ceiling"}
	for _, p := range peers {
		res.order = append(res.order, p.name)
	}
	for r := range rounds {
		// The gateway, as a fresh process: its peak RSS is the whole
		// process's, start-up included, as an operator would see it.
		gw.restart()
		idle, _ := procStatus(gw.pid(), "VmRSS")
		secs := sendFile(gw.peer, path)
		peak, _ := procStatus(gw.pid(), "VmHWM")
		res.runs[gw.peer.name] = append(res.runs[gw.peer.name], largeRun{seconds: secs, peakKiB: peak, idleKiB: idle})
		logf("large round %d securetextd %.2f s, peak RSS %.1f MiB (%.1f MiB before)", r+1, secs, float64(peak)/1024, float64(idle)/1024)
		between(gw.peer)

		// The same with a larger heap allowed: what it costs in memory.
		gw.restart(gogcVariant)
		idle, _ = procStatus(gw.pid(), "VmRSS")
		secs = sendFile(gw.peer, path)
		peak, _ = procStatus(gw.pid(), "VmHWM")
		res.runs[variant] = append(res.runs[variant], largeRun{seconds: secs, peakKiB: peak, idleKiB: idle})
		logf("large round %d %s %.2f s, peak RSS %.1f MiB (%.1f MiB before)", r+1, variant, secs, float64(peak)/1024, float64(idle)/1024)
		between(gw.peer)

		c := runCeilingProc(work, path)
		res.runs["age + SQLite ceiling"] = append(res.runs["age + SQLite ceiling"], largeRun{seconds: c.Seconds, peakKiB: c.PeakKiB})
		logf("large round %d ceiling %.2f s, peak RSS %.1f MiB", r+1, c.Seconds, float64(c.PeakKiB)/1024)
		time.Sleep(300 * time.Millisecond)

		for _, p := range peers {
			var peak, idle int64
			if !p.tree {
				resetPeakRSS(p.root)
				idle, _ = procStatus(p.root, "VmRSS")
			}
			secs := sendFile(p, path)
			if !p.tree {
				peak, _ = procStatus(p.root, "VmHWM")
			}
			res.runs[p.name] = append(res.runs[p.name], largeRun{seconds: secs, peakKiB: peak, idleKiB: idle})
			logf("large round %d %s %.2f s, peak RSS %.1f MiB", r+1, p.name, secs, float64(peak)/1024)
			between(p)
		}
	}
	return res
}

// sendFile sends the message in path over a new connection and returns the
// time from MAIL FROM to the 250 after the data.
func sendFile(p *peer, path string) float64 {
	c, err := dial(p, 0)
	if err != nil {
		fatalf("%s: %v", p.name, err)
	}
	defer c.quit()
	start := time.Now()
	err = c.sendFrom(benchUser, benchTo, func(w io.Writer) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, bufio.NewReaderSize(f, 1<<20))
		return err
	})
	if err != nil {
		fatalf("%s: 100 MiB message: %v", p.name, err)
	}
	return time.Since(start).Seconds()
}

func runCeilingProc(work, msgPath string) ceilingResult {
	self, err := os.Executable()
	if err != nil {
		fatalf("%v", err)
	}
	db := filepath.Join(work, "ceiling.db")
	defer func() {
		for _, s := range []string{"", "-wal", "-shm"} {
			os.Remove(db + s)
		}
	}()
	out, err := exec.Command(self, "ceiling", msgPath, db).Output()
	if err != nil {
		fatalf("ceiling: %v", err)
	}
	var c ceilingResult
	if err := json.Unmarshal(out, &c); err != nil {
		fatalf("ceiling: %v: %s", err, out)
	}
	return c
}

// runLargeGateway sends the 100 MiB message to gateway g alone, round
// after round, each to a fresh process: the time and the whole process's
// peak RSS, as runLarge measures the SQLite gateway's.
func runLargeGateway(work string, rounds int, g *gateway, between func(*peer)) []largeRun {
	path := filepath.Join(work, "large.eml")
	messageFile(path, largeSize)
	defer os.Remove(path)
	var runs []largeRun
	for r := range rounds {
		g.restart()
		idle, _ := procStatus(g.pid(), "VmRSS")
		secs := sendFile(g.peer, path)
		peak, _ := procStatus(g.pid(), "VmHWM")
		runs = append(runs, largeRun{seconds: secs, peakKiB: peak, idleKiB: idle})
		logf("large round %d %s %.2f s, peak RSS %.1f MiB (%.1f MiB before)", r+1, g.peer.name, secs, float64(peak)/1024, float64(idle)/1024)
		between(g.peer)
	}
	return runs
}
