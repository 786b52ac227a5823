package notify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dkim"

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

// TestCodeEmail: an email recipient's one-time code goes to the address
// through the relay: from the organization, Auto-Submitted, a Message-ID
// stable across attempts, the code in a text and an HTML part and not in
// the subject, no link, and DKIM-signed with a signature that verifies. A
// code job held up past the code's validity is not sent.
func TestCodeEmail(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	record := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edKey.Public().(ed25519.PublicKey))
	r := startRelay(t, relayOptions{tls: true})
	c := mailConfig()
	c.Relay = r.addr
	c.TLSConfig = tlsFor(r)
	c.Hostname = "gw.clinic.example"
	c.DKIM = &DKIM{Domain: "clinic.example", Selector: "s2", Signer: edKey}
	m, err := NewMailer(c, newMailStore(t, "Your HIV results", "lab-report.pdf"), nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(securetextd.CodeJob{To: "jane@example.net", Code: "482913"})
	job := &securetextd.Job{ID: 7, Kind: securetextd.JobKindEmailCode, Payload: payload, Created: time.Now()}
	if err := m.Send(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	got := r.received()
	if len(got) != 1 || got[0].to != "jane@example.net" || got[0].from != "securetextd@clinic.example" {
		t.Fatalf("relayed %+v", got)
	}
	data := got[0].data
	for _, secret := range []string{"HIV", "lab-report", "/m/"} {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("the code email holds %q", secret)
		}
	}
	mr, err := mail.CreateReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	h := mr.Header
	if s, _ := h.Subject(); s != "Your code for Acme Clinic secure messages" {
		t.Errorf("Subject %q", s)
	}
	if v := h.Get("Auto-Submitted"); v != "auto-generated" {
		t.Errorf("Auto-Submitted %q", v)
	}
	if id, _ := h.MessageID(); id != "code.7@gw.clinic.example" {
		t.Errorf("Message-ID %q", id)
	}
	var types []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := p.Header.(*mail.InlineHeader).ContentType()
		types = append(types, ct)
		b, _ := io.ReadAll(p.Body)
		if !bytes.Contains(b, []byte("482913")) || !bytes.Contains(b, []byte("Acme Clinic")) || !bytes.Contains(b, []byte("10 minutes")) {
			t.Errorf("%s part:\n%s", ct, b)
		}
	}
	if strings.Join(types, ",") != "text/plain,text/html" {
		t.Errorf("parts %v", types)
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(data), &dkim.VerifyOptions{
		LookupTXT: func(string) ([]string, error) { return []string{record}, nil }})
	if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "clinic.example" {
		t.Errorf("signature: %+v, %v", vs, err)
	}

	job.Created = time.Now().Add(-CodeValidFor)
	if err := m.Send(t.Context(), job); !IsPermanent(err) {
		t.Errorf("a code job %v old: %v, want a permanent failure", CodeValidFor, err)
	}
	if n := len(r.received()); n != 1 {
		t.Errorf("%d emails relayed, want the first only", n)
	}
}
