package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
)

// composeSideBySide writes to out one PNG holding the PNGs of paths side
// by side, top-aligned, on a light grey ground with a margin around and
// between them.
func composeSideBySide(out string, paths ...string) error {
	const margin = 24
	var shots []image.Image
	width, height := margin, 0
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		shots = append(shots, img)
		width += img.Bounds().Dx() + margin
		height = max(height, img.Bounds().Dy())
	}
	canvas := image.NewRGBA(image.Rect(0, 0, width, height+2*margin))
	draw.Draw(canvas, canvas.Bounds(), image.NewUniform(color.RGBA{R: 0xe4, G: 0xe7, B: 0xeb, A: 0xff}), image.Point{}, draw.Src)
	x := margin
	for _, img := range shots {
		b := img.Bounds()
		draw.Draw(canvas, image.Rect(x, margin, x+b.Dx(), margin+b.Dy()), img, b.Min, draw.Src)
		x += b.Dx() + margin
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(f, canvas); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", out, err)
	}
	return f.Close()
}
