// Command ddsmc trains masked-diffusion denoisers, samples from them and
// steers them with Sequential Monte Carlo toward reward-tilted targets.
//
//	ddsmc demo                         the built-in default: the quick GMM-1 SMC comparison
//	ddsmc prepare [-force] <config>    make a task's artefacts (e.g. the MNIST reward classifiers)
//	ddsmc train   <config>             train a denoiser
//	ddsmc sample  <config>             draw unguided samples and score them
//	ddsmc smc     <config>             run SMC (or a baseline) on the reward-tilted target
//	ddsmc train-proposal <config>      train an amortised proposal q_φ (log-variance loss)
//	ddsmc sweep   <sweep>              run a resumable sweep of SMC settings, R seeded repeats each
//	ddsmc plot    <dir>                (re)draw a sweep's figures and print its table
//	ddsmc configs                      list the built-in configs
//	ddsmc tasks                        list the registered tasks
//
// A config argument is a TOML file path or the name of a built-in config.
// Progress and logs go to stderr, results to stdout. Every subcommand has
// -h. The domains are the packages imported below for their side effect
// of registering their tasks: adding a domain adds one import line.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/ddsmc/ddsmc/configs"
	"github.com/ddsmc/ddsmc/experiments"
	"github.com/ddsmc/ddsmc/experiments/task"

	// The domains: each registers its tasks.
	_ "github.com/ddsmc/ddsmc/experiments/dna"   // dna
	_ "github.com/ddsmc/ddsmc/experiments/gmm"   // gmm1, gmm2
	_ "github.com/ddsmc/ddsmc/experiments/imdb"  // imdb
	_ "github.com/ddsmc/ddsmc/experiments/mnist" // mnist
)

const usage = `ddsmc: SMC steering of masked discrete diffusion models

Usage:
  ddsmc demo   [flags]                  the built-in default: the quick GMM-1 SMC comparison (trains the denoiser if needed)
  ddsmc prepare [flags] <config|name>   make the task's artefacts (e.g. the MNIST reward classifiers); -force redoes them
  ddsmc train  [flags] <config|name>    train a denoiser from a TOML config
  ddsmc sample [flags] <config|name>    draw unguided samples from a trained denoiser and report them
  ddsmc smc    [flags] <config|name>    steer a trained denoiser with SMC ([smc] table): record, samples, trace, figure
  ddsmc train-proposal [flags] <config|name>  train an amortised proposal q_φ ([proposal] table) for SMC-amot
  ddsmc sweep  [flags] <sweep|name>     run a sweep (Cartesian product × repeats) into -out DIR; resumable; -rescore
  ddsmc plot   [flags] <dir>            (re)draw a sweep's figures from DIR/results.csv and print its table
  ddsmc configs                         list the built-in configs
  ddsmc tasks                           list the registered tasks
  ddsmc bench  [flags]                  time SMC on the PyTorch peer's workloads, one JSON line each

Progress goes to stderr, results to stdout. Run 'ddsmc <command> -h' for the flags of a command.
`

// errUsage marks errors caused by the command line itself (exit code 2).
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code. A panic is
// reported as an internal error rather than crashing with a trace.
func run(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "ddsmc: internal error: %v\n%s", r, debug.Stack())
			code = 3
		}
	}()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "train":
		err = cmdTrain(rest, stdout, stderr)
	case "sample":
		err = cmdSample(rest, stdout, stderr)
	case "smc":
		err = cmdSMC(rest, stdout, stderr)
	case "sweep":
		err = cmdSweep(rest, stdout, stderr)
	case "train-proposal":
		err = cmdTrainProposal(rest, stdout, stderr)
	case "prepare":
		err = cmdPrepare(rest, stdout, stderr)
	case "sweep-task":
		err = cmdSweepTask(rest, stdout, stderr)
	case "tasks":
		for _, n := range task.Names() {
			fmt.Fprintln(stdout, n)
		}
	case "plot":
		err = cmdPlot(rest, stdout, stderr)
	case "demo":
		err = cmdDemo(rest, stdout, stderr)
	case "bench":
		err = cmdBench(rest, stdout, stderr)
	case "configs":
		for _, n := range configs.Names() {
			fmt.Fprintln(stdout, n)
		}
	default:
		fmt.Fprintf(stderr, "ddsmc: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "ddsmc: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "ddsmc: %v\n", err)
		return 1
	}
}

// common holds the flags every run command shares.
type common struct {
	out     string
	profile string
}

func newFlags(name, args, doc string, stderr io.Writer) (*flag.FlagSet, *common) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &common{}
	fs.StringVar(&c.out, "out", "", "output directory (default: the config's out, runs/<name>)")
	fs.StringVar(&c.profile, "cpuprofile", "", "write a pprof CPU profile to this file")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ddsmc %s [flags] %s\n\n%s\n\nFlags:\n", name, args, doc)
		fs.PrintDefaults()
	}
	return fs, c
}

// loadConfig reads a config path, or a built-in config by name.
func loadConfig(arg string) (experiments.Config, error) {
	b, err := experiments.ConfigText(arg)
	if err != nil {
		return experiments.Config{}, err
	}
	return experiments.Parse(arg, b)
}

func parseRun(name, doc string, args []string, stderr io.Writer) (experiments.Config, func(), error) {
	fs, c := newFlags(name, "<config.toml|name>", doc, stderr)
	if err := fs.Parse(args); err != nil {
		return experiments.Config{}, nil, err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return experiments.Config{}, nil, fmt.Errorf("%w: ddsmc %s takes exactly one config argument, got %d", errUsage, name, fs.NArg())
	}
	cfg, err := loadConfig(fs.Arg(0))
	if err != nil {
		return cfg, nil, err
	}
	if c.out != "" {
		cfg.Out = c.out
	}
	stop, err := startProfile(c.profile)
	return cfg, stop, err
}

func startProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func cmdTrain(args []string, stdout, stderr io.Writer) error {
	cfg, stop, err := parseRun("train", "Trains the config's denoiser with the MDLM loss and writes <out>/denoiser.ckpt,\ntrain_curve.csv and train_summary.json.", args, stderr)
	if err != nil {
		return err
	}
	defer stop()
	_, err = experiments.TrainDenoiser(cfg, stderr)
	return err
}

func cmdSample(args []string, stdout, stderr io.Writer) error {
	cfg, stop, err := parseRun("sample", "Loads <out>/denoiser.ckpt, draws sample.n unguided samples with the T-step reverse\nchain, writes <out>/samples.csv and sample_summary.json, and prints the task's report\n(GMM: TV to the exact data distribution; MNIST: test-set −ELBO and a labelled grid).", args, stderr)
	if err != nil {
		return err
	}
	defer stop()
	_, err = experiments.SampleDenoiser(cfg, stdout)
	return err
}

func cmdSMC(args []string, stdout, stderr io.Writer) error {
	cfg, stop, err := parseRun("smc", "Loads <out>/denoiser.ckpt and runs the config's [smc] setting on the reward-tilted\ntarget (smc.target: the model, or a product of two models) times exp(r(x0)/alpha):\nSMC with the reverse, locally optimal, gradient or learned proposal, or a baseline\n(bon, prop-grad, prop-amot, plain). Writes record.json (the common metrics and the\ntask's), samples.csv, trace.csv, trace.jsonl and samples.png to smc.dir (default\n<out>/smc), and prints the metrics.", args, stderr)
	if err != nil {
		return err
	}
	defer stop()
	res, err := experiments.RunSMC(cfg, stderr)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, experiments.FormatRecord(cfg.Task, res.Record))
	fmt.Fprintf(stdout, "wrote %s (record.json, samples.csv, trace.csv, trace.jsonl, samples.png)\n", cfg.OutDir())
	return nil
}

func cmdTrainProposal(args []string, stdout, stderr io.Writer) error {
	cfg, stop, err := parseRun("train-proposal", "Fine-tunes a copy of <out>/denoiser.ckpt into an amortised proposal q_φ with the\nlog-variance loss (paper §4) on p(x0)·exp(r(x0)/smc.alpha), using the [proposal] table.\nWrites <out>/proposal.ckpt (best validation epoch; F_ψ in its metadata), proposal_curve.csv,\nproposal_curve.png and proposal_summary.json. Use it with smc.proposal = \"learned\"\n(SMC-amot) or smc.method = \"prop-amot\".", args, stderr)
	if err != nil {
		return err
	}
	defer stop()
	_, err = experiments.TrainProposal(cfg, stderr)
	return err
}

func cmdPrepare(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("prepare", "<config.toml|name>", "Makes the artefacts the config's task needs before training or steering (task.Preparer):\nMNIST trains its main and held-out reward classifiers ([reward] classifier, val_classifier,\nclassifier_epochs); DNA fetches and checks its data and motifs; IMDB builds the vocabulary,\nthe corpus cache and the reward classifier. Existing artefacts are kept unless -force.", stderr)
	force := fs.Bool("force", false, "redo the artefacts even if they exist")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: ddsmc prepare takes exactly one config argument, got %d", errUsage, fs.NArg())
	}
	cfg, err := loadConfig(fs.Arg(0))
	if err != nil {
		return err
	}
	if c.out != "" {
		cfg.Out = c.out
	}
	stop, err := startProfile(c.profile)
	if err != nil {
		return err
	}
	defer stop()
	p, ok := cfg.Task.(task.Preparer)
	if !ok {
		fmt.Fprintf(stdout, "task %s needs no preparation\n", cfg.Task.Name())
		return nil
	}
	if err := p.Prepare(*force, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "task %s prepared\n", cfg.Task.Name())
	return nil
}

func cmdSweep(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("sweep", "<sweep.toml|name>", "Runs every point of the sweep's [sweep] table (Cartesian product) with `repeats` seeded\nrepeats, in parallel, into -out DIR (default runs/sweeps/<name>): results.csv (one row\nper run: the common metrics and the task's), runs/<point>-<repeat>/ (record, samples,\ntrace), sweep.json and sweep.toml (the plan and git commit), then draws the figures\n(ddsmc plot). Re-running resumes: finished runs are skipped. A DIR holding another sweep\nis refused. With -rescore, nothing is run: the output and task metrics of the finished\nruns are recomputed from their saved samples (e.g. after changing a judge).", stderr)
	rescore := fs.Bool("rescore", false, "recompute the output and task metrics of the finished runs from their samples instead of running")
	table := fs.Bool("table", false, "also print the summary table")
	pool := fs.Bool("pool", false, "recompute only the sweep's [pool] tables (pooled.csv, pooled_mean.csv) from the finished runs' samples")
	backend := fs.String("backend", "local", "where the runs execute: local (goroutines of this process) or slurm (one sbatch --array job)")
	status := fs.Bool("status", false, "report the sweep directory given as the argument (runs done, Slurm jobs) and rebuild nothing")
	var so experiments.SlurmOptions
	fs.StringVar(&so.Partition, "partition", "", "slurm: sbatch --partition")
	fs.StringVar(&so.Time, "time", "", "slurm: sbatch --time per array task, e.g. 1:00:00")
	fs.StringVar(&so.Mem, "mem", "", "slurm: sbatch --mem per array task, e.g. 4G")
	fs.IntVar(&so.CPUs, "cpus-per-task", 0, "slurm: sbatch --cpus-per-task, also the runs' smc.workers")
	fs.IntVar(&so.Throttle, "throttle", 0, "slurm: at most this many array tasks at once (--array=…%K)")
	fs.IntVar(&so.RunsPerTask, "runs-per-task", 1, "slurm: runs per array task")
	sbatchArgs := fs.String("sbatch-args", "", "slurm: further sbatch arguments, space-separated")
	fs.BoolVar(&so.Detach, "detach", false, "slurm: submit and return without waiting")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: ddsmc sweep takes exactly one sweep config, got %d", errUsage, fs.NArg())
	}
	if *status {
		rep, err := experiments.SweepStatus(fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, rep)
		return nil
	}
	if *backend != "local" && *backend != "slurm" {
		fs.Usage()
		return fmt.Errorf("%w: -backend = %q: want local or slurm", errUsage, *backend)
	}
	so.Args = strings.Fields(*sbatchArgs)
	sc, err := experiments.LoadSweep(fs.Arg(0))
	if err != nil {
		return err
	}
	raw, err := experiments.ConfigText(fs.Arg(0))
	if err != nil {
		return err
	}
	dir := c.out
	if dir == "" {
		dir = filepath.Join("runs", "sweeps", sc.Name)
	}
	stop, err := startProfile(c.profile)
	if err != nil {
		return err
	}
	defer stop()
	if *pool {
		if _, err := experiments.PoolSweep(sc, dir, stderr); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pooled: %s\n", filepath.Join(dir, experiments.PooledFile))
		return nil
	}
	if *rescore {
		if _, err := experiments.RescoreSweep(sc, dir, stderr); err != nil {
			return err
		}
	} else if *backend == "slurm" {
		if _, err := experiments.RunSweepSlurm(sc, raw, dir, so, stderr); err != nil {
			return err
		}
		if so.Detach {
			fmt.Fprintf(stdout, "submitted; status: ddsmc sweep -status %s\n", dir)
			return nil
		}
	} else if _, err := experiments.RunSweep(sc, raw, dir, stderr); err != nil {
		return err
	}
	figs, err := plotSweep(dir, stderr)
	if err != nil {
		return err
	}
	if *table {
		t, err := experiments.SummaryTable(dir, false)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\n%s\n", t)
	}
	fmt.Fprintf(stdout, "results: %s\nfigures: %s/ (%d figures, PNG and SVG)\n", filepath.Join(dir, "results.csv"), filepath.Join(dir, "figures"), len(figs))
	return nil
}

func cmdPlot(args []string, stdout, stderr io.Writer) error {
	fs, _ := newFlags("plot", "<dir>", "Redraws the figures of a finished (or partial) sweep in DIR/figures from DIR/results.csv\nand the runs' traces and samples, without recomputing anything, and prints the\nsummary table (mean ± standard error over repeats, per point; -sd: ± standard\ndeviation). Given a denoiser's directory instead (train_curve.csv), redraws its training curve.\nWith -x COLUMN it draws only -y against -x, one curve per method/variant: with a cost column\n(denoiser_rows, grad_rows, reward_evals, proposal_rows, network_rows, wall_s) the matched-budget figure.", stderr)
	sd := fs.Bool("sd", false, "print mean ± standard deviation over repeats (as the paper's tables) instead of ± standard error")
	x := fs.String("x", "", "results column for the x axis (e.g. denoiser_rows): draw -y against it into DIR/figures/<y>_vs_<x>")
	y := fs.String("y", "reward_mean", "results column for the y axis with -x")
	pooled := fs.Bool("pooled", false, "draw -y against -x from the sweep's pooled table (pooled_mean.csv or pooled.csv), one curve per -series value and one figure per -panel value")
	series := fs.String("series", "", "with -pooled: the column whose values are the curves (e.g. guidance)")
	panel := fs.String("panel", "", "with -pooled: the column whose values are the figures (e.g. steps)")
	where := fs.String("where", "", "with -pooled: keep only rows with these values, KEY=VALUE[,KEY=VALUE] (e.g. phi=- for the block that did not sweep phi)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: ddsmc plot takes exactly one sweep directory", errUsage)
	}
	if *pooled {
		if *x == "" {
			return fmt.Errorf("%w: ddsmc plot -pooled needs -x", errUsage)
		}
		w := map[string]string{}
		for _, kv := range strings.Split(*where, ",") {
			if kv == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("%w: -where %q: want KEY=VALUE", errUsage, kv)
			}
			w[k] = v
		}
		figs, err := experiments.PlotPooled(fs.Arg(0), *x, *y, *series, *panel, w)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, strings.Join(figs, "\n"))
		return nil
	}
	if *x != "" {
		png, err := experiments.PlotAgainst(fs.Arg(0), *x, *y)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, png)
		return nil
	}
	if _, err := os.Stat(filepath.Join(fs.Arg(0), "sweep.json")); err != nil {
		png, err := experiments.PlotTraining(fs.Arg(0)) // a denoiser's directory
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, png)
		return nil
	}
	figs, err := plotSweep(fs.Arg(0), stderr)
	if err != nil {
		return err
	}
	table, err := experiments.SummaryTable(fs.Arg(0), *sd)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\nfigures (PNG and SVG):\n  %s\n", table, strings.Join(figs, "\n  "))
	return nil
}

func cmdDemo(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("demo", "[name]", "The built-in default: `ddsmc sweep -table -out runs/demo sweep_quick`. It trains the GMM-1\ndenoiser if runs/gmm1 has none (about 2.5 min on 2 cores), then runs the quick synthetic\ncomparison (Target, Pre-trained, SMC-LOP, SMC-RP, SMC-FALOP and guidance, N = 500,\n2 repeats), prints its table and draws its figures into runs/demo/figures.\nWith a name, the built-in sweep sweep_<name>_demo instead into runs/demo_<name>, preparing\nits task first if needed, and, for text tasks, printing samples with their scores:\n  ddsmc demo imdb   steering IMDB reviews toward positive sentiment from the shipped model", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return fmt.Errorf("%w: ddsmc demo takes at most one demo name", errUsage)
	}
	name, sweep, dir := "", "sweep_quick", "runs/demo"
	if fs.NArg() == 1 && fs.Arg(0) != "gmm" {
		name = fs.Arg(0)
		sweep, dir = "sweep_"+name+"_demo", "runs/demo_"+name
		if _, err := experiments.ConfigText(sweep); err != nil {
			return fmt.Errorf("%w: no demo %q (built in: gmm, imdb)", errUsage, name)
		}
	}
	if c.out != "" {
		dir = c.out
	}
	var sc *experiments.SweepConfig
	if name != "" {
		var err error
		if sc, err = experiments.LoadSweep(sweep); err != nil {
			return err
		}
		if err := experiments.PrepareBase(sc, stderr); err != nil {
			return err
		}
	}
	sweepArgs := []string{"-table", "-out", dir}
	if c.profile != "" {
		sweepArgs = append(sweepArgs, "-cpuprofile", c.profile)
	}
	if err := cmdSweep(append(sweepArgs, sweep), stdout, stderr); err != nil {
		return err
	}
	if sc != nil {
		text, err := experiments.DescribeSweep(sc, dir, 3)
		if err != nil {
			return err
		}
		if text != "" {
			fmt.Fprintf(stdout, "\nsamples (the first runs' outputs):\n%s", text)
		}
		fmt.Fprintln(stdout, "full-size tables: see notebooks.md")
		return nil
	}
	fmt.Fprintln(stdout, "full-size tables: ddsmc sweep sweep_gmm1_compare (see notebooks.md)")
	return nil
}

// plotSweep draws a sweep's figures and says on stderr what it left out.
func plotSweep(dir string, stderr io.Writer) ([]string, error) {
	figs, notes, err := experiments.PlotSweepNotes(dir)
	for _, n := range notes {
		fmt.Fprintf(stderr, "ddsmc: plot: skipped %s\n", n)
	}
	return figs, err
}

// cmdSweepTask is the body of a Slurm array task (internal: ddsmc sweep
// -backend slurm submits it).
func cmdSweepTask(args []string, stdout, stderr io.Writer) error {
	fs, _ := newFlags("sweep-task", "<dir>", "Internal: runs the chunk of a submitted Slurm array job given by SLURM_ARRAY_TASK_ID.", stderr)
	token := fs.String("submission", "", "the submission token (DIR/slurm/<token>.json)")
	workers := fs.Int("workers", 0, "goroutines per run (0: the plan's smc.workers)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *token == "" {
		fs.Usage()
		return fmt.Errorf("%w: ddsmc sweep-task -submission TOKEN <dir>", errUsage)
	}
	idx, err := strconv.Atoi(os.Getenv("SLURM_ARRAY_TASK_ID"))
	if err != nil {
		return fmt.Errorf("ddsmc sweep-task: SLURM_ARRAY_TASK_ID = %q is not an array index (run it through sbatch --array)", os.Getenv("SLURM_ARRAY_TASK_ID"))
	}
	return experiments.RunSweepTask(fs.Arg(0), *token, idx, *workers, stderr)
}
