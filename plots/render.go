package plots

import (
	"bufio"
	"fmt"
	"image/color"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/ddsmc/ddsmc/internal/atomicfile"
)

// Output: the format named by the file extension and the atomic write of
// a drawn figure.

// imageFormat returns "png" or "svg" for the extension of path.
func imageFormat(path string) (string, error) {
	ext := filepath.Ext(path)
	switch strings.ToLower(ext) {
	case ".png":
		return "png", nil
	case ".svg":
		return "svg", nil
	}
	return "", fmt.Errorf("plots: unsupported file extension %q in %s (want .png or .svg)", ext, path)
}

// render draws a w×h figure with fill and writes it atomically to path in
// the format its extension names. A panic inside fill (gonum/plot panics on
// some degenerate input) becomes an error and nothing is written.
func render(path string, w, h vg.Length, fill func(c draw.Canvas)) (err error) {
	format, err := imageFormat(path)
	if err != nil {
		return err
	}
	var (
		cv      vg.CanvasSizer
		writeTo func(w *bufio.Writer) error
	)
	switch format {
	case "png":
		img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(pngDPI), vgimg.UseBackgroundColor(color.White))
		cv = img
		writeTo = func(bw *bufio.Writer) error {
			_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(bw)
			return err
		}
	default:
		svg := vgsvg.New(w, h)
		cv = svg
		writeTo = func(bw *bufio.Writer) error {
			_, err := svg.WriteTo(bw)
			return err
		}
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("plots: drawing %s: %v", filepath.Base(path), r)
			}
		}()
		c := draw.New(cv)
		c.SetColor(color.White)
		c.Fill(c.Rectangle.Path())
		fill(c)
	}()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, writeTo); err != nil {
		return fmt.Errorf("plots: %w", err)
	}
	return nil
}
