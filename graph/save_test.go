package graph

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveLoadReproducesLogits(t *testing.T) {
	for _, cfg := range testConfigs("float32") {
		m, _ := New(cfg)
		// Move the weights off their initial values so Load cannot pass by
		// re-initialising from the same seed.
		for _, n := range m.Store.Names() {
			d := m.Store.Get(n).Data().([]float32)
			for i := range d {
				d[i] += 0.01 * float32(i%7)
			}
		}
		p := filepath.Join(t.TempDir(), "m.ckpt")
		if err := m.Save(p, map[string]string{"step": "12"}); err != nil {
			t.Fatal(err)
		}
		got, meta, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if meta["step"] != "12" || got.Cfg != m.Cfg {
			t.Fatalf("%s: metadata %v / config %+v not restored", cfg.Arch, meta, got.Cfg)
		}
		xt := []int{0, 4, 2}
		a, b := make([]float64, 12), make([]float64, 12)
		m.X0Logits(xt, []float64{0.4}, a)
		got.X0Logits(xt, []float64{0.4}, b)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s: logit %d: saved model %v, loaded %v", cfg.Arch, i, a[i], b[i])
			}
		}
	}
}

func TestLoadParamsIntoAnotherShapeNamesTheTensor(t *testing.T) {
	cfg := testConfigs("float32")[0]
	m, _ := New(cfg)
	p := filepath.Join(t.TempDir(), "m.ckpt")
	if err := m.Save(p, nil); err != nil {
		t.Fatal(err)
	}
	other := cfg
	other.Hidden = 32
	o, _ := New(other)
	_, err := o.LoadParams(p)
	if err == nil || !strings.Contains(err.Error(), `"mlp.0.W" has shape [32 16], model expects [32 32]`) {
		t.Fatalf("loading a hidden=16 checkpoint into hidden=32: err = %v", err)
	}
}

func TestLoadMissingAndCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := Load(filepath.Join(dir, "nope.ckpt")); err == nil || !strings.Contains(err.Error(), "nope.ckpt") {
		t.Fatalf("missing file: err = %v", err)
	}
	m, _ := New(testConfigs("float32")[0])
	p := filepath.Join(dir, "m.ckpt")
	m.Save(p, nil)
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0xff
	os.WriteFile(p, b, 0o644)
	if _, _, err := Load(p); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("flipped byte: err = %v", err)
	}
}
