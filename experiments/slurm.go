package experiments

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ddsmc/ddsmc/internal/atomicfile"
)

// The Slurm backend. A sweep is planned once, locally (sweep.json: the
// points, seeds, resolved config and the checkpoints' SHA-256), then its
// missing runs are submitted as one `sbatch --array` job whose task i runs
// chunk i of them (RunsPerTask runs each) through the same RunPoint as the
// local backend, writing into the same store. The submitting command waits
// with a progress line, reading task states from squeue and finished runs
// from the store, then rebuilds results.csv. Re-running the same command
// resumes: it re-attaches to a submission whose job is still queued or
// running (the job is recognised by its id and its unique name, since Slurm
// reuses ids after a controller crash) and resubmits only the runs that
// are neither finished nor covered by such a job.
//
// A submission is recorded in DIR/slurm/<token>.json before sbatch runs
// (its chunks), and its job id is added after.

// SlurmOptions are the Slurm backend's settings.
type SlurmOptions struct {
	Partition   string        // sbatch --partition ("" = the cluster's default)
	Time        string        // sbatch --time, e.g. "1:00:00" ("" = the partition's default)
	Mem         string        // sbatch --mem, e.g. "4G" ("" = default)
	CPUs        int           // sbatch --cpus-per-task (0 = default); also the runs' smc.workers
	Throttle    int           // array throttle: --array=…%Throttle (0 = none)
	RunsPerTask int           // runs per array task (0 = 1)
	Args        []string      // further sbatch arguments, passed as given
	Detach      bool          // submit and return without waiting
	Poll        time.Duration // status poll interval (0 = 1 s)
	Timeout     time.Duration // give up waiting for an unreachable controller after this long (0 = 2 min)
	Exe         string        // the ddsmc binary the tasks run (default: this executable)
}

// slurmSubmission is DIR/slurm/<token>.json.
type slurmSubmission struct {
	Token   string     `json:"token"`
	Name    string     `json:"job_name"`
	JobID   string     `json:"job_id,omitempty"`
	Chunks  [][]string `json:"chunks"` // run ids per array index
	Created string     `json:"created"`
	Workdir string     `json:"workdir"`
}

func slurmDir(dir string) string { return filepath.Join(dir, "slurm") }

// readSubmissions reads every submission recorded in dir.
func readSubmissions(dir string) ([]*slurmSubmission, error) {
	ents, err := os.ReadDir(slurmDir(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("experiments: %w", err)
	}
	var out []*slurmSubmission
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || atomicfile.IsTemp(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(slurmDir(dir), e.Name()))
		if err != nil {
			return nil, fmt.Errorf("experiments: %w", err)
		}
		var s slurmSubmission
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("experiments: %s/slurm/%s: %w", dir, e.Name(), err)
		}
		out = append(out, &s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created < out[j].Created })
	return out, nil
}

func (s *slurmSubmission) save(dir string) error {
	return writeJSON(filepath.Join(slurmDir(dir), s.Token+".json"), s)
}

// slurmCmd runs a Slurm client command and returns its stdout; a failure
// is an error naming the command and what it printed.
func slurmCmd(name string, args ...string) (string, error) {
	var out, errb bytes.Buffer
	c := exec.Command(name, args...)
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = strings.TrimSpace(out.String())
		}
		return out.String(), fmt.Errorf("experiments: slurm: `%s %s` failed (%v): %s", name, strings.Join(args, " "), err, msg)
	}
	return out.String(), nil
}

// taskState is one array task's state from squeue.
type taskState struct {
	Index int
	State string
}

// parseSqueue parses `squeue -h -r -o %K|%T|%j` lines of one job: the
// array index, state and job name; lines of other names are dropped.
func parseSqueue(out, name string) ([]taskState, error) {
	var ts []taskState
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) != 3 {
			return nil, fmt.Errorf("experiments: slurm: unexpected squeue line %q", line)
		}
		if f[2] != name {
			continue
		}
		i, err := strconv.Atoi(f[0])
		if err != nil {
			return nil, fmt.Errorf("experiments: slurm: unexpected array index in squeue line %q", line)
		}
		ts = append(ts, taskState{i, f[1]})
	}
	return ts, nil
}

// active reports whether a Slurm state is not final.
func active(state string) bool {
	switch state {
	case "PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "REQUEUED", "RESIZING", "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED", "STAGE_OUT", "SIGNALING":
		return true
	}
	return false
}

// jobStates returns the states of a submission's array tasks ("gone"
// when the controller no longer knows the job, or knows it under another
// name: Slurm reuses job ids after a controller crash).
func jobStates(s *slurmSubmission) (states []taskState, gone bool, err error) {
	out, err := slurmCmd("squeue", "-h", "-r", "-j", s.JobID, "-t", "all", "-o", "%K|%T|%j")
	if err != nil {
		if strings.Contains(err.Error(), "Invalid job id") {
			return nil, true, nil
		}
		return nil, false, err
	}
	states, err = parseSqueue(out, s.Name)
	if err != nil {
		return nil, false, err
	}
	return states, len(states) == 0, nil
}

// pingSlurm checks that SLURM_CONF (if set) exists and the controller
// answers.
func pingSlurm() error {
	if c := os.Getenv("SLURM_CONF"); c != "" {
		if _, err := os.Stat(c); err != nil {
			return fmt.Errorf("experiments: slurm: SLURM_CONF = %s: %w (the Slurm clients would retry for a minute)", c, err)
		}
	}
	if _, err := slurmCmd("scontrol", "ping"); err != nil {
		return fmt.Errorf("%w (is a Slurm controller running, and SLURM_CONF set?)", err)
	}
	return nil
}

// checkSlurm checks that the controller answers, the partition exists and
// the array fits MaxArraySize.
func checkSlurm(o SlurmOptions, tasks int) error {
	if err := pingSlurm(); err != nil {
		return err
	}
	if o.Partition != "" {
		out, err := slurmCmd("sinfo", "-h", "-p", o.Partition, "-o", "%P")
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) == "" {
			all, _ := slurmCmd("sinfo", "-h", "-o", "%P")
			return fmt.Errorf("experiments: slurm: partition %q does not exist (partitions: %s)", o.Partition, strings.Join(strings.Fields(all), ", "))
		}
	}
	out, err := slurmCmd("scontrol", "show", "config")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "MaxArraySize" {
			if m, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && tasks > m-1 {
				return fmt.Errorf("experiments: slurm: %d array tasks exceed the cluster's MaxArraySize = %d: raise -runs-per-task (runs per array task)", tasks, m)
			}
		}
	}
	return nil
}

// RunSweepSlurm is RunSweep on a Slurm cluster (see the package's Slurm
// notes above SlurmOptions): it plans the sweep, re-attaches to its
// submissions that are still queued or running, submits the other missing
// runs as one array job, waits (unless o.Detach), and rebuilds
// results.csv. It returns the finished runs' records, and an error if any
// run is missing after the jobs ended (re-running resubmits exactly those).
func RunSweepSlurm(sc *SweepConfig, raw []byte, dir string, o SlurmOptions, log io.Writer) ([]Record, error) {
	if o.RunsPerTask <= 0 {
		o.RunsPerTask = 1
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("experiments: slurm: %w", err)
		}
		o.Exe = exe
	}
	if raw == nil {
		return nil, fmt.Errorf("experiments: slurm: the sweep file's text is needed (the array tasks re-read it from DIR/sweep.toml)")
	}
	pl, err := planSweep(sc, raw, dir, false, sc.AutoTrain, log)
	if err != nil {
		return nil, err
	}
	if err := pingSlurm(); err != nil {
		return nil, err
	}
	subs, err := readSubmissions(dir)
	if err != nil {
		return nil, err
	}
	// Runs covered by a submission whose job is still active are not resubmitted.
	covered := map[string]bool{}
	var live []*slurmSubmission
	for _, s := range subs {
		if s.JobID == "" {
			continue // sbatch never returned (killed): nothing was queued under it that we can track
		}
		states, gone, err := jobStates(s)
		if err != nil {
			return nil, err
		}
		if gone {
			continue
		}
		on := false
		for _, t := range states {
			if active(t.State) && t.Index < len(s.Chunks) {
				on = true
				for _, id := range s.Chunks[t.Index] {
					covered[id] = true
				}
			}
		}
		if on {
			live = append(live, s)
			fmt.Fprintf(log, "slurm: re-attaching to job %s (%s)\n", s.JobID, s.Name)
		}
	}
	if len(live) == 0 { // nothing runs the sweep: safe to clean what killed writes left
		if err := cleanSweepDir(dir); err != nil {
			return nil, err
		}
	}
	var missing []string
	for _, j := range pl.todo {
		if id := runID(j.p, j.r); !covered[id] {
			missing = append(missing, id)
		}
	}
	fmt.Fprintf(log, "sweep %s on slurm: %d runs, %d done, %d in live jobs, %d to submit (%d per task)\n",
		sc.Name, pl.total(), pl.total()-len(pl.todo), len(pl.todo)-len(missing), len(missing), o.RunsPerTask)
	if len(missing) > 0 {
		s, err := submit(dir, sc, missing, o)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "slurm: submitted job %s (%s): %d array tasks\n", s.JobID, s.Name, len(s.Chunks))
		live = append(live, s)
	}
	if o.Detach {
		fmt.Fprintf(log, "slurm: detached; `ddsmc sweep -status %s` reports, and the same sweep command waits again or resumes\n", dir)
		return nil, nil
	}
	if err := waitJobs(pl, live, o, log); err != nil {
		return nil, err
	}
	pl.scan(nil)
	out, err := pl.finish()
	if err != nil {
		return out, err
	}
	if n := len(pl.todo); n > 0 {
		return out, fmt.Errorf("experiments: slurm: %d of %d runs are missing after the jobs ended (failed or cancelled tasks; see %s/slurm/*.out): re-run the same command to resubmit exactly those", n, pl.total(), dir)
	}
	fmt.Fprintf(log, "sweep %s: all %d runs done; results in %s\n", sc.Name, pl.total(), filepath.Join(dir, "results.csv"))
	if sc.Pool != nil {
		if _, err := PoolSweep(sc, dir, log); err != nil {
			return out, err
		}
	}
	return out, nil
}

// submit records and submits one array job over the runs ids.
func submit(dir string, sc *SweepConfig, ids []string, o SlurmOptions) (*slurmSubmission, error) {
	var chunks [][]string
	for i := 0; i < len(ids); i += o.RunsPerTask {
		chunks = append(chunks, ids[i:min(i+o.RunsPerTask, len(ids))])
	}
	if err := checkSlurm(o, len(chunks)); err != nil {
		return nil, err
	}
	var nonce [6]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("experiments: slurm: %w", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("experiments: slurm: %w", err)
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("experiments: slurm: %w", err)
	}
	token := time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(nonce[:])
	s := &slurmSubmission{Token: token, Name: "ddsmc-" + sc.Name + "-" + hex.EncodeToString(nonce[:]), Chunks: chunks,
		Created: time.Now().UTC().Format(time.RFC3339Nano), Workdir: wd}
	if err := s.save(dir); err != nil {
		return nil, err
	}
	array := fmt.Sprintf("0-%d", len(chunks)-1)
	if o.Throttle > 0 {
		array += "%" + strconv.Itoa(o.Throttle)
	}
	args := []string{"--parsable", "--array=" + array, "--job-name=" + s.Name, "--chdir=" + wd,
		"--output=" + filepath.Join(absDir, "slurm", token+"-%a.out"), "--open-mode=append"}
	if o.Partition != "" {
		args = append(args, "--partition="+o.Partition)
	}
	if o.Time != "" {
		args = append(args, "--time="+o.Time)
	}
	if o.Mem != "" {
		args = append(args, "--mem="+o.Mem)
	}
	if o.CPUs > 0 {
		args = append(args, "--cpus-per-task="+strconv.Itoa(o.CPUs))
	}
	args = append(args, o.Args...)
	task := []string{o.Exe, "sweep-task", "-submission", token}
	if o.CPUs > 0 {
		task = append(task, "-workers", strconv.Itoa(o.CPUs))
	}
	task = append(task, absDir)
	args = append(args, "--wrap", shellJoin(task))
	out, err := slurmCmd("sbatch", args...)
	if err != nil {
		return nil, err
	}
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";")
	if _, err := strconv.Atoi(id); err != nil {
		return nil, fmt.Errorf("experiments: slurm: sbatch printed %q, not a job id", out)
	}
	s.JobID = id
	return s, s.save(dir)
}

// shellJoin quotes words for sh.
func shellJoin(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// waitJobs polls the submissions' task states and the store until no task
// is queued or running, with a progress line.
func waitJobs(pl *sweepPlan, subs []*slurmSubmission, o SlurmOptions, log io.Writer) error {
	start := time.Now()
	var unreachable time.Time
	last := ""
	for {
		counts := map[string]int{}
		busy := false
		var ferr error
		for _, s := range subs {
			states, gone, err := jobStates(s)
			if err != nil {
				ferr = err
				break
			}
			if gone {
				continue
			}
			for _, t := range states {
				counts[t.State]++
				if active(t.State) {
					busy = true
				}
			}
		}
		if ferr != nil { // a controller restart: retry until the timeout
			if unreachable.IsZero() {
				unreachable = time.Now()
				fmt.Fprintf(log, "slurm: %v; retrying\n", ferr)
			}
			if time.Since(unreachable) > o.Timeout {
				return fmt.Errorf("%w (unreachable for %s; the jobs may still run: re-run the same command later)", ferr, o.Timeout)
			}
			time.Sleep(o.Poll)
			continue
		}
		unreachable = time.Time{}
		done := pl.countDone()
		failed := counts["FAILED"] + counts["CANCELLED"] + counts["TIMEOUT"] + counts["NODE_FAIL"] + counts["OUT_OF_MEMORY"] + counts["BOOT_FAIL"] + counts["DEADLINE"] + counts["PREEMPTED"]
		el := time.Since(start).Seconds()
		eta := "?"
		if d := done - (pl.total() - len(pl.todo)); d > 0 {
			eta = fmtDur(el / float64(d) * float64(pl.total()-done))
		}
		line := fmt.Sprintf("slurm: %d/%d runs done; tasks %d running, %d pending, %d failed (elapsed %s, eta %s)", done, pl.total(),
			counts["RUNNING"]+counts["COMPLETING"], counts["PENDING"]+counts["REQUEUED"], failed, fmtDur(el), eta)
		if line != last {
			fmt.Fprintln(log, line)
			last = line
		}
		if !busy {
			return nil
		}
		time.Sleep(o.Poll)
	}
}

// countDone counts the planned runs whose record exists.
func (pl *sweepPlan) countDone() int {
	n := 0
	for _, pt := range pl.pts {
		for r := range pl.sc.Repeats {
			if exists(filepath.Join(runDir(pl.dir, pt.Index, r), "record.json")) {
				n++
			}
		}
	}
	return n
}

// RunSweepTask is the body of one Slurm array task: it re-reads the sweep
// from dir (DIR/sweep.toml, whose fingerprint must be the plan's), and
// performs the runs of chunk index of submission token that are not done,
// with workers goroutines per run (0: the plan's smc.workers).
func RunSweepTask(dir, token string, index, workers int, log io.Writer) error {
	raw, err := os.ReadFile(filepath.Join(dir, "sweep.toml"))
	if err != nil {
		return fmt.Errorf("experiments: sweep task: %w", err)
	}
	sc, err := ParseSweep(filepath.Join(dir, "sweep.toml"), raw)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(slurmDir(dir), token+".json"))
	if err != nil {
		return fmt.Errorf("experiments: sweep task: %w", err)
	}
	var s slurmSubmission
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("experiments: sweep task: %s: %w", token, err)
	}
	if index < 0 || index >= len(s.Chunks) {
		return fmt.Errorf("experiments: sweep task: array index %d outside the submission's %d tasks", index, len(s.Chunks))
	}
	pl, err := planSweep(sc, raw, dir, false, false, log)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, id := range s.Chunks[index] {
		want[id] = true
	}
	if err := crashHook(dir, token, index); err != nil {
		return err
	}
	cache := NewSamplerCache()
	var errs []error
	for _, j := range pl.todo {
		id := runID(j.p, j.r)
		if !want[id] {
			continue
		}
		if err := faultHook(dir, id); err != nil {
			return err
		}
		pt := pl.pts[j.p]
		if workers > 0 {
			pt.SMC.Workers = workers
			pl.pts[j.p] = pt
		}
		rec, err := pl.runOne(j, 1, cache)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(log, "run %s (%s): reward %.4f, %.1fs\n", id, describe(pt.Settings), rec.Metrics["reward_mean"], rec.Metrics["wall_s"])
	}
	return errors.Join(errs...)
}

// FaultEnv names the environment variable of the Slurm fault tests:
// "fail-once:<run id>" makes the array task that reaches that run exit
// with an error the first time, and "crash-write:<k>" kills the first
// array task to start (exit 9, as SIGKILL would leave it) in the middle of
// its k-th file write, after the data and before the rename. A marker file
// in DIR/slurm makes each fault happen once.
const FaultEnv = "DDSMC_TEST_FAULT"

func crashHook(dir, token string, index int) error {
	kind, arg, _ := strings.Cut(os.Getenv(FaultEnv), ":")
	if kind != "crash-write" {
		return nil
	}
	k, err := strconv.Atoi(arg)
	if err != nil {
		return fmt.Errorf("experiments: %s = %q: want crash-write:<k>", FaultEnv, os.Getenv(FaultEnv))
	}
	marker := filepath.Join(slurmDir(dir), "fault-crash")
	f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil // another task took the fault
	}
	f.Close()
	n := 0
	atomicfile.SetCrashHook(func(string) bool {
		if n++; n == k {
			os.Exit(9)
		}
		return false
	})
	return nil
}

func faultHook(dir, id string) error {
	f := os.Getenv(FaultEnv)
	if f == "" {
		return nil
	}
	kind, arg, _ := strings.Cut(f, ":")
	if kind == "fail-once" && arg == id {
		marker := filepath.Join(slurmDir(dir), "fault-"+id)
		if !exists(marker) {
			if err := os.WriteFile(marker, nil, 0o644); err != nil {
				return err
			}
			return fmt.Errorf("experiments: injected fault (%s=%s)", FaultEnv, f)
		}
	}
	return nil
}

// SweepStatus reports a sweep directory: runs done of the plan, and each
// Slurm submission's job and task states (when a controller answers).
// It also rebuilds results.csv from the finished runs.
func SweepStatus(dir string) (string, error) {
	meta, err := readSweepMeta(dir)
	if err != nil {
		return "", err
	}
	total := len(meta.Points) * meta.Repeats
	done := 0
	for _, pt := range meta.Points {
		for r := range meta.Repeats {
			if rec, err := ReadRecord(runDir(dir, pt.Index, r)); err == nil && checkRecord(rec, pt, r, meta.Seed+uint64(r)) == nil {
				done++
			}
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "sweep %s (task %s): %d/%d runs done\n", meta.Name, meta.Data, done, total)
	subs, err := readSubmissions(dir)
	if err != nil {
		return "", err
	}
	for _, s := range subs {
		if s.JobID == "" {
			fmt.Fprintf(&sb, "submission %s: never submitted (sbatch did not return)\n", s.Token)
			continue
		}
		states, gone, err := jobStates(s)
		switch {
		case err != nil:
			fmt.Fprintf(&sb, "job %s (%s): %v\n", s.JobID, s.Name, err)
		case gone:
			fmt.Fprintf(&sb, "job %s (%s): %d tasks, no longer known to the controller\n", s.JobID, s.Name, len(s.Chunks))
		default:
			counts := map[string]int{}
			for _, t := range states {
				counts[t.State]++
			}
			keys := make([]string, 0, len(counts))
			for k := range counts {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%d %s", counts[k], strings.ToLower(k)))
			}
			fmt.Fprintf(&sb, "job %s (%s): %d tasks: %s\n", s.JobID, s.Name, len(s.Chunks), strings.Join(parts, ", "))
		}
	}
	return sb.String(), nil
}
