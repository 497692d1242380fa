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
