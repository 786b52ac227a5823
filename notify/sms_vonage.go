package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vonage/vonage-go-sdk"

	"github.com/securetextd/securetextd"
)

// VonageConfig configures the Vonage SMS API provider.
type VonageConfig struct {
	APIKey    string // exactly 8 characters, from the Vonage dashboard
	APISecret string
	// From is the sender shown on the phone: a Vonage number, or an
	// alphanumeric sender id where the country allows one.
	From string
	// BaseURL is the API's address, "https://rest.nexmo.com" by default;
	// tests point it at a local server.
	BaseURL string
	// HTTPClient is copied, never changed; nil means a new client.
	HTTPClient *http.Client
	// Timeout bounds each request, 10s by default.
	Timeout time.Duration
}

// Vonage sends texts through Vonage's SMS API, with vonage-go-sdk.
//
// The SDK has three traps that Vonage hides: it reports an API refusal
// with a nil error and a status in the response, it panics when the
// response lists no messages, and it sends every request on
// context.Background. SendSMS guards against all three.
type Vonage struct {
	auth    vonage.Auth
	from    string
	base    string // the SDK's BasePath: BaseURL + "/sms"
	client  http.Client
	timeout time.Duration
}

var _ SMSProvider = (*Vonage)(nil)

// NewVonage checks c and returns a provider. It makes no request.
func NewVonage(c VonageConfig) (*Vonage, error) {
	if len(c.APIKey) != 8 {
		return nil, fmt.Errorf("vonage: api key must be 8 characters, not %d", len(c.APIKey))
	}
	if c.APISecret == "" {
		return nil, errors.New("vonage: api secret is empty")
	}
	if c.From == "" {
		return nil, errors.New("vonage: from is empty: set a Vonage number or sender id")
	}
	if c.BaseURL == "" {
		c.BaseURL = "https://rest.nexmo.com"
	}
	if !strings.HasPrefix(c.BaseURL, "https://") && !strings.HasPrefix(c.BaseURL, "http://") {
		return nil, fmt.Errorf("vonage: base url %q is not an http(s) URL", c.BaseURL)
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	v := &Vonage{
		auth:    vonage.CreateAuthFromKeySecret(c.APIKey, c.APISecret),
		from:    c.From,
		base:    strings.TrimSuffix(c.BaseURL, "/") + "/sms",
		timeout: c.Timeout,
	}
	if c.HTTPClient != nil {
		v.client = *c.HTTPClient
	}
	v.client.Timeout = c.Timeout
	return v, nil
}

// Vonage status codes that may succeed when tried again
// (https://developer.vonage.com/messaging/sms/guides/troubleshooting-sms).
// Every other non-zero status is a permanent refusal.
const (
	vonageThrottled = "1"
	vonageInternal  = "5"
)

// SendSMS sends text to the phone and returns nil once Vonage has accepted
// it. Refusals (bad number, bad credentials, HTTP 4xx) are *PermanentError;
// throttling, Vonage's internal errors, HTTP 5xx, timeouts and network
// errors are temporary. Errors quote Vonage's status and error text, never
// the text sent.
func (v *Vonage) SendSMS(ctx context.Context, to securetextd.Phone, text string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The SDK keeps its settings in the client, so each send gets its own:
	// that makes SendSMS safe to call concurrently and lets the transport
	// carry this call's ctx and observe its HTTP status.
	tr := &vonageTransport{ctx: ctx, base: v.client.Transport}
	if tr.base == nil {
		tr.base = http.DefaultTransport
	}
	hc := v.client
	hc.Transport = tr
	c := vonage.NewSMSClient(v.auth)
	c.Config.BasePath = v.base
	c.Config.HTTPClient = &hc

	resp, errResp, err := vonageSend(c, v.from, to.Digits(), text)
	switch {
	case err != nil && !tr.called:
		// The SDK refused the input before any request: wrong length of
		// number, or of key. Sending again would change nothing.
		return &PermanentError{Reason: fmt.Sprintf("vonage: %v", err)}
	case err != nil && tr.status >= 400 && tr.status < 500 &&
		tr.status != http.StatusTooManyRequests && tr.status != http.StatusRequestTimeout:
		return &PermanentError{Reason: fmt.Sprintf("vonage: refused with HTTP %v", err)}
	case err != nil && tr.status >= 300:
		return fmt.Errorf("vonage: HTTP %w", err)
	case err != nil:
		return fmt.Errorf("vonage: %w", err)
	case len(resp.Messages) == 0:
		return errors.New("vonage: provider answered with no messages")
	}
	for i, m := range resp.Messages {
		if m.Status == "0" {
			continue
		}
		reason := fmt.Sprintf("vonage: status %s", m.Status)
		if i < len(errResp.Messages) && errResp.Messages[i].ErrorText != "" {
			reason += ": " + errResp.Messages[i].ErrorText
		}
		if m.Status == vonageThrottled || m.Status == vonageInternal {
			return errors.New(reason)
		}
		return &PermanentError{Reason: reason}
	}
	return nil
}

// vonageSend calls the SDK, turning its panic on a response without
// messages into an error.
func vonageSend(c *vonage.SMSClient, from, to, text string) (resp vonage.Sms, errResp vonage.SmsErrorResponse, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("vonage: provider answered with no messages (sdk panic: %v)", r)
		}
	}()
	return c.Send(from, to, text, vonage.SMSOpts{})
}

// vonageTransport gives the SDK's request the caller's context (the SDK
// builds it on context.Background), and notes whether a request was made
// and the HTTP status of its answer, which the SDK's error hides.
type vonageTransport struct {
	ctx    context.Context
	base   http.RoundTripper
	called bool
	status int
}

func (t *vonageTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.called = true
	// Cancelled by the caller's ctx, and by the request's own, which
	// carries the http.Client's timeout. SendSMS cancels it on return,
	// after the SDK has read the body.
	ctx, cancel := context.WithCancel(t.ctx)
	context.AfterFunc(req.Context(), cancel)
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	t.status = resp.StatusCode
	return resp, nil
}
