package plots

import (
	"bytes"
	"image"
	_ "image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkPNG decodes the PNG at path and checks that its size is plausible
// for a figure of at least minW×minH inches at the package's 150 dpi.
func checkPNG(t *testing.T, path string, minW, minH float64) image.Image {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("%s: not a PNG (%d bytes)", path, len(b))
	}
	img, format, err := image.Decode(bytes.NewReader(b))
	if err != nil || format != "png" {
		t.Fatalf("%s: decode: format %q, %v", path, format, err)
	}
	r := img.Bounds()
	if float64(r.Dx()) < minW*pngDPI-1 || float64(r.Dy()) < minH*pngDPI-1 || r.Dx() > 6000 || r.Dy() > 6000 {
		t.Fatalf("%s: implausible size %dx%d (want at least %.0fx%.0f)", path, r.Dx(), r.Dy(), minW*pngDPI, minH*pngDPI)
	}
	// A figure is not blank: some pixels are far from white.
	dark := 0
	for y := r.Min.Y; y < r.Max.Y; y += 3 {
		for x := r.Min.X; x < r.Max.X; x += 3 {
			if cr, cg, cb, _ := img.At(x, y).RGBA(); cr+cg+cb < 3*0x8000 {
				dark++
			}
		}
	}
	if dark < 50 {
		t.Fatalf("%s: figure looks blank (%d dark samples)", path, dark)
	}
	return img
}

// checkSVG checks that path holds a well-formed-looking SVG document.
func checkSVG(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(string(b))
	if !(strings.HasPrefix(s, "<?xml") || strings.HasPrefix(s, "<svg")) || !strings.Contains(s, "</svg>") {
		t.Fatalf("%s: not an SVG document: %.80q…", path, s)
	}
	return s
}

// wantErr fails unless err is non-nil, starts with "plots: " and contains
// every fragment.
func wantErr(t *testing.T, what string, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	if !strings.HasPrefix(err.Error(), "plots: ") {
		t.Fatalf("%s: error %q lacks the plots: prefix", what, err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("%s: error %q does not mention %q", what, err, f)
		}
	}
}

// preview copies a PNG into $PLOTS_PREVIEW (if set) for a human to look at.
func preview(t *testing.T, src string) {
	t.Helper()
	dir := os.Getenv("PLOTS_PREVIEW")
	if dir == "" {
		return
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(src)), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// both writes name.png and name.svg with draw, checks them and previews the PNG.
func both(t *testing.T, dir, name string, minW, minH float64, draw func(path string) error) {
	t.Helper()
	png := filepath.Join(dir, name+".png")
	if err := draw(png); err != nil {
		t.Fatalf("%s: %v", png, err)
	}
	checkPNG(t, png, minW, minH)
	svg := filepath.Join(dir, name+".svg")
	if err := draw(svg); err != nil {
		t.Fatalf("%s: %v", svg, err)
	}
	checkSVG(t, svg)
	preview(t, png)
}
