package notify

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"

	"github.com/securetextd/securetextd"
)

// readMail parses a relayed email into its header and its parts' text by
// media type.
func readMail(t *testing.T, data []byte) (mail.Header, map[string]string) {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]string{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := p.Header.(*mail.InlineHeader).ContentType()
		b, _ := io.ReadAll(p.Body)
		parts[ct] = string(b)
	}
	return mr.Header, parts
}

// TestPatientEmailsInSpanish: the reset, the confirmation and the notice
// email are in the job's language: subject, sender's name, text and HTML
// parts, with Content-Language; a job without a language is in the
// default one (MailConfig.DefaultLanguage).
func TestPatientEmailsInSpanish(t *testing.T) {
	r := startRelay(t, relayOptions{tls: true})
	st := newMailStore(t, "Resultados", "informe.pdf")
	st.conv.Phone = "jane@example.net"
	c := mailConfig()
	c.Relay, c.TLSConfig = r.addr, tlsFor(r)
	m, err := NewMailer(c, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	job := func(kind string, v any) *securetextd.Job {
		p, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return &securetextd.Job{ID: 9, Kind: kind, Payload: p}
	}
	for _, j := range []*securetextd.Job{
		job(securetextd.JobKindReset, securetextd.MailJob{To: "ana@example.org", Phone: "+12125550123", Token: "T1", Language: "es"}),
		job(securetextd.JobKindConfirm, securetextd.MailJob{To: "ana@example.org", Phone: "+12125550123", Token: "T2", Language: "es"}),
		job(securetextd.JobKindEmail, securetextd.TextJob{To: "jane@example.net", Token: "T3", ConversationID: 42, MessageID: 1, Language: "es"}),
	} {
		if err := m.Send(t.Context(), j); err != nil {
			t.Fatalf("%s: %v", j.Kind, err)
		}
	}
	got := r.received()
	if len(got) != 3 {
		t.Fatalf("relayed %d", len(got))
	}
	for i, want := range []struct {
		subject string
		body    []string
	}{
		{"Restablezca su contraseña de los mensajes seguros de Acme Clinic",
			[]string{"Alguien pidió restablecer la contraseña de los mensajes seguros de +1212*****23 de Acme Clinic.", "en un plazo de 30 minutos", "/reset/T1", "Si usted no lo pidió, no haga caso de este correo."}},
		{"Confirme su correo electrónico para los mensajes seguros de Acme Clinic",
			[]string{"correo de recuperación para los mensajes seguros de +1212*****23", "en un plazo de 7 días", "/confirm/T2", "pulse Confirmar"}},
		{"Tiene un mensaje seguro de Acme Clinic",
			[]string{"Dr. Ann Smith (dr.smith@clinic.example) le envió un mensaje seguro a través de Acme Clinic.", "abra este enlace:", "/m/T3", "el portal seguro de Acme Clinic"}},
	} {
		h, parts := readMail(t, got[i].data)
		if s, _ := h.Subject(); s != want.subject {
			t.Errorf("mail %d: subject %q, want %q", i, s, want.subject)
		}
		if from, _ := h.AddressList("From"); len(from) != 1 || from[0].Name != "Mensajes seguros de Acme Clinic" {
			t.Errorf("mail %d: From %v", i, from)
		}
		if l := h.Get("Content-Language"); l != "es" {
			t.Errorf("mail %d: Content-Language %q", i, l)
		}
		for ct, text := range parts {
			for _, w := range want.body {
				if !strings.Contains(text, w) {
					t.Errorf("mail %d, %s: lacks %q:\n%s", i, ct, w, text)
				}
			}
		}
		if i == 2 {
			if !strings.Contains(parts["text/html"], `<html lang="es">`) || !strings.Contains(parts["text/html"], "Leer el mensaje") {
				t.Errorf("notice's HTML: %s", parts["text/html"])
			}
		}
	}

	// No language in the job: the default, here Spanish.
	c.DefaultLanguage = "es"
	m, _ = NewMailer(c, st, nil)
	if err := m.Send(t.Context(), resetJob(t, "ana@example.org", "T4")); err != nil {
		t.Fatal(err)
	}
	got = r.received()
	if h, _ := readMail(t, got[len(got)-1].data); h.Get("Content-Language") != "es" {
		t.Errorf("default language: Content-Language %q", h.Get("Content-Language"))
	}
}
