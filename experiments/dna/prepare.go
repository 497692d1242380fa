package dna

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/internal/atomicfile"
)

// Source is one file the task needs, shipped inside a Debian package:
// Prepare obtains it with `apt-get download` and `dpkg-deb -x` (nothing is
// installed) and checks its SHA-256.
type Source struct {
	Name    string // file name in the data directory
	Package string // Debian package, pinned: name=version
	Deb     string // the .deb file apt-get download writes
	Path    string // path of the file inside the package
	SHA256  string // checksum of the file (not of the .deb)
}

// Sources are the two source files, with the checksums measured in
// domains.md §2.1: the dm3 upstream2000 FASTA (UCSC, in Biostrings'
// extdata) and the JASPAR insect matrices (in PWMEnrich's extdata).
var Sources = []Source{
	{Name: FastaFile, Package: "r-bioc-biostrings=2.66.0-1", Deb: "r-bioc-biostrings_2.66.0-1_amd64.deb",
		Path:   "usr/lib/R/site-library/Biostrings/extdata/dm3_upstream2000.fa.gz",
		SHA256: "78076ae22e0084cfb4d6775b000ed9d8fadcefe2469aacce76b78f5a427a08f4"},
	{Name: JasparFile, Package: "r-bioc-pwmenrich=4.34.0-1", Deb: "r-bioc-pwmenrich_4.34.0-1_all.deb",
		Path:   "usr/lib/R/site-library/PWMEnrich/extdata/jaspar-insecta.jaspar",
		SHA256: "4612ac626ca4566b3e28311c39ca1511b8c9c2d48b7106f96d89566469ef3440"},
}

// File names of the sources in the data directory.
const (
	FastaFile  = "dm3_upstream2000.fa.gz"
	JasparFile = "jaspar-insecta.jaspar"
)

// DefaultDataDir is the default data directory ([data] dir).
const DefaultDataDir = "runs/dna/data"

// ErrChecksum marks a source file whose SHA-256 is not the pinned one.
var ErrChecksum = errors.New("dna: checksum mismatch")

// fileSHA256 returns the hex SHA-256 of a file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// VerifySource checks that dir holds s with the pinned checksum. A missing
// file is task.ErrNotPrepared; a wrong checksum is ErrChecksum.
func VerifySource(dir string, s Source) error {
	path := filepath.Join(dir, s.Name)
	sum, err := fileSHA256(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dna: missing source file %s (run `ddsmc prepare dna`): %w", path, task.ErrNotPrepared)
	}
	if err != nil {
		return fmt.Errorf("dna: %w", err)
	}
	if sum != s.SHA256 {
		return fmt.Errorf("%w: %s has SHA-256 %s, want %s (delete it and run `ddsmc prepare dna`)", ErrChecksum, path, sum, s.SHA256)
	}
	return nil
}

// ManualInstructions are the exact commands that put the sources into dir
// by hand, for machines where apt-get is not available to Prepare.
func ManualInstructions(dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "on a Debian 12 (bookworm) machine, run:\n  apt-get update\n  apt-get download")
	for _, s := range Sources {
		fmt.Fprintf(&b, " %s", s.Package)
	}
	b.WriteString("\n")
	for _, s := range Sources {
		fmt.Fprintf(&b, "  dpkg-deb -x %s x\n", s.Deb)
	}
	fmt.Fprintf(&b, "then copy these files into %s:\n", dir)
	for _, s := range Sources {
		fmt.Fprintf(&b, "  x/%s  (SHA-256 %s)\n", s.Path, s.SHA256)
	}
	return b.String()
}

// Prepare obtains the missing sources (all of them with force) into dir:
// `apt-get download` of the pinned packages into a scratch directory,
// `dpkg-deb -x`, checksum of the extracted file, then an atomic copy into
// dir. A file already present with the right checksum is kept. When apt-get
// or dpkg-deb is unavailable or fails, the error carries ManualInstructions.
func Prepare(dir string, force bool, log io.Writer) error {
	var todo []Source
	for _, s := range Sources {
		err := VerifySource(dir, s)
		switch {
		case err == nil && !force:
			fmt.Fprintf(log, "dna: %s is present and verified\n", filepath.Join(dir, s.Name))
		case err == nil || errors.Is(err, task.ErrNotPrepared) || errors.Is(err, ErrChecksum):
			if errors.Is(err, ErrChecksum) {
				fmt.Fprintf(log, "%v: fetching it again\n", err)
			}
			todo = append(todo, s)
		default:
			return err
		}
	}
	if len(todo) == 0 {
		return nil
	}
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("dna: %s is not available (%v); to prepare the data by hand, %s", tool, err, ManualInstructions(dir))
		}
	}
	scratch, err := os.MkdirTemp("", "ddsmc-dna-*")
	if err != nil {
		return fmt.Errorf("dna: %w", err)
	}
	defer os.RemoveAll(scratch)
	run := func(name string, args ...string) error {
		cmd := exec.Command(name, args...)
		cmd.Dir = scratch
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("dna: %s %s: %v: %s\nTo prepare the data by hand, %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)), ManualInstructions(dir))
		}
		return nil
	}
	args := []string{"download"}
	for _, s := range todo {
		args = append(args, s.Package)
	}
	fmt.Fprintf(log, "dna: apt-get %s (in %s)\n", strings.Join(args, " "), scratch)
	if err := run("apt-get", args...); err != nil {
		// The package lists may be stale or absent: update once and retry.
		fmt.Fprintf(log, "dna: apt-get download failed; running apt-get update and retrying\n")
		if uerr := run("apt-get", "update"); uerr != nil {
			return err
		}
		if err := run("apt-get", args...); err != nil {
			return err
		}
	}
	for _, s := range todo {
		if err := run("dpkg-deb", "-x", s.Deb, "x"); err != nil {
			return err
		}
		src := filepath.Join(scratch, "x", filepath.FromSlash(s.Path))
		sum, err := fileSHA256(src)
		if err != nil {
			return fmt.Errorf("dna: %s has no %s: %w", s.Deb, s.Path, err)
		}
		if sum != s.SHA256 {
			return fmt.Errorf("%w: %s in %s has SHA-256 %s, want %s", ErrChecksum, s.Path, s.Deb, sum, s.SHA256)
		}
		if err := copyAtomic(src, filepath.Join(dir, s.Name)); err != nil {
			return err
		}
		fmt.Fprintf(log, "dna: wrote %s (SHA-256 verified)\n", filepath.Join(dir, s.Name))
	}
	return nil
}

// copyAtomic copies src to dst through internal/atomicfile.
func copyAtomic(src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("dna: %w", err)
	}
	defer f.Close()
	return atomicfile.Write(dst, func(w *bufio.Writer) error {
		_, err := io.Copy(w, f)
		return err
	})
}
