package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
)

// apiCall makes one request to the gateway's REST API and returns the
// status, the headers and the body.
func apiCall(t *testing.T, method, url, key, contentType string, body io.Reader, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// wantProblem checks that a response is an RFC 9457 problem document of
// the given status and type.
func wantProblem(t *testing.T, what string, status int, h http.Header, body []byte, wantStatus int, typ string) {
	t.Helper()
	if status != wantStatus || h.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%s: %d %s, want %d problem+json: %s", what, status, h.Get("Content-Type"), wantStatus, body)
	}
	var p struct {
		Type   string
		Title  string
		Status int
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Type != "urn:securetextd:problem:"+typ || p.Status != wantStatus || p.Title == "" {
		t.Fatalf("%s: problem %s (%v)", what, body, err)
	}
}

type apiMessage struct {
	ID         int64
	Recipients []struct {
		To             string
		ConversationID int64 `json:"conversation_id"`
		State          string
		Events         []struct{ Type string }
	}
}

// TestAPI sends messages through the REST API as an integrator would: they
// are texted through (the fake) Vonage and open on the portal like mail;
// a retry with the same Idempotency-Key sends nothing twice; missing,
// wrong and revoked keys get 401 problem documents; an oversize body gets
// 413. Then /metrics shows the traffic.
func TestAPI(t *testing.T) {
	vonage := newFakeVonage(t)
	cfg := testConfig(t, t.TempDir(), vonage.URL)
	cfg.API.MaxJSONBytes = 64 << 10
	m := startMain(t, cfg)
	ctx := t.Context()
	if err := m.db.CreateSender(ctx, "dr.who@clinic.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	key, _, err := m.db.CreateAPIKey(ctx, "dr.who@clinic.example", "test")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + m.PortalAddr + "/api/v1"

	pdf := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("results "), 2000)...)
	body := fmt.Sprintf(`{"to": ["212-555-0123"], "subject": "Your results", "text": "All normal.",
		"attachments": [{"filename": "results.pdf", "content": %q}]}`, base64.StdEncoding.EncodeToString(pdf))
	// A cross-site POST without cookies is the API's normal case: the
	// portal's cross-origin check must not stand in its way.
	status, h, resp := apiCall(t, "POST", base+"/messages", key, "application/json", strings.NewReader(body),
		"Idempotency-Key", "8e1c6f2a-retry-1", "Origin", "https://ehr.example", "Sec-Fetch-Site", "cross-site")
	if status != http.StatusCreated {
		t.Fatalf("send: %d %s", status, resp)
	}
	var sent apiMessage
	if err := json.Unmarshal(resp, &sent); err != nil || sent.ID == 0 || len(sent.Recipients) != 1 ||
		sent.Recipients[0].To != "+12125550123" || sent.Recipients[0].State != "queued" || sent.Recipients[0].ConversationID == 0 {
		t.Fatalf("send answered %s (%v)", resp, err)
	}
	if h.Get("Location") != fmt.Sprintf("/api/v1/messages/%d", sent.ID) {
		t.Errorf("Location = %q", h.Get("Location"))
	}

	// The text goes out like one for mail, and its link opens the portal.
	texts := vonage.waitTexts(t, 1, 10*time.Second)
	if len(texts) != 1 || texts[0].To != "12125550123" {
		t.Fatalf("texts: %+v", texts)
	}
	match := linkRE.FindStringSubmatch(texts[0].Text)
	if match == nil {
		t.Fatalf("no link in %q", texts[0].Text)
	}
	if page := get(t, http.DefaultClient, "http://"+m.PortalAddr+"/m/"+match[1], http.StatusOK); !strings.Contains(page, "secure message") {
		t.Errorf("link page: %s", page)
	}
	msg, err := m.db.Message(ctx, sent.ID)
	if err != nil || msg.Subject != "Your results" || len(msg.Parts) != 2 || msg.Parts[1].Filename != "results.pdf" ||
		msg.Parts[1].ContentType != "application/pdf" || msg.Parts[1].Size != int64(len(pdf)) {
		t.Fatalf("stored message: %+v %v", msg, err)
	}

	// A retry with the same key and body: the same answer, nothing new.
	status, h, again := apiCall(t, "POST", base+"/messages", key, "application/json", strings.NewReader(body),
		"Idempotency-Key", "8e1c6f2a-retry-1")
	if status != http.StatusCreated || h.Get("Idempotent-Replayed") != "true" || !bytes.Equal(bytes.TrimSpace(again), bytes.TrimSpace(resp)) {
		t.Fatalf("retry: %d %q %s", status, h.Get("Idempotent-Replayed"), again)
	}
	// The same key with another message is refused.
	status, h, again = apiCall(t, "POST", base+"/messages", key, "application/json",
		strings.NewReader(`{"to": ["2125550123"], "text": "Something else."}`), "Idempotency-Key", "8e1c6f2a-retry-1")
	wantProblem(t, "reused key", status, h, again, http.StatusUnprocessableEntity, "idempotency-key-reused")
	time.Sleep(300 * time.Millisecond) // a second text would show now
	if n, _ := m.db.CountMessages(ctx); n != 1 || len(vonage.sent()) != 1 {
		t.Fatalf("after retries: %d messages, %d texts", n, len(vonage.sent()))
	}

	// Keys: missing, wrong, revoked.
	status, h, resp = apiCall(t, "POST", base+"/messages", "", "application/json", strings.NewReader(body))
	wantProblem(t, "no key", status, h, resp, http.StatusUnauthorized, "unauthorized")
	if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("WWW-Authenticate = %q", h.Get("WWW-Authenticate"))
	}
	wrong := key[:len(key)-1] + "A"
	if wrong == key {
		wrong = key[:len(key)-1] + "B"
	}
	status, h, resp = apiCall(t, "GET", fmt.Sprintf("%s/messages/%d", base, sent.ID), wrong, "", nil)
	wantProblem(t, "wrong key", status, h, resp, http.StatusUnauthorized, "unauthorized")
	other, k2, err := m.db.CreateAPIKey(ctx, "dr.who@clinic.example", "revoked")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.db.RevokeAPIKey(ctx, k2.ID); err != nil {
		t.Fatal(err)
	}
	status, h, resp = apiCall(t, "GET", fmt.Sprintf("%s/messages/%d", base, sent.ID), other, "", nil)
	wantProblem(t, "revoked key", status, h, resp, http.StatusUnauthorized, "unauthorized")

	// Too large: refused from Content-Length, before it is read.
	huge := `{"to": ["2125550123"], "text": "` + strings.Repeat("x", 100<<10) + `"}`
	status, h, resp = apiCall(t, "POST", base+"/messages", key, "application/json", strings.NewReader(huge))
	wantProblem(t, "oversize", status, h, resp, http.StatusRequestEntityTooLarge, "too-large")
	// Invalid numbers are named, field by field.
	status, h, resp = apiCall(t, "POST", base+"/messages", key, "application/json",
		strings.NewReader(`{"to": ["2125550123", "not a number"], "text": "x"}`))
	wantProblem(t, "bad number", status, h, resp, http.StatusUnprocessableEntity, "invalid-request")
	if !strings.Contains(string(resp), `"field":"to[1]"`) {
		t.Errorf("bad number: %s", resp)
	}

	// A large file as multipart/form-data, streamed.
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	mw.WriteField("to", "2025550143, 12014367789")
	mw.WriteField("subject", "Scan")
	fw, _ := mw.CreateFormFile("files", "scan.bin")
	fw.Write(bytes.Repeat([]byte{0xA5, 0x5A, 0x00, 0xFF}, 300<<10)) // 1.2 MB
	mw.Close()
	status, _, resp = apiCall(t, "POST", base+"/messages", key, mw.FormDataContentType(), &form)
	var multi apiMessage
	if status != http.StatusCreated || json.Unmarshal(resp, &multi) != nil || len(multi.Recipients) != 2 {
		t.Fatalf("multipart: %d %s", status, resp)
	}
	vonage.waitTexts(t, 3, 10*time.Second)

	// The report: each recipient's text was sent; another sender's
	// message, or none, is 404.
	deadline := time.Now().Add(10 * time.Second)
	var report apiMessage
	for {
		status, _, resp = apiCall(t, "GET", fmt.Sprintf("%s/messages/%d", base, multi.ID), key, "", nil)
		if status != http.StatusOK || json.Unmarshal(resp, &report) != nil {
			t.Fatalf("report: %d %s", status, resp)
		}
		if report.Recipients[0].State == "sent" && report.Recipients[1].State == "sent" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if report.Recipients[0].State != "sent" || report.Recipients[1].State != "sent" {
		t.Errorf("report: %s", resp)
	}
	status, h, resp = apiCall(t, "GET", base+"/messages/999999", key, "", nil)
	wantProblem(t, "unknown message", status, h, resp, http.StatusNotFound, "not-found")
	status, h, resp = apiCall(t, "GET", base+"/messages", key, "", nil)
	wantProblem(t, "wrong method", status, h, resp, http.StatusMethodNotAllowed, "method-not-allowed")

	// Revoke one of its conversations.
	status, _, resp = apiCall(t, "POST", fmt.Sprintf("%s/conversations/%d/revoke", base, multi.Recipients[0].ConversationID), key, "", nil)
	if status != http.StatusOK || !strings.Contains(string(resp), `"revoked"`) {
		t.Errorf("revoke: %d %s", status, resp)
	}

	// One message by mail too, for the SMTP metrics.
	if err := send(t, m.SubmissionAddr, tlsConfigFor(t, cfg), sasl.NewPlainClient("", "dr.who@clinic.example", "correct horse battery"),
		"dr.who@clinic.example", []string{"2125550123@secure.text"}, "From: dr.who@clinic.example\r\nSubject: x\r\n\r\nHello.\r\n"); err != nil {
		t.Fatal(err)
	}
	vonage.waitTexts(t, 4, 10*time.Second)

	// The counters moved. (A text is counted once its outcome is
	// recorded, just after the fake Vonage saw it.)
	var metrics string
	for deadline := time.Now().Add(10 * time.Second); ; {
		metrics = get(t, http.DefaultClient, "http://"+m.PortalAddr+"/metrics", http.StatusOK)
		if strings.Contains(metrics, `securetextd_outbox_jobs_total{kind="text",outcome="sent"} 4`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{
		`securetextd_messages_accepted_total{source="api"} 2`,
		`securetextd_messages_accepted_total{source="submission"} 1`,
		`securetextd_messages_refused_total{reason="invalid",source="api"}`,
		`securetextd_messages_refused_total{reason="too_large",source="api"} 1`,
		`securetextd_outbox_jobs_total{kind="text",outcome="sent"} 4`,
		`securetextd_smtp_sessions_total{listener="submission"} 1`,
		`securetextd_http_request_duration_seconds_count{code="201",route="POST /api/v1/messages"} 3`,
		`securetextd_http_request_duration_seconds_count{code="200",route="GET /m/{token}"} 1`,
		`securetextd_outbox_depth{kind="text"}`,
		`securetextd_outbox_oldest_job_age_seconds`,
		`securetextd_store_write_transactions_total`,
		`securetextd_store_write_lock_seconds_total`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, match[1]) {
		t.Error("/metrics shows a link token")
	}
	if ready := get(t, http.DefaultClient, "http://"+m.PortalAddr+"/readyz", http.StatusOK); !strings.Contains(ready, "ok   database writable") {
		t.Errorf("/readyz: %s", ready)
	}
	get(t, http.DefaultClient, "http://"+m.PortalAddr+"/healthz", http.StatusOK)
}
