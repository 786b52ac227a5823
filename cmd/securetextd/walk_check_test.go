package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// The checks every page of the patient's walk (walk_browser_test.go)
// goes through: a screenshot at phone width, the page's language,
// axe-core's WCAG 2.2 A and AA rules, and reflow (WCAG 1.4.10 and 1.4.4)
// at 320 CSS px and at 200% zoom.

// phoneScreen is the walk's screen: 390×844 CSS px, a common phone.
var phoneScreen = viewport{name: "phone", width: 390, height: 844, scale: 1}

// viewport is a screen the page is laid out on: width×height CSS px at
// scale device pixels per CSS px.
type viewport struct {
	name          string
	width, height int64
	scale         float64
}

// reflowViewports are the layouts nothing may be cut off in, besides the
// phone's own.
//
// 320 CSS px wide is WCAG 1.4.10's reflow width.
//
// 200% zoom is the phone's screen at twice the device pixels per CSS
// pixel: 195×422 CSS px at scale 2. That is what a browser's page zoom
// does (Chromium's, on Android as on the desktop): the same screen holds
// half as many CSS pixels, so the layout viewport, media queries and
// window.innerWidth all see 195 px and the page reflows into it. CSS
// `zoom: 2` on the root was not chosen: Chromium applies it inside the
// layout, so the viewport, media queries and vw units still see 390 px,
// and the page lays out as no zoomed browser would.
var reflowViewports = []viewport{
	{name: "320px", width: 320, height: 568, scale: 1},
	{name: "zoom200", width: phoneScreen.width / 2, height: phoneScreen.height / 2, scale: 2 * phoneScreen.scale},
}

// emulate lays the page out on v, as a phone (mobile, so the page's
// meta viewport applies).
func emulate(ctx context.Context, v viewport) error {
	_, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: v.width, Height: v.height, DeviceScaleFactor: v.scale, Mobile: true,
		ScreenOrientation: &emulation.ScreenOrientation{Type: emulation.ScreenOrientationTypePortraitPrimary},
	})
	return err
}

// cutOffScript lists what is cut off in the page as laid out now: the
// document scrolling sideways (its scrollWidth beyond its clientWidth),
// and every visible element or run of text whose box reaches past the
// viewport's left or right edge, or past that of an ancestor that clips
// (overflow hidden or clip). What sits in a box that scrolls sideways of
// its own (overflow auto or scroll: a wide table in a message) is
// reachable, and not counted. It also lists every word broken across
// lines that is narrower than the page's column: the word of a box
// squeezed narrower than its words (overflow-wrap: anywhere breaks them
// rather than overflow), which reads as garbage ("Acc / oun / t"); and
// every button, select or file input whose own words are wider than it.
const cutOffScript = `(() => {
	scrollTo(0, 0);
	const se = document.scrollingElement, vw = se.clientWidth, out = [];
	// The width of the page's column of text: main's, inside its padding.
	const main = document.querySelector('main') || document.body, ms = getComputedStyle(main);
	const column = Math.min(vw, main.clientWidth) - parseFloat(ms.paddingLeft) - parseFloat(ms.paddingRight);
	if (se.scrollWidth > vw) out.push('cut off: the page scrolls sideways: scrollWidth ' + se.scrollWidth + ' > clientWidth ' + vw);
	const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : '');
	const path = e => { const p = []; for (; e && e !== document.body; e = e.parentElement) p.unshift(name(e)); return p.join(' > '); };
	// bounds returns the horizontal span e's content may show in, or
	// null when it sits in a box that scrolls sideways.
	const bounds = e => {
		let left = 0, right = vw;
		for (let a = e.parentElement; a && a !== document.documentElement; a = a.parentElement) {
			const s = getComputedStyle(a);
			if (/auto|scroll/.test(s.overflowX)) return null;
			if (/hidden|clip/.test(s.overflowX)) {
				const r = a.getBoundingClientRect();
				left = Math.max(left, r.left); right = Math.min(right, r.right);
			}
		}
		return [left, right];
	};
	const check = (what, e, rects) => {
		const b = bounds(e);
		if (!b) return;
		for (const r of rects) {
			if (r.width === 0 || r.height === 0) continue;
			if (r.left < b[0] - 1 || r.right > b[1] + 1) {
				out.push('cut off: ' + what + ' spans ' + Math.round(r.left) + '..' + Math.round(r.right) + ' px, beyond ' + Math.round(b[0]) + '..' + Math.round(b[1]) + ': ' + path(e));
				return;
			}
		}
	};
	for (const e of document.body.querySelectorAll('*')) {
		if (!e.checkVisibility({visibilityProperty: true, opacityProperty: true})) continue;
		check('<' + e.tagName.toLowerCase() + '>', e, [e.getBoundingClientRect()]);
		// A control draws its words inside itself, out of the page's
		// reach: wider than its box, they are cut (a file input's
		// "No file chosen").
		if (e.matches('button, select, input[type=file], input[type=submit]') && e.scrollWidth > e.clientWidth + 1)
			out.push('cut off: the words of ' + path(e) + ' take ' + e.scrollWidth + ' px of its ' + e.clientWidth);
	}
	const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	for (let n = w.nextNode(); n; n = w.nextNode()) {
		const e = n.parentElement;
		if (!n.data.trim() || !e.checkVisibility({visibilityProperty: true, opacityProperty: true})) continue;
		const r = document.createRange();
		r.selectNodeContents(n);
		check('text ' + JSON.stringify(n.data.trim().slice(0, 40)), e, r.getClientRects());
		// Each stretch of text between two places a line may break
		// (spaces, after a hyphen) on one line, unless it is wider than
		// the page's column (a long address): a word cut in pieces
		// ("Acc / oun / t") is in a box squeezed below the words' width.
		for (const m of n.data.matchAll(/[^\s\-\u2010]+[\-\u2010]?/g)) {
			r.setStart(n, m.index);
			r.setEnd(n, m.index + m[0].length);
			const rects = [...r.getClientRects()].filter(q => q.width > 0);
			if (new Set(rects.map(q => Math.round(q.top))).size < 2) continue;
			const width = rects.reduce((s, q) => s + q.width, 0);
			if (width <= column) out.push('the word ' + JSON.stringify(m[0]) + ' (' + Math.round(width) + ' px) is broken across lines: ' + path(e));
		}
	}
	return out;
})()`

// checkReflow lays the page out at each of reflowViewports and fails on
// whatever is cut off there (cutOffScript), leaving a screenshot of that
// layout; then lays it out on the phone again.
func checkReflow(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, v := range reflowViewports {
		if err := emulate(c, v); err != nil {
			t.Fatalf("%s: lay out at %s: %v", page, v.name, err)
		}
		cut, err := chromedp.Run(c, chromedp.Evaluate[[]string](cutOffScript))
		if err != nil {
			t.Fatalf("%s at %s: %v", page, v.name, err)
		}
		for _, s := range cut {
			t.Errorf("%s at %s: %s", page, v.name, s)
		}
		if len(cut) > 0 {
			shot(t, c, page+"-"+v.name)
		}
	}
	if err := emulate(c, phoneScreen); err != nil {
		t.Fatalf("%s: lay out on the phone again: %v", page, err)
	}
}

// walker walks the portal in one language, checking each page it lands on.
type walker struct {
	t    *testing.T
	ctx  context.Context
	axe  string
	lang walkLanguage
	n    int // pages seen, numbering the screenshots
}

// page checks the page the browser shows: a screenshot named after the
// language, the page's place in the walk and name; <html lang> in the
// walk's language; axe-core; reflow. The language is an error, not the
// end of the walk, so a run shows every page whose language is wrong
// and what else is. It returns the screenshot's path.
func (w *walker) page(name string) string {
	w.t.Helper()
	w.n++
	file := fmt.Sprintf("walk-%s-%02d-%s", w.lang.Tag, w.n, name)
	shot(w.t, w.ctx, file)
	got, err := chromedp.Run(w.ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
	if err != nil {
		w.t.Fatalf("%s: %v", file, err)
	}
	if got != w.lang.Tag && !strings.HasPrefix(got, w.lang.Tag+"-") {
		w.t.Errorf("%s: <html lang=%q>, want %q", file, got, w.lang.Tag)
	}
	checkA11y(w.t, w.ctx, w.axe, file)
	checkReflow(w.t, w.ctx, file)
	return filepath.Join(artifactDir(w.t), file+".png")
}

// screenshotDir is where SECURETEXTD_SCREENSHOTS asks the walk to leave
// the README's picture, or "" when it is not set.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("SECURETEXTD_SCREENSHOTS")
	if dir == "" {
		return ""
	}
	if !filepath.IsAbs(dir) {
		// Relative to the top of the repository, as a developer types it
		// there; go test runs in the package's directory.
		dir = filepath.Join("..", "..", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
