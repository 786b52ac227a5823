package notify

import (
	"bytes"
	"testing"
)

// countingWriter records each Write call separately.
type countingWriter struct{ writes [][]byte }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func TestConsole(t *testing.T) {
	var w countingWriter
	c := NewConsole(&w, "Acme")
	if err := c.SendSMS(t.Context(), "+12125550123", `Acme: "hi" <open> https://s.example/m/a?b=1&c=2`); err != nil {
		t.Fatal(err)
	}
	want := `{"to":"+12125550123","from":"Acme","text":"Acme: \"hi\" <open> https://s.example/m/a?b=1&c=2"}` + "\n"
	if len(w.writes) != 1 {
		t.Fatalf("got %d writes, want 1", len(w.writes))
	}
	if got := string(w.writes[0]); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
