package plots

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTextPanelsWritesPNGAndSVGAndRejectsEmpty: both formats are written,
// a taller text gives a taller figure, and no blocks is an error.
func TestTextPanelsWritesPNGAndSVGAndRejectsEmpty(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("a rather long generated review sentence , ", 12)
	blocks := []TextBlock{{Title: "SMC-grad (N = 8)", Lines: []string{"r = -0.10  this movie is great .", long}}, {Title: "BoN", Lines: []string{"x"}}}
	for _, ext := range []string{".png", ".svg"} {
		p := filepath.Join(dir, "t"+ext)
		if err := TextPanels(p, "samples", blocks); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", p, err)
		}
	}
	b1, _ := os.ReadFile(filepath.Join(dir, "t.svg"))
	if !strings.Contains(string(b1), "SMC-grad") {
		t.Error("the SVG does not contain the block title")
	}
	short := filepath.Join(dir, "s.svg")
	if err := TextPanels(short, "samples", blocks[1:]); err != nil {
		t.Fatal(err)
	}
	if err := TextPanels(filepath.Join(dir, "e.png"), "none", nil); err == nil {
		t.Error("no blocks: want an error")
	}
	if err := TextPanels(filepath.Join(dir, "x.pdf"), "t", blocks); err == nil {
		t.Error("a .pdf path: want an error")
	}
}
