// Package atomicfile writes files so that a crash or an error never leaves a
// partial or corrupt file behind: the content goes to a temporary file in
// the destination directory, which is synced and then renamed over the
// destination. A failed write leaves any existing file untouched.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Write creates the parent directories of path, calls fill with a buffered
// writer on a temporary file, and renames the file to path only if fill and
// every flush, sync and close succeed.
func Write(path string, fill func(w *bufio.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil && tmp != "" {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<16)
	if err := fill(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if h := crashHook; h != nil && h(path) {
		f.Close()
		tmp = "" // a killed process leaves its temporary file behind
		return fmt.Errorf("atomicfile: %s: %w", path, ErrCrashed)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: close %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: rename to %s: %w", path, err)
	}
	// Make the rename itself durable; not every platform can sync a
	// directory, and the file is already complete, so this is best effort.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// ErrCrashed is returned by a write that a crash hook stopped.
var ErrCrashed = errors.New("simulated crash before rename")

// crashHook, when set, is asked before each rename whether to simulate a
// kill there: the write stops with ErrCrashed and leaves its temporary
// file, as a killed process would.
var crashHook func(path string) bool

// SetCrashHook installs a kill-injection hook for tests (nil removes it)
// and returns a function that restores the previous one. It is not safe
// to change the hook while writes run.
func SetCrashHook(h func(path string) bool) (restore func()) {
	old := crashHook
	crashHook = h
	return func() { crashHook = old }
}

// IsTemp reports whether a file name is one of Write's temporary files
// (".<name>.tmp-<random>").
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

// CleanTemps removes the temporary files that killed writes left in dir
// (not recursively) and returns how many it removed.
func CleanTemps(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, fmt.Errorf("atomicfile: %w", err)
	}
	n := 0
	for _, e := range ents {
		if !e.IsDir() && IsTemp(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return n, fmt.Errorf("atomicfile: %w", err)
			}
			n++
		}
	}
	return n, nil
}
