package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The command line: usage errors exit 2 with the usage, bad configs exit 1
// naming the problem, results go to stdout and logs to stderr.
func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[data]\nname = \"gmm7\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gmmReward := filepath.Join(dir, "gmmreward.toml")
	if err := os.WriteFile(gmmReward, []byte("[reward]\ntarget = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{nil, 2, "", "Usage:"},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"tasks"}, 0, "gmm1\ngmm2\n", ""},
		{[]string{"smc"}, 2, "", "exactly one config argument"},
		{[]string{"smc", bad}, 1, "", "gmm1, gmm2"},
		{[]string{"smc", gmmReward}, 1, "", "unknown key reward, reward.target"},
		{[]string{"prepare", "gmm1"}, 0, "task gmm1 needs no preparation", ""},
		{[]string{"demo", "extra"}, 2, "", `no demo "extra" (built in: gmm, imdb)`},
		{[]string{"demo", "imdb", "gmm"}, 2, "", "at most one demo name"},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		if code != c.code || !strings.Contains(out.String(), c.stdout) || !strings.Contains(errb.String(), c.stderr) {
			t.Errorf("ddsmc %v: exit %d, stdout %q, stderr %q; want exit %d, stdout containing %q, stderr containing %q",
				c.args, code, out.String(), errb.String(), c.code, c.stdout, c.stderr)
		}
	}
}
