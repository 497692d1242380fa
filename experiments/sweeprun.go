package experiments

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/smc"
)

// BLASName reports the BLAS the graphs use.
func BLASName() string { return graph.BLAS() }

// sweepEnv is what every run of a sweep shares: the base experiment, its
// task, the trained model and the exact references.
type sweepEnv struct {
	sc    *SweepConfig
	task  *Task
	model *graph.Model
	ref   *gmmRef    // exact references (GMM tasks)
	image *imageEval // classifier metrics (image tasks)
}

// newSweepEnv loads (or, with auto_train, trains) the base denoiser and
// enumerates its exact references.
func newSweepEnv(sc *SweepConfig, log io.Writer) (*sweepEnv, error) {
	cfg := sc.base
	task, err := loadReference(cfg.Data)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(cfg.CheckpointPath()); errors.Is(err, fs.ErrNotExist) {
		if !sc.AutoTrain {
			return nil, fmt.Errorf("experiments: no checkpoint at %s and auto_train = false: run `ddsmc train %s` first", cfg.CheckpointPath(), sc.Base)
		}
		fmt.Fprintf(log, "no checkpoint at %s: training the base denoiser first (auto_train)\n", cfg.CheckpointPath())
		if _, err := TrainDenoiser(cfg, log); err != nil {
			return nil, err
		}
	}
	m, err := loadDenoiser(cfg, task)
	if err != nil {
		return nil, err
	}
	if task.GMM == nil {
		ev, err := newImageEval(cfg)
		if err != nil {
			return nil, err
		}
		return &sweepEnv{sc: sc, task: task, model: m, image: ev}, nil
	}
	k, grid, err := cfg.Kernel()
	if err != nil {
		return nil, err
	}
	ref, err := newGMMRef(task, k, m, grid, 256)
	if err != nil {
		return nil, err
	}
	return &sweepEnv{sc: sc, task: task, model: m, ref: ref}, nil
}

// workerSampler is one sweep worker's sampler for its current point,
// reused across that point's repeats. Building a sampler builds Gorgonia
// graphs (model clones, look-ahead programs), and Gorgonia v0.9.18 keeps
// about a run's worth of tensors alive for every graph that has run: a
// sampler per run exhausted 24 GB over a 600-run MNIST sweep. Reuse keeps
// the results: a Sampler's runs share nothing but the base's logit cache,
// whose entries are the denoiser's deterministic outputs.
type workerSampler struct {
	point int
	s     *smc.Sampler
}

// run performs one (point, repeat) and records it in dir: samples.csv,
// trace.csv, then record.json last (its presence marks the run done). ws
// (nil: none) is the calling worker's sampler cache.
func (e *sweepEnv) run(pt Point, repeat int, seed uint64, dir string, ws *workerSampler) (RunRecord, error) {
	rec := RunRecord{Point: pt.Index, Repeat: repeat, Seed: seed, Setting: pt.Settings}
	cfg := e.sc.base
	cfg.SMC = pt.SMC
	cfg.SMC.Seed, cfg.SMC.Dir = seed, dir
	if e.sc.Workers > 1 {
		cfg.SMC.Workers = 1 // runs are parallel already
	}
	sc := cfg.SMC
	nan := math.NaN()
	var samples []int
	var sampleLogW, logw []float64
	var xs []int
	metrics := map[string]float64{"ess_min": nan, "ess_mean": nan, "resamples": nan, "log_z": nan, "wall_s": 0}
	var trace []smc.Info
	if sc.Method == "target" {
		if e.ref == nil {
			return rec, fmt.Errorf("experiments: method \"target\" needs an exactly enumerable task (gmm1, gmm2), not %s", e.task.Name)
		}
		t, err := e.ref.target(sc.Alpha)
		if err != nil {
			return rec, err
		}
		pts, err := SamplePMF(rand.New(rand.NewPCG(seed, 6)), t.data, e.task.V, e.task.V, sc.Particles)
		if err != nil {
			return rec, err
		}
		for _, p := range pts {
			samples = append(samples, p[0], p[1])
		}
	} else {
		var s *smc.Sampler
		if ws != nil && ws.s != nil && ws.point == pt.Index {
			s = ws.s
		} else {
			m, err := e.model.Clone()
			if err != nil {
				return rec, err
			}
			if s, _, err = BuildSampler(cfg, e.task, m); err != nil {
				return rec, err
			}
			if ws != nil {
				ws.point, ws.s = pt.Index, s
			}
		}
		res, err := s.Run(rand.New(rand.NewPCG(seed, 5)))
		if err != nil {
			return rec, err
		}
		samples, xs, logw, trace = res.Samples, res.X, res.LogW, res.Trace
		if sc.Final == string(smc.FinalWeighted) {
			sampleLogW = res.SampleLogW
		}
		metrics["ess_min"], metrics["ess_mean"] = res.ESSMin, res.ESSMean
		metrics["resamples"], metrics["log_z"], metrics["wall_s"] = float64(res.Resamples), res.LogZ, res.WallSeconds
	}
	var extra map[string]float64
	var err error
	if e.image != nil {
		var rm, rv []float64
		if extra, rm, rv, err = e.image.metrics(samples, e.task.L, sampleLogW); err == nil {
			err = writeSampleRewards(filepath.Join(dir, "sample_rewards.csv"), rm, rv)
		}
	} else {
		extra, err = e.gmmMetrics(seed, sc.Alpha, samples, sampleLogW, xs, logw, metrics["log_z"])
	}
	if err != nil {
		return rec, err
	}
	for k, v := range extra {
		metrics[k] = v
	}
	rec.Metrics = metrics
	if err := writeSamples(filepath.Join(dir, "samples.csv"), samples, e.task.L); err != nil {
		return rec, err
	}
	if trace != nil {
		if err := smc.WriteTraceCSV(filepath.Join(dir, "trace.csv"), trace); err != nil {
			return rec, err
		}
	}
	return rec, writeJSON(filepath.Join(dir, "record.json"), rec)
}

// gmmMetrics are a GMM run's reward statistics and its comparison with the
// exact references (EMD, diversity, TV, log Z error).
func (e *sweepEnv) gmmMetrics(seed uint64, alpha float64, samples []int, sampleLogW []float64, xs []int, logw []float64, logZ float64) (map[string]float64, error) {
	rw := make([]float64, len(samples)/e.task.L)
	if err := smc.TableReward(e.rewardTerms()).Reward(samples, rw); err != nil {
		return nil, err
	}
	mean, maxR := 0.0, math.Inf(-1)
	for _, r := range rw {
		mean += r / float64(len(rw))
		maxR = math.Max(maxR, r)
	}
	if sampleLogW != nil {
		mean = 0
		for i, l := range sampleLogW {
			mean += math.Exp(l) * rw[i]
		}
	}
	m, err := e.ref.metrics(rand.New(rand.NewPCG(seed, 7)), alpha, samples, sampleLogW, xs, logw, logZ, e.sc.EMDSamples)
	if err != nil {
		return nil, err
	}
	m["reward_mean"], m["reward_max"] = mean, maxR
	return m, nil
}

// rewardTerms returns the task's additive reward table.
func (e *sweepEnv) rewardTerms() [][]float64 {
	t, _ := e.task.GMM.RewardTerms()
	return t[:]
}
