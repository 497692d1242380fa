//go:build slurm

// Integration tests of the Slurm backend against a real one-node cluster:
//
//	bash scripts/slurm-ci.sh go test -tags slurm -run Slurm -v ./cmd/ddsmc
//
// Each test compares the final results.csv (wall times aside) with a
// local-backend reference of the same sweep.
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// slurmEnv builds the ddsmc binary, a tiny trained GMM base, a 6-run sweep
// and its local reference results.
type slurmEnv struct {
	t             *testing.T
	tmp, bin, cfg string
	ref           []byte
}

func newSlurmEnv(t *testing.T) *slurmEnv {
	if os.Getenv("SLURM_CONF") == "" {
		t.Skip("no SLURM_CONF: run through scripts/slurm-ci.sh")
	}
	tmp := t.TempDir()
	e := &slurmEnv{t: t, tmp: tmp, bin: filepath.Join(tmp, "ddsmc")}
	if out, err := exec.Command("go", "build", "-o", e.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	base := filepath.Join(tmp, "base.toml")
	os.WriteFile(base, []byte(fmt.Sprintf(`name = "b"
out = %q
[data]
train_size = 500
val_size = 100
[model]
hidden = 16
layers = 1
embed = 8
[diffusion]
steps = 12
[train]
steps = 20
batch = 64
val_every = 20
val_samples = 1
checkpoint_every = 20
[eval]
emd_samples = 20
`, filepath.Join(tmp, "model"))), 0o644)
	e.cfg = filepath.Join(tmp, "sweep.toml")
	os.WriteFile(e.cfg, []byte(fmt.Sprintf(`name = "s"
base = %q
repeats = 3
workers = 1
seed = 5
[smc]
particles = 24
twist = "exact"
[variants.RP]
proposal = "reverse"
[variants.BoN]
method = "bon"
[sweep]
variant = ["RP", "BoN"]
`, base)), 0o644)
	if out, err := exec.Command(e.bin, "train", base).CombinedOutput(); err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	e.run(nil, "sweep", "-out", filepath.Join(tmp, "ref"), e.cfg)
	e.ref = e.results("ref")
	return e
}

func (e *slurmEnv) run(env []string, args ...string) (string, error) {
	c := exec.Command(e.bin, args...)
	c.Env = append(os.Environ(), env...)
	out, err := c.CombinedOutput()
	return string(out), err
}

func (e *slurmEnv) mustRun(env []string, args ...string) string {
	e.t.Helper()
	out, err := e.run(env, args...)
	if err != nil {
		e.t.Fatalf("ddsmc %v: %v\n%s", args, err, out)
	}
	return out
}

func (e *slurmEnv) results(dir string) []byte {
	b, err := os.ReadFile(filepath.Join(e.tmp, dir, "results.csv"))
	if err != nil {
		e.t.Fatal(err)
	}
	return stripWallCol(b)
}

func (e *slurmEnv) same(dir string) {
	e.t.Helper()
	if got := e.results(dir); !bytes.Equal(got, e.ref) {
		e.t.Fatalf("%s: slurm results differ from the local backend's:\n%s\n---\n%s", dir, e.ref, got)
	}
	filepath.WalkDir(filepath.Join(e.tmp, dir), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp-") {
			e.t.Errorf("%s left behind", p)
		}
		return nil
	})
}

func stripWallCol(b []byte) []byte {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	w := -1
	for i, h := range strings.Split(lines[0], ",") {
		if h == "wall_s" {
			w = i
		}
	}
	for i, l := range lines {
		f := strings.Split(l, ",")
		if w >= 0 && w < len(f) {
			f = append(f[:w], f[w+1:]...)
		}
		lines[i] = strings.Join(f, ",")
	}
	return []byte(strings.Join(lines, "\n"))
}

// waitFor polls until cond holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func records(dir string) int {
	m, _ := filepath.Glob(filepath.Join(dir, "runs", "*", "record.json"))
	return len(m)
}

func TestSlurmBackend(t *testing.T) {
	e := newSlurmEnv(t)

	t.Run("same results as local, any chunking and throttle", func(t *testing.T) {
		for i, args := range [][]string{{"-runs-per-task", "2"}, {"-runs-per-task", "3", "-throttle", "1"}} {
			dir := fmt.Sprintf("s%d", i)
			e.mustRun(nil, append(append([]string{"sweep", "-backend", "slurm", "-out", filepath.Join(e.tmp, dir)}, args...), e.cfg)...)
			e.same(dir)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		out, err := e.run(nil, "sweep", "-backend", "slurm", "-runs-per-task", "1", "-out", filepath.Join(e.tmp, "big"), e.cfg)
		if err == nil || !strings.Contains(out, "exceed the cluster's MaxArraySize") {
			t.Errorf("6 tasks over MaxArraySize 4: %v\n%s", err, out)
		}
		out, err = e.run(nil, "sweep", "-backend", "slurm", "-runs-per-task", "2", "-partition", "nope", "-out", filepath.Join(e.tmp, "np"), e.cfg)
		if err == nil || !strings.Contains(out, `partition "nope" does not exist`) {
			t.Errorf("missing partition: %v\n%s", err, out)
		}
		out, err = e.run([]string{"SLURM_CONF=" + filepath.Join(e.tmp, "none.conf")}, "sweep", "-backend", "slurm", "-runs-per-task", "2", "-out", filepath.Join(e.tmp, "nc"), e.cfg)
		if err == nil || !strings.Contains(out, "none.conf") {
			t.Errorf("a missing SLURM_CONF: %v\n%s", err, out)
		}
		// A controller that does not answer: the same cluster's config with
		// another port and a short message timeout.
		conf, _ := os.ReadFile(os.Getenv("SLURM_CONF"))
		dead := filepath.Join(e.tmp, "dead.conf")
		text := strings.Replace(string(conf), "SlurmctldPort=", "MessageTimeout=2\nSlurmctldPort=1", 1)
		os.WriteFile(dead, []byte(text), 0o644)
		out, err = e.run([]string{"SLURM_CONF=" + dead}, "sweep", "-backend", "slurm", "-runs-per-task", "2", "-out", filepath.Join(e.tmp, "dead"), e.cfg)
		if err == nil || !strings.Contains(out, "scontrol ping") {
			t.Errorf("no reachable controller: %v\n%s", err, out)
		}
	})

	t.Run("the sweep process killed while the array runs", func(t *testing.T) {
		dir := filepath.Join(e.tmp, "kill")
		c := exec.Command(e.bin, "sweep", "-backend", "slurm", "-runs-per-task", "1", "-throttle", "1", "-out", dir, e.cfg)
		c.Args = []string{e.bin, "sweep", "-backend", "slurm", "-runs-per-task", "2", "-throttle", "1", "-out", dir, e.cfg}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a first record", func() bool { return records(dir) >= 1 })
		c.Process.Kill()
		c.Wait()
		out := e.mustRun(nil, "sweep", "-backend", "slurm", "-runs-per-task", "2", "-throttle", "1", "-out", dir, e.cfg)
		if !strings.Contains(out, "re-attaching to job") {
			t.Errorf("the re-run did not re-attach to the running job:\n%s", out)
		}
		e.same("kill")
	})

	t.Run("a failing task, then resubmit exactly its runs", func(t *testing.T) {
		dir := filepath.Join(e.tmp, "fail")
		out, err := e.run([]string{"DDSMC_TEST_FAULT=fail-once:0001-00"}, "sweep", "-backend", "slurm", "-runs-per-task", "2", "-out", dir, e.cfg)
		if err == nil || !strings.Contains(out, "1 of 6 runs are missing") {
			t.Fatalf("first pass: %v\n%s", err, out)
		}
		out = e.mustRun(nil, "sweep", "-backend", "slurm", "-runs-per-task", "2", "-out", dir, e.cfg)
		if !strings.Contains(out, "1 to submit") {
			t.Errorf("the re-run did not resubmit exactly the missing run:\n%s", out)
		}
		e.same("fail")
	})

	t.Run("tasks cancelled with scancel", func(t *testing.T) {
		dir := filepath.Join(e.tmp, "cancel")
		e.mustRun(nil, "sweep", "-backend", "slurm", "-detach", "-runs-per-task", "2", "-throttle", "1", "-out", dir, e.cfg)
		waitFor(t, "a first record", func() bool { return records(dir) >= 1 })
		st := e.mustRun(nil, "sweep", "-status", dir)
		id := strings.Fields(st[strings.Index(st, "job "):])[1]
		if out, err := exec.Command("scancel", id).CombinedOutput(); err != nil {
			t.Fatalf("scancel %s: %v %s", id, err, out)
		}
		waitFor(t, "the job to end", func() bool {
			out, _ := exec.Command("squeue", "-h", "-j", id, "-t", "PD,R,CG").Output()
			return len(bytes.TrimSpace(out)) == 0
		})
		out := e.mustRun(nil, "sweep", "-backend", "slurm", "-runs-per-task", "2", "-out", dir, e.cfg)
		if strings.Contains(out, " 0 to submit") {
			t.Errorf("nothing resubmitted after scancel:\n%s", out)
		}
		e.same("cancel")
	})

	t.Run("slurmctld restarted mid-array", func(t *testing.T) {
		restart := os.Getenv("SLURM_CI_RESTART_CTLD")
		if restart == "" {
			t.Skip("no SLURM_CI_RESTART_CTLD")
		}
		dir := filepath.Join(e.tmp, "restart")
		c := exec.Command(e.bin, "sweep", "-backend", "slurm", "-runs-per-task", "2", "-throttle", "1", "-out", dir, e.cfg)
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a first record", func() bool { return records(dir) >= 1 })
		if b, err := exec.Command("bash", restart).CombinedOutput(); err != nil {
			t.Fatalf("restart: %v %s", err, b)
		}
		if err := c.Wait(); err != nil {
			// The controller may have lost a pending task; the same command resumes.
			e.mustRun(nil, "sweep", "-backend", "slurm", "-runs-per-task", "2", "-out", dir, e.cfg)
		}
		e.same("restart")
	})

	t.Run("a task killed while it writes", func(t *testing.T) {
		dir := filepath.Join(e.tmp, "crash")
		out, err := e.run([]string{"DDSMC_TEST_FAULT=crash-write:2"}, "sweep", "-backend", "slurm", "-runs-per-task", "2", "-out", dir, e.cfg)
		if err == nil || !strings.Contains(out, "missing") {
			t.Fatalf("first pass: %v\n%s", err, out)
		}
		e.mustRun(nil, "sweep", "-backend", "slurm", "-runs-per-task", "2", "-out", dir, e.cfg)
		e.same("crash")
	})
}
