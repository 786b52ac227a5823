package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
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
	// Callback, when set, is the URL Vonage posts each text's delivery
	// receipts to (the portal's /hooks/vonage/dlr), asked for per text so
	// that the dashboard need not be set up. Vonage must be able to reach
	// it: leave it empty for a portal on loopback.
	Callback string
}

// Vonage sends texts through Vonage's SMS API, with vonage-go-sdk.
//
// The SDK has three traps that Vonage hides: it reports an API refusal
// with a nil error and a status in the response, it panics when the
// response lists no messages, and it sends every request on
// context.Background. SendSMS guards against all three.
type Vonage struct {
	auth     vonage.Auth
	from     string
	base     string // the SDK's BasePath: BaseURL + "/sms"
	client   http.Client
	timeout  time.Duration
	callback string
}

var (
	_ SMSProvider         = (*Vonage)(nil)
	_ TrackingSMSProvider = (*Vonage)(nil)
)

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

		callback: c.Callback,
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
// throttling (HTTP 429, or status 1 in the answer) is a *ThrottledError
// that carries the answer's Retry-After; Vonage's internal errors, HTTP
// 5xx, timeouts and network errors are temporary. Errors quote Vonage's
// status and error text, never the text sent.
func (v *Vonage) SendSMS(ctx context.Context, to securetextd.Phone, text string) error {
	_, err := v.SendTrackedSMS(ctx, to, text, "")
	return err
}

// SendTrackedSMS is SendSMS that also returns Vonage's message ids of the
// text (one per segment), which its delivery receipts quote as messageId,
// and passes ref as the client-ref that they echo (at most 40 characters;
// "" for none). It asks for delivery receipts at VonageConfig.Callback
// when one is set.
func (v *Vonage) SendTrackedSMS(ctx context.Context, to securetextd.Phone, text, ref string) ([]string, error) {
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

	opts := vonage.SMSOpts{ClientRef: ref}
	if v.callback != "" {
		opts.StatusReportReq, opts.Callback = true, v.callback
	}
	resp, errResp, err := vonageSend(c, v.from, to.Digits(), text, opts)
	return vonageOutcome(resp, errResp, err, tr)
}

// vonageOutcome reads what the SDK returned: the message ids of a text
// Vonage took, or the error to report.
func vonageOutcome(resp vonage.Sms, errResp vonage.SmsErrorResponse, err error, tr *vonageTransport) ([]string, error) {
	switch {
	case err != nil && !tr.called:
		// The SDK refused the input before any request: wrong length of
		// number, or of key. Sending again would change nothing.
		return nil, &PermanentError{Reason: fmt.Sprintf("vonage: %v", err)}
	case err != nil && tr.status == http.StatusTooManyRequests:
		return nil, &ThrottledError{Reason: fmt.Sprintf("vonage: throttled: HTTP %v", err), After: tr.retryAfter}
	case err != nil && tr.status >= 400 && tr.status < 500 &&
		tr.status != http.StatusTooManyRequests && tr.status != http.StatusRequestTimeout:
		return nil, &PermanentError{Reason: fmt.Sprintf("vonage: refused with HTTP %v", err)}
	case err != nil && tr.status >= 300:
		return nil, fmt.Errorf("vonage: HTTP %w", err)
	case err != nil:
		return nil, fmt.Errorf("vonage: %w", err)
	case len(resp.Messages) == 0:
		return nil, errors.New("vonage: provider answered with no messages")
	}
	var ids []string
	for i, m := range resp.Messages {
		if m.Status == "0" {
			if m.MessageId != "" {
				ids = append(ids, m.MessageId)
			}
			continue
		}
		reason := fmt.Sprintf("vonage: status %s", m.Status)
		if i < len(errResp.Messages) && errResp.Messages[i].ErrorText != "" {
			reason += ": " + errResp.Messages[i].ErrorText
		}
		if m.Status == vonageThrottled {
			return nil, &ThrottledError{Reason: reason, After: tr.retryAfter}
		}
		if m.Status == vonageInternal {
			return nil, errors.New(reason)
		}
		return nil, &PermanentError{Reason: reason}
	}
	return ids, nil
}

// vonageSend calls the SDK, turning its panic on a response without
// messages into an error.
func vonageSend(c *vonage.SMSClient, from, to, text string, opts vonage.SMSOpts) (resp vonage.Sms, errResp vonage.SmsErrorResponse, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("vonage: provider answered with no messages (sdk panic: %v)", r)
		}
	}()
	return c.Send(from, to, text, opts)
}

// vonageTransport gives the SDK's request the caller's context (the SDK
// builds it on context.Background), and notes whether a request was made,
// the HTTP status of its answer and its Retry-After, which the SDK hides.
type vonageTransport struct {
	ctx        context.Context
	base       http.RoundTripper
	called     bool
	status     int
	retryAfter time.Duration
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
	t.retryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	return resp, nil
}

// maxRetryAfter bounds what a Retry-After may ask for: a longer wait is
// taken as a mistake, not as a day without texts.
const maxRetryAfter = time.Hour

// retryAfter reads an HTTP Retry-After value (RFC 9110 10.2.3): a number
// of seconds, or a date. It returns zero for none, a date in the past, or
// a value it cannot read, and at most maxRetryAfter.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
