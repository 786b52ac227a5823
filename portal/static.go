package portal

import "net/http"

// handleScript serves the portal's two optional scripts from its own
// origin (the page's CSP allows script from 'self' only, and no inline
// script): static/time.js, which shows times in the browser's zone, and
// static/reply.js, which checks a reply's size before it is uploaded.
// Every page works without them.
func (s *Server) handleScript(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name != "time.js" && name != "reply.js" {
		s.handleNotFound(w, r)
		return
	}
	js, err := assets.ReadFile("static/" + name)
	if err != nil {
		s.fail(w, r, "script", err)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", publicCache)
	w.Write(js)
}
