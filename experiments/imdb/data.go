package imdb

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	// The NB judge lives in the data module: importing it keeps the module
	// (and so the reviews) a real dependency in go.mod and go.sum, whose
	// content hash the Go module system checks on download.
	_ "github.com/cdipaolo/sentiment"
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
	var tried []string
	ok := func(modDir string) (string, bool) {
		if modDir == "" {
			return "", false
		}
		d := filepath.Join(modDir, "datasets")
		if st, err := os.Stat(filepath.Join(d, "train", "pos")); err == nil && st.IsDir() {
			dataDirCache.dir = d
			return d, true
		}
		tried = append(tried, d)
		return "", false
	}
	goBin, lookErr := exec.LookPath("go")
	if lookErr == nil {
		if out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Dir}}", Module).Output(); err == nil {
			if d, good := ok(strings.TrimSpace(string(out))); good {
				return d, nil
			}
		}
	}
	if cache := goModCache(goBin); cache != "" {
		if d, good := ok(filepath.Join(cache, escapeModulePath(Module)+"@"+ModuleVersion)); good {
			return d, nil
		}
	}
	if lookErr != nil {
		return "", fmt.Errorf("imdb: cannot find the IMDB reviews (module %s@%s; tried %v) and cannot download them: %v; set %s to a directory holding {train,test}/{pos,neg}/",
			Module, ModuleVersion, tried, lookErr, DirEnv)
	}
	cmd := exec.Command(goBin, "mod", "download", "-json", Module+"@"+ModuleVersion)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		err = errors.New(info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("imdb: go mod download %s@%s failed: %v %s", Module, ModuleVersion, err, strings.TrimSpace(stderr.String()))
	}
	if d, good := ok(info.Dir); good {
		return d, nil
	}
	return "", fmt.Errorf("imdb: cannot find the datasets directory of %s@%s (tried %v)", Module, ModuleVersion, tried)
}

// goModCache returns the module cache directory: $GOMODCACHE, else `go env
// GOMODCACHE`, else $GOPATH/pkg/mod or ~/go/pkg/mod.
func goModCache(goBin string) string {
	if c := os.Getenv("GOMODCACHE"); c != "" {
		return c
	}
	if goBin != "" {
		if out, err := exec.Command(goBin, "env", "GOMODCACHE").Output(); err == nil {
			if c := strings.TrimSpace(string(out)); c != "" {
				return c
			}
		}
	}
	if p := os.Getenv("GOPATH"); p != "" {
		return filepath.Join(filepath.SplitList(p)[0], "pkg", "mod")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, "go", "pkg", "mod")
	}
	return ""
}

// escapeModulePath applies the module cache's case encoding ('!' + lower).
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
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
