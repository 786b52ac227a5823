package main

import (
	"fmt"
	"math"
	"strconv"

	"github.com/securetextd/securetextd/portal"
)

// minContrast is the contrast WCAG 2 asks of normal text (success
// criterion 1.4.3, level AA).
const minContrast = 4.5

// doctorBrand measures brand.color where the portal uses it: under the
// text of the top bar and buttons (white, or near black on a light
// colour: portal.OnBrand), and as the colour of links on the white page.
func doctorBrand(color string, line func(level, what, detail string)) {
	on := portal.OnBrand(color)
	under := contrast(color, on)
	links := contrast(color, "#fff")
	const asks = "WCAG 2 asks for at least 4.5:1"
	switch {
	case on == "#fff" && under < minContrast:
		line("warn", "brand.color", fmt.Sprintf("%s under the portal's white text (top bar, buttons), and as its link colour on white, has contrast %s; %s — pick a darker colour",
			color, ratio(under), asks))
	case on == "#fff":
		line("ok", "brand.color", fmt.Sprintf("%s under the portal's white text (top bar, buttons), and as its link colour on white, has contrast %s (%s)",
			color, ratio(under), asks))
	case under < minContrast:
		// Never so for a colour the portal writes dark text on; said
		// anyway, should the portal's choice change.
		line("warn", "brand.color", fmt.Sprintf("%s under the portal's dark text (top bar, buttons) has contrast %s; %s — pick a lighter colour",
			color, ratio(under), asks))
	case links < minContrast:
		line("warn", "brand.color", fmt.Sprintf("%s as the portal's link colour on white has contrast %s; %s — pick a darker colour (the portal writes dark text on it in the top bar and buttons: %s)",
			color, ratio(links), asks, ratio(under)))
	default:
		line("ok", "brand.color", fmt.Sprintf("%s under the portal's dark text (top bar, buttons) has contrast %s, and as its link colour on white %s (%s)",
			color, ratio(under), ratio(links), asks))
	}
}

// ratio prints a contrast ratio to one decimal, never rounded up to the
// minimum it falls short of.
func ratio(r float64) string {
	shown := math.Round(r*10) / 10
	if r < minContrast && shown >= minContrast {
		shown = minContrast - 0.1
	}
	return strconv.FormatFloat(shown, 'f', 1, 64) + ":1"
}

// contrast is WCAG 2's contrast ratio of two sRGB colours, "#RGB" or
// "#RRGGBB": (L1 + 0.05) / (L2 + 0.05), L1 the lighter's relative
// luminance. It runs from 1 (the same) to 21 (black on white).
func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// luminance is the relative luminance of an sRGB colour, as WCAG 2
// defines it: each channel linearized (the sRGB transfer function
// undone), then weighted by how bright the eye sees it.
func luminance(hex string) float64 {
	if len(hex) == 4 { // "#fff" is "#ffffff"
		hex = string([]byte{'#', hex[1], hex[1], hex[2], hex[2], hex[3], hex[3]})
	}
	channel := func(i int) float64 {
		v, _ := strconv.ParseUint(hex[i:i+2], 16, 8)
		c := float64(v) / 255
		if c <= 0.04045 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return 0.2126*channel(1) + 0.7152*channel(3) + 0.0722*channel(5)
}
