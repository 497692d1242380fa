package plots

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGridHeatmapsWritesPNGAndRejectsBadPanels(t *testing.T) {
	p := make([]float64, 16)
	for i := range p {
		p[i] = float64(i) / 120
	}
	path := filepath.Join(t.TempDir(), "h.png")
	if err := GridHeatmaps(path, []Panel{{"a", p}, {"b", p}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("not a PNG: %v", err)
	}
	if err := GridHeatmaps(path, []Panel{{"a", p}, {"short", p[:9]}}); err == nil || !strings.Contains(err.Error(), "short") {
		t.Fatalf("mismatched panel: err = %v", err)
	}
	q := append([]float64(nil), p...)
	q[3] = -1
	if err := GridHeatmaps(path, []Panel{{"neg", q}}); err == nil || !strings.Contains(err.Error(), "neg") {
		t.Fatalf("negative probability: err = %v", err)
	}
	if b2, _ := os.ReadFile(path); !bytes.Equal(b, b2) {
		t.Fatal("a failed plot overwrote the existing figure")
	}
}
