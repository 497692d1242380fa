package atomicfile

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFailedWriteLeavesExistingFileAndNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "result.csv")
	if err := Write(p, func(w *bufio.Writer) error { _, err := w.WriteString("good\n"); return err }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(p, func(w *bufio.Writer) error {
		w.WriteString("half-written")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the fill error", err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "good\n" {
		t.Fatalf("existing file changed to %q", b)
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Fatalf("%d entries left in the directory, want only the result", len(ents))
	}
}

// A crash hook stops a write before its rename and leaves the temporary
// file (as a kill would); CleanTemps removes it and nothing else.
func TestCrashHookLeavesTempAndCleanTempsRemovesIt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.txt")
	if err := Write(path, func(w *bufio.Writer) error { _, err := w.WriteString("old"); return err }); err != nil {
		t.Fatal(err)
	}
	restore := SetCrashHook(func(p string) bool { return p == path })
	err := Write(path, func(w *bufio.Writer) error { _, err := w.WriteString("new"); return err })
	restore()
	if !errors.Is(err, ErrCrashed) {
		t.Fatalf("err = %v, want ErrCrashed", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("destination %q after a crash, want the old content", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 || !IsTemp(ents[0].Name()) && !IsTemp(ents[1].Name()) {
		t.Fatalf("entries %v, want the file and one temporary", ents)
	}
	if n, err := CleanTemps(dir); err != nil || n != 1 {
		t.Fatalf("CleanTemps: %d, %v", n, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 || ents[0].Name() != "a.txt" {
		t.Fatalf("after cleaning: %v", ents)
	}
	if IsTemp("a.txt") || !IsTemp(".a.txt.tmp-123") {
		t.Fatal("IsTemp")
	}
}
