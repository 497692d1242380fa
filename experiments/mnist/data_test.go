package mnist

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ddsmc/ddsmc/internal/gomod"
	"github.com/ddsmc/ddsmc/objectives"
)

var _ objectives.Data = (*MNIST)(nil)

// mnistCache loads each (split, size) at most once per test binary.
var mnistCache struct {
	sync.Mutex
	m map[string]*MNIST
}

func loadMNISTOnce(t *testing.T, split string, size int) *MNIST {
	t.Helper()
	mnistCache.Lock()
	defer mnistCache.Unlock()
	key := fmt.Sprint(split, "/", size)
	if m := mnistCache.m[key]; m != nil {
		return m
	}
	dir, err := MNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	m, err := LoadMNIST(dir, split, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("LoadMNIST(%s, %d) took %v", split, size, time.Since(start))
	if mnistCache.m == nil {
		mnistCache.m = map[string]*MNIST{}
	}
	mnistCache.m[key] = m
	return m
}

func TestMNISTDir(t *testing.T) {
	t.Setenv(MNISTDirEnv, "")
	start := time.Now()
	dir, err := MNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MNISTDir() = %s (%v)", dir, time.Since(start))
	for _, spec := range mnistFiles {
		for _, f := range []mnistFile{spec.images, spec.labels} {
			if _, err := os.Stat(filepath.Join(dir, f.name)); err != nil {
				t.Errorf("MNIST file missing from %s: %v", dir, err)
			}
		}
	}
	if !strings.Contains(dir, "@"+MNISTVersion) {
		t.Errorf("MNISTDir() = %s, want the pinned version %s", dir, MNISTVersion)
	}
	if got, want := gomod.EscapePath(MNISTModule), "github.com/petar/!go!m!n!i!s!t"; got != want {
		t.Errorf("gomod.EscapePath = %s, want %s", got, want)
	}
	t.Setenv(MNISTDirEnv, "/some/where")
	if d, err := MNISTDir(); err != nil || d != "/some/where" {
		t.Errorf("with %s set, MNISTDir() = %q, %v; want /some/where", MNISTDirEnv, d, err)
	}
}

// TestMNISTDirOutsideModule runs MNISTDir from a directory outside any Go
// module, where `go list -m` fails, so the module cache fallback is used.
func TestMNISTDirOutsideModule(t *testing.T) {
	t.Setenv(MNISTDirEnv, "")
	want, err := MNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	mnistDirCache.Lock()
	saved := mnistDirCache.dir
	mnistDirCache.dir = ""
	mnistDirCache.Unlock()
	t.Cleanup(func() {
		mnistDirCache.Lock()
		mnistDirCache.dir = saved
		mnistDirCache.Unlock()
	})
	got, err := MNISTDir()
	if err != nil || got != want {
		t.Fatalf("outside the module MNISTDir() = %q, %v; want %s", got, err, want)
	}
}

func TestMNISTLoad(t *testing.T) {
	for _, tc := range []struct {
		split string
		n     int
	}{{"test", 10000}, {"train", 60000}} {
		m := loadMNISTOnce(t, tc.split, 28)
		if m.Len() != tc.n || len(m.Labels) != tc.n || m.H != 28 || m.W != 28 || len(m.Pixels) != tc.n*28*28 {
			t.Fatalf("%s: Len %d, %d labels, %d×%d, %d pixels; want %d images of 28×28", tc.split, m.Len(), len(m.Labels), m.H, m.W, len(m.Pixels), tc.n)
		}
		var hist [10]int
		for i := range m.Len() {
			l := m.Label(i)
			if l < 0 || l > 9 {
				t.Fatalf("%s: label %d of image %d", tc.split, l, i)
			}
			hist[l]++
		}
		sum := 0
		for d, c := range hist {
			sum += c
			// Every digit has between 8% and 12% of each split.
			if c < tc.n*8/100 || c > tc.n*12/100 {
				t.Errorf("%s: digit %d has %d images", tc.split, d, c)
			}
		}
		if sum != tc.n {
			t.Errorf("%s: label histogram sums to %d, want %d", tc.split, sum, tc.n)
		}
		ink := 0
		for k, p := range m.Pixels {
			if p != 0 && p != 1 {
				t.Fatalf("%s: pixel %d = %d, want 0 or 1", tc.split, k, p)
			}
			ink += p
		}
		frac := float64(ink) / float64(len(m.Pixels))
		t.Logf("%s: label counts %v, ink fraction %.4f", tc.split, hist, frac)
		if frac < 0.08 || frac > 0.2 {
			t.Errorf("%s: ink fraction %.4f, want within [0.08, 0.2]", tc.split, frac)
		}
		if len(m.Row(tc.n-1)) != 784 {
			t.Errorf("%s: Row length %d", tc.split, len(m.Row(tc.n-1)))
		}
		if d := m.Dataset(); d.Len() != tc.n || d.L != 784 || d.V != 2 {
			t.Errorf("%s: Dataset() has %d rows of length %d over %d tokens", tc.split, d.Len(), d.L, d.V)
		}
	}
	m := loadMNISTOnce(t, "test", 28)
	// The first official test digit is a 7.
	if m.Label(0) != 7 {
		t.Errorf("first test label %d, want 7", m.Label(0))
	}
	t.Logf("first test image (label %d):\n%s", m.Label(0), m.ASCII(0))
}

func TestMNISTDownsample(t *testing.T) {
	full := loadMNISTOnce(t, "test", 28)
	small := loadMNISTOnce(t, "test", 14)
	if small.H != 14 || small.W != 14 || small.Len() != 10000 || len(small.Pixels) != 10000*196 || len(small.Row(0)) != 196 {
		t.Fatalf("14×14 variant: %d×%d, %d images, %d pixels", small.H, small.W, small.Len(), len(small.Pixels))
	}
	for i := range small.Len() {
		if small.Label(i) != full.Label(i) {
			t.Fatalf("image %d: label %d at 14×14, %d at 28×28", i, small.Label(i), full.Label(i))
		}
		if i >= 20 {
			continue
		}
		// Direct computation on the first images from the binarised 28×28 ones.
		f, s := full.Row(i), small.Row(i)
		for r := range 14 {
			for c := range 14 {
				n := f[(2*r)*28+2*c] + f[(2*r)*28+2*c+1] + f[(2*r+1)*28+2*c] + f[(2*r+1)*28+2*c+1]
				want := 0
				if n >= 2 {
					want = 1
				}
				if s[r*14+c] != want {
					t.Fatalf("image %d, block (%d,%d): %d of 4 pixels inked, got %d, want %d", i, r, c, n, s[r*14+c], want)
				}
			}
		}
	}
	ink := 0
	for _, p := range small.Pixels {
		if p != 0 && p != 1 {
			t.Fatalf("14×14 pixel %d", p)
		}
		ink += p
	}
	t.Logf("14×14 test: ink fraction %.4f; first image (label %d):\n%s", float64(ink)/float64(len(small.Pixels)), small.Label(0), small.ASCII(0))
}

// copyMNISTTest copies the two test-split files into a fresh directory and
// points DDSMC_MNIST_DIR at it.
func copyMNISTTest(t *testing.T) string {
	t.Helper()
	t.Setenv(MNISTDirEnv, "")
	src, err := MNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	spec := mnistFiles["test"]
	for _, f := range []mnistFile{spec.images, spec.labels} {
		b, err := os.ReadFile(filepath.Join(src, f.name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f.name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(MNISTDirEnv, dst)
	if d, err := MNISTDir(); err != nil || d != dst {
		t.Fatalf("MNISTDir() = %q, %v; want %s", d, err, dst)
	}
	return dst
}

func TestMNISTCorruptFile(t *testing.T) {
	for _, name := range []string{"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"} {
		t.Run(name, func(t *testing.T) {
			dir := copyMNISTTest(t)
			path := filepath.Join(dir, name)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x01
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			d, _ := MNISTDir()
			_, err = LoadMNIST(d, "test", 28)
			if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "checksum") {
				t.Fatalf("flipped byte in %s: error %v, want a checksum error naming the file", name, err)
			}
			t.Log(err)
		})
	}
}

func TestMNISTMissingFile(t *testing.T) {
	dir := copyMNISTTest(t)
	name := "t10k-labels-idx1-ubyte.gz"
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
	_, err := LoadMNIST(dir, "test", 14)
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing %s: error %v, want one naming the file", name, err)
	}
	t.Log(err)
	// The train files were never copied: they are reported missing too.
	if _, err := LoadMNIST(dir, "train", 28); err == nil || !strings.Contains(err.Error(), "train-images-idx3-ubyte.gz") {
		t.Fatalf("train split in a test-only directory: error %v", err)
	}
}

func TestMNISTBadArguments(t *testing.T) {
	dir := copyMNISTTest(t)
	for _, tc := range []struct {
		split string
		size  int
		want  string
	}{
		{"valid", 28, "split"},
		{"", 28, "split"},
		{"test", 7, "size"},
		{"test", 0, "size"},
		{"test", 56, "size"},
	} {
		_, err := LoadMNIST(dir, tc.split, tc.size)
		if err == nil || !strings.HasPrefix(err.Error(), "mnist: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadMNIST(%q, %d): error %v, want one about the %s", tc.split, tc.size, err, tc.want)
		}
	}
}
