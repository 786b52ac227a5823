package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// latencySamples is how many messages the end-to-end measurement sends.
const latencySamples = 300

// portalProfile names the profile of the gateway serving the conversation
// page, which the report's reasoning quotes.
const portalProfile = "portal conversation page under wrk, 50 connections"

// wrkRun is one wrk run.
type wrkRun struct {
	rps      float64
	p99ms    float64
	p50ms    float64
	requests int
	cpuMs    float64 // the gateway's CPU time per request
	syncs    float64 // the gateway's fsyncs per request
	errs     string  // wrk's non-2xx or socket error line, if any
}

type portalResult struct {
	attachment int // bytes
	runs       map[string][]wrkRun
	order      []string
	// conversation is the conversation page's URL, header the cookie.
	conversation, header string
}

type latencyResult struct {
	ms []float64 // one per message, from the 250 to the text's arrival
}

// runPortal starts a fresh gateway whose outbox is idle and whose texts go
// out at once (sms.rate = 1000), measures the end-to-end latency, then
// signs a recipient in through the portal's own forms and loads the
// conversation page and the attachment download with wrk.
func runPortal(rep *report, work string, vonage *fakeVonage) {
	gw := startGateway(rep.bin, work, "securetextd-portal", vonage.url, 1000)
	defer gw.stop()
	vonage.drain()

	if rep.opts.phases["latency"] {
		rep.latency = measureLatency(gw, vonage)
	}
	if rep.opts.phases["portal"] {
		rep.portal = measurePortal(rep.opts.rounds, gw, vonage)
		if rep.tools.perf && rep.opts.phases["profile"] {
			u, header := rep.portal.conversation, rep.portal.header
			p := perfDuring(work, gw.pid(), func() { runWrk(u, header) })
			p.name, p.figure = portalProfile, "see the portal's table"
			logf("profile %s: %d samples", p.name, p.samples)
			rep.profiles = append(rep.profiles, p)
		}
	}
}

func measureLatency(gw *gateway, vonage *fakeVonage) *latencyResult {
	c, err := dial(gw.peer, 0)
	if err != nil {
		fatalf("latency: %v", err)
	}
	defer c.quit()
	msg := message(1024)
	res := &latencyResult{}
	for i := range latencySamples + 20 {
		// To phones of their own: under conversations.continue's default
		// they would otherwise all join the conversation whose page the
		// portal measurement then serves.
		if err := c.send(benchUser, patientTo(i), msg); err != nil {
			fatalf("latency: %v", err)
		}
		accepted := time.Now()
		t, err := vonage.next(10 * time.Second)
		if err != nil {
			fatalf("latency: message %d: %v", i, err)
		}
		if i >= 20 { // the first ones warm up connections and caches
			res.ms = append(res.ms, float64(t.at.Sub(accepted).Microseconds())/1000)
		}
		time.Sleep(20 * time.Millisecond) // the outbox idle again
	}
	logf("latency: median %.2f ms, p99 %.2f ms", median(res.ms), percentile(res.ms, 99))
	return res
}

var (
	linkRE = regexp.MustCompile(`/m/([A-Za-z0-9_-]+)`)
	partRE = regexp.MustCompile(`href="(/c/\d+/m/\d+/p/\d+)"[^>]*download`)
)

func measurePortal(rounds int, gw *gateway, vonage *fakeVonage) *portalResult {
	const attachment = 256 << 10
	vonage.drain()
	c, err := dial(gw.peer, 0)
	if err != nil {
		fatalf("portal: %v", err)
	}
	if err := c.send(benchUser, benchTo, message(attachment*78/57+1500)); err != nil {
		fatalf("portal: %v", err)
	}
	c.quit()
	t, err := vonage.next(10 * time.Second)
	if err != nil {
		fatalf("portal: %v", err)
	}
	m := linkRE.FindStringSubmatch(t.body)
	if m == nil {
		fatalf("portal: no link in the text %q", t.body)
	}
	base := "http://" + gw.portal
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// The recipient's first visit: the setup form sets a password and
	// signs the browser in.
	form := url.Values{"password": {"a long bench passphrase"}, "confirm": {"a long bench passphrase"}, "email": {"ana@example.org"}}
	resp, err := hc.PostForm(base+"/m/"+m[1]+"/setup", form)
	if err != nil {
		fatalf("portal setup: %v", err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if strings.Contains(ck.Name, "session") {
			cookie = ck
		}
	}
	conv := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || cookie == nil || !strings.HasPrefix(conv, "/c/") {
		fatalf("portal setup: %s, Location %q, cookies %v", resp.Status, conv, resp.Cookies())
	}
	req, _ := http.NewRequest("GET", base+conv, nil)
	req.AddCookie(cookie)
	resp, err = hc.Do(req)
	if err != nil {
		fatalf("portal: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	pm := partRE.FindSubmatch(page)
	if resp.StatusCode != 200 || pm == nil {
		fatalf("portal: conversation page %s without a download link:\n%s", resp.Status, page)
	}
	header := "Cookie: " + cookie.Name + "=" + cookie.Value
	res := &portalResult{attachment: attachment, runs: map[string][]wrkRun{}, conversation: base + conv, header: header}
	targets := []struct{ name, path string }{
		{"conversation page", conv},
		{fmt.Sprintf("attachment download (%d KiB)", attachment>>10), string(pm[1])},
		{"stylesheet (reference: the HTTP stack alone)", "/static/style.css"},
	}
	for _, tg := range targets {
		res.order = append(res.order, tg.name)
	}
	variant := "conversation page, gateway with " + gogcVariant
	res.order = append(res.order, variant)
	// measure loads path with wrk and records the run under name.
	measure := func(round int, name, path string) {
		cpu0 := procCPU(gw.pid())
		var w wrkRun
		syncs := syncsDuring(gw.pid(), func() { w = runWrk(base+path, header) })
		if w.requests > 0 {
			w.cpuMs = float64((procCPU(gw.pid()) - cpu0).Microseconds()) / 1000 / float64(w.requests)
		}
		w.syncs = perEach(syncs, w.requests)
		res.runs[name] = append(res.runs[name], w)
		logf("portal round %d %-45s %8.0f req/s p99 %6.2f ms, %.3f ms CPU/req, %.2f fsyncs/req %s", round, name, w.rps, w.p99ms, w.cpuMs, w.syncs, w.errs)
	}
	for r := range rounds {
		for _, tg := range targets {
			measure(r+1, tg.name, tg.path)
			time.Sleep(300 * time.Millisecond)
		}
		// The page again, from a gateway whose heap may grow larger.
		gw.restart(gogcVariant)
		warmUp(base+conv, header)
		measure(r+1, variant, conv)
		gw.restart()
		warmUp(base+conv, header)
		time.Sleep(300 * time.Millisecond)
	}
	return res
}

// warmUp loads u for a second, unmeasured, so that a freshly started
// gateway has its caches and connections warm before it is measured.
func warmUp(u, header string) {
	exec.Command("wrk", "-t2", "-c50", "-d1s", "-H", header, u).Run()
}

// runWrk loads url for 4 s with 50 connections on 2 threads.
func runWrk(u, header string) wrkRun {
	out, err := exec.Command("wrk", "-t2", "-c50", "-d4s", "--latency", "-H", header, u).CombinedOutput()
	if err != nil {
		fatalf("wrk: %v\n%s", err, out)
	}
	var w wrkRun
	inDist := false
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[1] == "requests":
			w.requests, _ = strconv.Atoi(f[0])
		case len(f) == 2 && f[0] == "Requests/sec:":
			w.rps, _ = strconv.ParseFloat(f[1], 64)
		case strings.HasPrefix(strings.TrimSpace(line), "Latency Distribution"):
			inDist = true
		case inDist && len(f) == 2 && f[0] == "99%":
			w.p99ms = wrkDuration(f[1])
		case inDist && len(f) == 2 && f[0] == "50%":
			w.p50ms = wrkDuration(f[1])
		case strings.Contains(line, "Non-2xx") || strings.Contains(line, "Socket errors"):
			w.errs = strings.TrimSpace(line)
		}
	}
	if w.rps == 0 {
		fatalf("wrk: no Requests/sec in\n%s", out)
	}
	return w
}

// wrkDuration reads wrk's "12.34ms", "850.00us", "1.02s" as milliseconds.
func wrkDuration(s string) float64 {
	for _, u := range []struct {
		suffix string
		ms     float64
	}{{"us", 0.001}, {"ms", 1}, {"m", 60000}, {"s", 1000}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f * u.ms
		}
	}
	return 0
}
