package portal

import (
	"fmt"
	"net/http"
	"strconv"
)

// brandCSS is the stylesheet of the brand colour: the CSP forbids inline
// styles, so the colour gets a stylesheet of its own.
func brandCSS(color string) []byte {
	return fmt.Appendf(nil, ":root { --brand: %s; --on-brand: %s; }\n", color, OnBrand(color))
}

// OnBrand is the colour of the text the portal writes on the brand colour
// ("#RRGGBB") in the top bar and on buttons: white ("#fff"), or near
// black ("#111") on a light colour. The brand colour is also the colour
// of links on the white page. `securetextd doctor` measures both.
func OnBrand(color string) string {
	r, _ := strconv.ParseUint(color[1:3], 16, 8)
	g, _ := strconv.ParseUint(color[3:5], 16, 8)
	b, _ := strconv.ParseUint(color[5:7], 16, 8)
	if 299*r+587*g+114*b > 150_000 { // perceived brightness, 0–255 000
		return "#111"
	}
	return "#fff"
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
