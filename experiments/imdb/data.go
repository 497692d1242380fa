package imdb

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	// The NB judge lives in the data module: importing it keeps the module
	// (and so the reviews) a real dependency in go.mod and go.sum, whose
	// content hash the Go module system checks on download.
	_ "github.com/cdipaolo/sentiment"
	"github.com/ddsmc/ddsmc/internal/gomod"
)

// Module and ModuleVersion name the pinned Go module that ships the IMDB
// reviews of Maas et al. (ACL 2011) under datasets/{train,test}/{pos,neg}/.
const (
	Module        = "github.com/cdipaolo/sentiment"
	ModuleVersion = "v0.0.0-20200617002423-c697f64e7f10"
)

// DirEnv, when set and non-empty, overrides DataDir: it names a directory
// laid out like the module's datasets/ folder (used by tests that plant a
// small or corrupt copy).
const DirEnv = "DDSMC_IMDB_DIR"

// ReviewsPerFolder is the number of reviews in each of the four folders
// train/pos, train/neg, test/pos and test/neg.
const ReviewsPerFolder = 12500

// ManifestSHA256 is the SHA-256 of the reviews' manifest (Manifest): one
// line "split/class/file sha256(content)" per review, sorted. It was
// computed once from the pinned module.
const ManifestSHA256 = "95da7b54fc4225d19db775308b48b77706fc1608aedce6fb188e2ac5a38757ef"

var dataDirCache struct {
	sync.Mutex
	dir string
}

// DataDir returns the datasets/ directory of the pinned module, found
// through the Go module system so that a fresh machine needs no manual
// step: $DDSMC_IMDB_DIR if set; else `go list -m` in the current module;
// else the module cache at the pinned version; else `go mod download
// -json`, which fetches the module (once, about 50 MB) and reports its
// directory. The answer of the last three is cached for the process.
func DataDir() (string, error) {
	if d := os.Getenv(DirEnv); d != "" {
		return d, nil
	}
	dataDirCache.Lock()
	defer dataDirCache.Unlock()
	if dataDirCache.dir != "" {
		return dataDirCache.dir, nil
	}
	d, err := gomod.Find(Module, ModuleVersion, func(modDir string) (string, bool) {
		d := filepath.Join(modDir, "datasets")
		st, err := os.Stat(filepath.Join(d, "train", "pos"))
		return d, err == nil && st.IsDir()
	})
	if err != nil {
		return "", fmt.Errorf("imdb: cannot find the IMDB reviews: %w; set %s to a directory holding {train,test}/{pos,neg}/", err, DirEnv)
	}
	dataDirCache.dir = d
	return d, nil
}

// Review is one raw review.
type Review struct {
	ID     int    // the number before the underscore in the file name
	Rating int    // stars, 1–4 (neg) or 7–10 (pos)
	Label  int    // 1 = positive, 0 = negative
	Text   string // raw text, with its <br /> tags
}

// Reviews are the raw reviews of one official split, negatives first,
// each class in increasing ID order.
type Reviews struct {
	Split    string
	Reviews  []Review
	Manifest []string // "split/class/file sha256", in the order of Reviews
}

// LoadReviews reads the official split "train" or "test" from dir (see
// DataDir). It requires exactly ReviewsPerFolder files named ID_RATING.txt
// in each class folder, with ratings that fit the class, and valid UTF-8.
func LoadReviews(dir, split string) (*Reviews, error) {
	if split != "train" && split != "test" {
		return nil, fmt.Errorf("imdb: unknown split %q, want \"train\" or \"test\"", split)
	}
	out := &Reviews{Split: split}
	for label, class := range []string{"neg", "pos"} {
		folder := filepath.Join(dir, split, class)
		ents, err := os.ReadDir(folder)
		if err != nil {
			return nil, fmt.Errorf("imdb: cannot read the review folder %s (set %s or check the module %s@%s): %w", folder, DirEnv, Module, ModuleVersion, err)
		}
		type file struct {
			name       string
			id, rating int
		}
		var files []file
		for _, e := range ents {
			name := e.Name()
			if !strings.HasSuffix(name, ".txt") {
				continue
			}
			id, rating, ok := parseReviewName(name)
			if !ok {
				return nil, fmt.Errorf("imdb: review file %s: name is not ID_RATING.txt", filepath.Join(folder, name))
			}
			if (label == 1 && (rating < 7 || rating > 10)) || (label == 0 && (rating < 1 || rating > 4)) {
				return nil, fmt.Errorf("imdb: review file %s: rating %d does not fit the class %s", filepath.Join(folder, name), rating, class)
			}
			files = append(files, file{name, id, rating})
		}
		if len(files) != ReviewsPerFolder {
			return nil, fmt.Errorf("imdb: review folder %s has %d review files, want %d (the data are incomplete or not the pinned module's)", folder, len(files), ReviewsPerFolder)
		}
		sort.Slice(files, func(i, j int) bool { return files[i].id < files[j].id })
		for _, f := range files {
			path := filepath.Join(folder, f.name)
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("imdb: cannot read review file %s: %w", path, err)
			}
			sum := sha256.Sum256(b)
			out.Reviews = append(out.Reviews, Review{ID: f.id, Rating: f.rating, Label: label, Text: string(b)})
			out.Manifest = append(out.Manifest, split+"/"+class+"/"+f.name+" "+hex.EncodeToString(sum[:]))
		}
	}
	return out, nil
}

func parseReviewName(name string) (id, rating int, ok bool) {
	base := strings.TrimSuffix(name, ".txt")
	a, b, found := strings.Cut(base, "_")
	if !found {
		return 0, 0, false
	}
	id, err1 := strconv.Atoi(a)
	rating, err2 := strconv.Atoi(b)
	return id, rating, err1 == nil && err2 == nil && id >= 0
}

// ManifestHash returns the SHA-256 (hex) of the sorted manifest lines of
// the given splits.
func ManifestHash(splits ...*Reviews) string {
	var lines []string
	for _, s := range splits {
		lines = append(lines, s.Manifest...)
	}
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// LoadAll reads both official splits from dir and checks them against the
// pinned manifest hash (ManifestSHA256): a changed, added or missing file
// is an error saying so.
func LoadAll(dir string) (train, test *Reviews, err error) {
	if train, err = LoadReviews(dir, "train"); err != nil {
		return nil, nil, err
	}
	if test, err = LoadReviews(dir, "test"); err != nil {
		return nil, nil, err
	}
	if got := ManifestHash(train, test); got != ManifestSHA256 {
		return nil, nil, fmt.Errorf("imdb: the reviews in %s fail their checksum: manifest SHA-256 %s, want %s (a review file is corrupt or not the pinned module's)", dir, got, ManifestSHA256)
	}
	return train, test, nil
}
