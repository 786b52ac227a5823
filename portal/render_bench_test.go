package portal

import (
	"html/template"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkRenderConversation renders a conversation page of one message
// with a file, as renderConversation makes it, without the store: what
// html/template costs a page view (BENCHMARKS.md's portal section has
// the whole view).
func BenchmarkRenderConversation(b *testing.B) {
	srv, _ := spanishServer(b)
	req := httptest.NewRequest("GET", "https://portal.test/c/1", nil)
	at := time.Date(2026, 3, 3, 14, 5, 0, 0, time.UTC)
	l := srv.cat.Printer("en")
	b.ReportAllocs()
	for b.Loop() {
		p := &conversationPage{layout: layout{Title: "ConversationTitle", SignedIn: true}, ID: 1, MaxReplyBytes: 25 << 20,
			Messages: []messageView{
				{ID: 1, SenderName: "Dr. Who", Sender: "dr@clinic.example", Subject: "Results", Received: at, New: true,
					Bodies: []bodyView{{HTML: template.HTML("<p>Hello</p>"), Href: "/c/1/m/1/p/0"}},
					Files:  []fileView{{Name: "results.pdf", Kind: "KindPDF", Size: 597_000, Href: "/c/1/m/1/p/1"}}},
			}}
		p.Zone = srv.pageZone(zone{})
		p.texts(l, "Dr. Who", l.Duration(72*time.Hour))
		w := httptest.NewRecorder()
		srv.render(w, req, http.StatusOK, "conversation.html", p)
	}
}
