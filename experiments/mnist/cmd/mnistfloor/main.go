// Command mnistfloor prints the real-data rows of the CFG table
// (sweep_mnist_cfg): the FID and IS analogues of real training images,
// drawn class-balanced in chunks of the table's size, against the
// held-out reference of the config's evaluator. The FID of real images at
// that sample size is the floor a sampler can reach (the estimator's
// bias), and their IS is what "as confident as real digits" means.
//
//	go run ./experiments/mnist/cmd/mnistfloor [-config configs/mnist-cond.toml] [-n 200] [-chunks 3]
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"

	"github.com/ddsmc/ddsmc/experiments"
	"github.com/ddsmc/ddsmc/experiments/mnist"
	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/smc"
)

func main() {
	config := flag.String("config", "configs/mnist-cond.toml", "the CFG experiment's config (its val split is the reference)")
	clfPath := flag.String("classifier", "runs/mnist-cond/clf_val.ckpt", "the held-out classifier whose features and p(y|x) the analogues use")
	n := flag.Int("n", 200, "images per chunk (class-balanced)")
	chunks := flag.Int("chunks", 3, "independent chunks")
	seed := flag.Uint64("seed", 1, "seed of the draw")
	flag.Parse()
	if err := run(*config, *clfPath, *n, *chunks, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "mnistfloor:", err)
		os.Exit(1)
	}
}

func run(config, clfPath string, n, chunks int, seed uint64) error {
	cfg, err := experiments.Load(config)
	if err != nil {
		return err
	}
	lt, ok := cfg.Task.(task.Labelled)
	if !ok {
		return fmt.Errorf("task %s has no labels", cfg.Task.Name())
	}
	K := lt.Classes()
	if n <= 0 || n%K != 0 || chunks <= 0 {
		return fmt.Errorf("-n = %d must be a positive multiple of the %d classes, -chunks = %d positive", n, K, chunks)
	}
	val, err := cfg.Task.Data("val")
	if err != nil {
		return err
	}
	tr, err := cfg.Task.Data("train")
	if err != nil {
		return err
	}
	labels, err := lt.Labels("train")
	if err != nil {
		return err
	}
	L, _ := cfg.Task.Shape()
	side := int(math.Round(math.Sqrt(float64(L))))
	clf, err := objectives.LoadClassifier(clfPath, side, side)
	if err != nil {
		return err
	}
	ref, dim, err := clf.Features(val.Tokens)
	if err != nil {
		return err
	}
	perm := rand.New(rand.NewPCG(seed, 2)).Perm(tr.Len())
	next := 0
	var fids, iss []float64
	for c := range chunks {
		var x []int
		count := make([]int, K)
		for ; len(x) < n*L && next < len(perm); next++ {
			i := perm[next]
			if count[labels[i]] < n/K {
				count[labels[i]]++
				x = append(x, tr.Row(i)...)
			}
		}
		if len(x) < n*L {
			return fmt.Errorf("ran out of training images at chunk %d", c)
		}
		f, _, err := clf.Features(x)
		if err != nil {
			return err
		}
		fid, err := mnist.FrechetDistance(f, n, ref, val.Len(), dim)
		if err != nil {
			return err
		}
		z := make([]float64, n*K)
		if err := clf.Logits(x, z); err != nil {
			return err
		}
		for i := range n {
			row := z[i*K : (i+1)*K]
			l := smc.LogSumExp(row)
			for j := range row {
				row[j] = math.Exp(row[j] - l)
			}
		}
		is, err := mnist.InceptionScore(z, n, K)
		if err != nil {
			return err
		}
		fmt.Printf("chunk %d: %d real training images: FID %.2f, IS %.3f\n", c, n, fid, is)
		fids, iss = append(fids, fid), append(iss, is)
	}
	mf, sf := experiments.MeanSE(fids)
	mi, si := experiments.MeanSE(iss)
	fmt.Printf("real data (%d × %d images vs %d held-out): FID %.1f ± %.1f, IS %.2f ± %.2f (mean ± s.e. over chunks)\n", chunks, n, val.Len(), mf, sf, mi, si)
	return nil
}
