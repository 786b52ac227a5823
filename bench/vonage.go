package main

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// fakeVonage speaks Vonage's SMS API (form posts to /sms/json, answers in
// the real API's JSON) and tells when each text arrived.
type fakeVonage struct {
	url string
	srv *http.Server

	mu      sync.Mutex
	n       int
	arrived chan text
}

type text struct {
	to, body string
	at       time.Time
}

func startVonage() *fakeVonage {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("vonage: %v", err)
	}
	f := &fakeVonage{url: "http://" + l.Addr().String(), arrived: make(chan text, 1<<16)}
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve), ReadHeaderTimeout: 10 * time.Second}
	go f.srv.Serve(l)
	cleanups = append(cleanups, func() { f.srv.Close() })
	return f
}

func (f *fakeVonage) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	if r.Method != http.MethodPost || r.URL.Path != "/sms/json" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	to := r.PostForm.Get("to")
	f.mu.Lock()
	f.n++
	n := f.n
	f.mu.Unlock()
	select {
	case f.arrived <- text{to: to, body: r.PostForm.Get("text"), at: at}:
	default: // nobody is listening: the ingest runs' texts
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"message-count":"1","messages":[{"to":%q,"message-id":"0B%014d","status":"0","remaining-balance":"3.14159265","message-price":"0.03330000","network":"12345"}]}`, to, n)
}

// drain forgets the texts that arrived so far.
func (f *fakeVonage) drain() {
	for {
		select {
		case <-f.arrived:
		default:
			return
		}
	}
}

// next waits for the next text.
func (f *fakeVonage) next(within time.Duration) (text, error) {
	select {
	case t := <-f.arrived:
		return t, nil
	case <-time.After(within):
		return text{}, fmt.Errorf("no text within %v", within)
	}
}
