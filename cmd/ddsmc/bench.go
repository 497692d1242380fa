package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/ddsmc/ddsmc/internal/duel"
)

// cmdBench runs the throughput workloads of internal/duel (the PyTorch
// peer's shapes and the transformer) and prints one JSON line each.
func cmdBench(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	shapes := fs.String("shape", "gmm,mnist", "comma-separated shapes: gmm, mnist, transformer")
	props := fs.String("proposal", "reverse,grad", "comma-separated proposals: reverse, grad")
	n := fs.Int("N", 0, "particles (0 = the shape's default: gmm 256, mnist 64, transformer 16)")
	t := fs.Int("T", 0, "reverse steps (0 = 100)")
	phi := fs.Int("phi", 1, "look-ahead samples φ")
	workers := fs.String("workers", "1", "comma-separated worker counts")
	repeats := fs.Int("repeats", 3, "timed runs after one warm-up (the median is reported)")
	runs := fs.Int("R", 1, "independent runs batched through each network call (Sampler.RunMany)")
	seed := fs.Uint64("seed", 0, "seed of the reward table and the runs")
	profile := fs.String("cpuprofile", "", "write a pprof CPU profile to this file")
	memprofile := fs.String("memprofile", "", "write a pprof allocation profile (every allocation sampled) to this file at the end")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ddsmc bench [flags]\n\nTimes masked-diffusion SMC on the workloads of ../shared/peer/torch_smc.py (random\nweights) and prints one JSON line per workload: particle-steps/s = R·N·T / median wall time.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return fmt.Errorf("%w: ddsmc bench takes no arguments, got %q", errUsage, fs.Args())
	}
	var ws []int
	for _, f := range strings.Split(*workers, ",") {
		var w int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &w); err != nil || w < 1 {
			return fmt.Errorf("%w: -workers %q: want positive integers", errUsage, *workers)
		}
		ws = append(ws, w)
	}
	stop, err := startProfile(*profile)
	if err != nil {
		return err
	}
	defer stop()
	if *memprofile != "" {
		runtime.MemProfileRate = 1
	}
	enc := json.NewEncoder(stdout)
	for _, name := range strings.Split(*shapes, ",") {
		sh, err := duel.ShapeByName(strings.TrimSpace(name))
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		for _, p := range strings.Split(*props, ",") {
			for _, w := range ws {
				res, err := duel.Workload{Shape: sh, Proposal: strings.TrimSpace(p), N: *n, T: *t, Phi: *phi,
					Workers: w, Repeats: *repeats, Runs: *runs, Seed: *seed}.Run()
				if err != nil {
					return fmt.Errorf("bench %s/%s/workers=%d: %w", sh.Name, p, w, err)
				}
				if err := enc.Encode(res); err != nil {
					return err
				}
			}
		}
	}
	if *memprofile == "" {
		return nil
	}
	f, err := os.Create(*memprofile)
	if err != nil {
		return fmt.Errorf("bench: memory profile: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("bench: memory profile: %w", err)
	}
	return f.Close()
}
