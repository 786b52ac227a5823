package notify

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securetextd/securetextd"
)

func addCode(t *testing.T, o *fakeOutbox, to securetextd.Phone, code string) *fakeJob {
	t.Helper()
	payload, err := json.Marshal(securetextd.CodeJob{To: to, Code: code})
	if err != nil {
		t.Fatal(err)
	}
	return o.addJob(securetextd.JobKindCode, payload)
}

// TestWorkerCodes: a one-time code is a text of its own, sent by the text
// worker at the SMS rate between link texts, saying the code and nothing
// of any message.
func TestWorkerCodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o, sms := newFakeOutbox(), &fakeSMS{}
		o.add(t, "+12125550123", "TOKEN1")
		c := addCode(t, o, "+12125550123", "482913")
		o.add(t, "+12125550123", "TOKEN2")
		w := newWorker(o, sms)
		w.Rate = 1
		start := time.Now()
		startWorker(t, w)
		time.Sleep(time.Minute)
		synctest.Wait()

		sent := sms.sends()
		if len(sent) != 3 {
			t.Fatalf("sent %d texts, want 3", len(sent))
		}
		for i, s := range sent {
			if want := start.Add(time.Duration(i) * time.Second); s.at != want {
				t.Errorf("text %d sent at +%v, want +%v: codes keep the SMS rate", i, s.at.Sub(start), want.Sub(start))
			}
		}
		var code string
		for _, s := range sent {
			if strings.Contains(s.text, "482913") {
				code = s.text
			}
		}
		if want := "482913 is your Acme Clinic code to open your secure messages. It works for 10 minutes. Never share it."; code != want {
			t.Errorf("code text = %q, want %q", code, want)
		}
		if state, completed, _ := o.state(c); state != "done" || completed != 1 {
			t.Errorf("code job %s, completed %d times; want done once", state, completed)
		}
	})
}

// TestWorkerCodeStale: a code held up past its validity is not sent.
func TestWorkerCodeStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o, sms := newFakeOutbox(), &fakeSMS{}
		c := addCode(t, o, "+12125550123", "482913")
		c.job.Created = time.Now().Add(-CodeValidFor)
		startWorker(t, newWorker(o, sms))
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(sms.sends()); n != 0 {
			t.Fatalf("sent %d texts, want none", n)
		}
		if state, _, _ := o.state(c); state != "failed" {
			t.Errorf("stale code job %s, want failed", state)
		}
	})
}

// TestCodeTextSegments: the code's text, in every language, with an
// organization name of 40 characters: English fits one GSM-7 segment;
// Spanish needs "código" and "válido", which GSM-7 lacks, so it is UCS-2,
// and takes two segments. The test says what each costs.
func TestCodeTextSegments(t *testing.T) {
	for _, tc := range []struct {
		tag      string
		segments int
		gsm7     bool
	}{{"en", 1, true}, {"es", 2, false}} {
		text := CodeText(tc.tag, strings.Repeat("O", 40), "123456")
		n, gsm := Segments(text)
		t.Logf("%s code text: %s: %q", tc.tag, segmentWords(n, gsm), text)
		if n != tc.segments || gsm != tc.gsm7 {
			t.Errorf("%s %q: %d segments, gsm7 %v; want %d, %v", tc.tag, text, n, gsm, tc.segments, tc.gsm7)
		}
	}
	if got := CodeText("es", "Clínica", "123456"); !strings.HasPrefix(got, "123456 es su código de Clínica") {
		t.Errorf("es: %q", got)
	}
	if got := CodeText("xx", "Clinic", "123456"); !strings.HasPrefix(got, "123456 is your Clinic code") {
		t.Errorf("unknown language: %q", got)
	}
}

// TestConsoleCode: the console provider (make run) prints the code as it
// prints links.
func TestConsoleCode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFakeOutbox()
		var out bytes.Buffer
		addCode(t, o, "+12125550123", "007700")
		startWorker(t, newWorker(o, NewConsole(&out, "Clinic")))
		time.Sleep(time.Minute)
		synctest.Wait()
		var line struct{ To, Text string }
		if err := json.Unmarshal(out.Bytes(), &line); err != nil {
			t.Fatalf("console wrote %q: %v", out.String(), err)
		}
		if line.To != "+12125550123" || !strings.HasPrefix(line.Text, "007700 is your") {
			t.Errorf("console line %+v", line)
		}
	})
}
