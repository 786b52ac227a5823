package portal

import (
	"fmt"
	"net/http"
	"strconv"
)

// brandCSS is the stylesheet of the brand colour: the CSP forbids inline
// styles, so the colour gets a stylesheet of its own. The text on it is
// black or white, whichever reads better.
func brandCSS(color string) []byte {
	r, _ := strconv.ParseUint(color[1:3], 16, 8)
	g, _ := strconv.ParseUint(color[3:5], 16, 8)
	b, _ := strconv.ParseUint(color[5:7], 16, 8)
	on := "#fff"
	if 299*r+587*g+114*b > 150_000 { // perceived brightness, 0–255 000
		on = "#111"
	}
	return fmt.Appendf(nil, ":root { --brand: %s; --on-brand: %s; }\n", color, on)
}

// publicCache is the Cache-Control of the stylesheets and the logo: the
// same for everybody, and small.
const publicCache = "public, max-age=3600"

func (s *Server) handleStyle(w http.ResponseWriter, r *http.Request) {
	css, err := assets.ReadFile("static/style.css")
	if err != nil {
		s.fail(w, r, "style", err)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", publicCache)
	w.Write(css)
}

func (s *Server) handleBrandCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", publicCache)
	w.Write(s.brand)
}

// handleLogo serves the logo, checked at start to be a raster image.
func (s *Server) handleLogo(w http.ResponseWriter, r *http.Request) {
	if len(s.cfg.Logo) == 0 {
		s.handleNotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", http.DetectContentType(s.cfg.Logo))
	w.Header().Set("Content-Security-Policy", downloadCSP)
	w.Header().Set("Cache-Control", publicCache)
	w.Write(s.cfg.Logo)
}
