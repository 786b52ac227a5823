package export

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"

	"github.com/securetextd/securetextd"
	"github.com/securetextd/securetextd/store"
)

// parts is a Source of fixed contents.
type parts map[[2]int64][]byte

func (p parts) ConversationRecord(context.Context, int64) (*store.ConversationRecord, error) {
	panic("not used")
}

func (p parts) OpenPart(_ context.Context, id int64, idx int) (io.ReaderAt, int64, error) {
	b, ok := p[[2]int64{id, int64(idx)}]
	if !ok {
		return nil, 0, securetextd.Errorf(securetextd.ENOTFOUND, "No such file.")
	}
	return bytes.NewReader(b), int64(len(b)), nil
}

// TestWriteMessageForms: a file with a non-ASCII name keeps it (RFC 2231
// in Content-Disposition), a message whose content was purged says so,
// and a message with no audit rows says that too.
func TestWriteMessageForms(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	rec := &store.ConversationRecord{
		Conversation: securetextd.Conversation{ID: 7, Phone: "+12125550123", Sender: "dr.who@clinic.example"},
		Messages: []*securetextd.Message{
			{ID: 1, Direction: securetextd.Inbound, Sender: "dr.who@clinic.example", Subject: "Résultats", Received: at,
				Parts: []securetextd.Part{{Kind: securetextd.PartAttachment, ContentType: "application/pdf", Filename: "résumé 2026.pdf"}}},
			{ID: 2, Direction: securetextd.Inbound, Sender: "dr.who@clinic.example", Received: at},
		},
		History: map[int64][]securetextd.AuditEvent{1: {{Seq: 3, Time: at, Event: "message.accepted", Actor: "dr.who@clinic.example", Hash: []byte{1, 2}}}},
	}
	x := &Writer{Source: parts{{1, 0}: []byte("%PDF-1.7")}, Record: rec, Domain: "secure.text"}

	var b bytes.Buffer
	if err := x.WriteMessage(t.Context(), &b, 0); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "filename*=utf-8''r%C3%A9sum%C3%A9%202026.pdf") {
		t.Errorf("the file's name is not in RFC 2231 form:\n%s", b.String())
	}
	e, err := message.Read(&b)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := e.Header.Text("Subject"); s != "Résultats" {
		t.Errorf("subject %q", s)
	}
	mr := e.MultipartReader()
	p, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := p.Header.ContentDisposition()
	if body, _ := io.ReadAll(p.Body); params["filename"] != "résumé 2026.pdf" || string(body) != "%PDF-1.7" {
		t.Errorf("file %q: %q", params["filename"], body)
	}

	b.Reset()
	if err := x.WriteMessage(t.Context(), &b, 1); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"X-Securetextd-Purged: yes", "The content of this message was deleted", "No row of the trail names this message."} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the purged message lacks %q:\n%s", want, b.String())
		}
	}
}
