package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/securetextd/securetextd"
)

// Console is an SMSProvider for development and tests: instead of texting,
// it writes each text as one JSON line,
//
//	{"to":"+12125550123","from":"Clinic","text":"Clinic: you have a secure message. Open https://…"}
//
// which a developer can read, or a test can parse, to follow the link.
// The lines hold live link tokens: never point it at a shared log.
type Console struct {
	from string
	mu   sync.Mutex // serialises writes to w
	w    io.Writer
}

var _ SMSProvider = (*Console)(nil)

// NewConsole returns a provider that writes to w, naming from as sender.
func NewConsole(w io.Writer, from string) *Console {
	return &Console{w: w, from: from}
}

// SendSMS writes the text as one line, in a single Write, so that lines
// from concurrent sends never interleave.
func (c *Console) SendSMS(ctx context.Context, to securetextd.Phone, text string) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep '&' in links readable
	err := enc.Encode(struct {
		To   securetextd.Phone `json:"to"`
		From string            `json:"from"`
		Text string            `json:"text"`
	}{to, c.from, text})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}
