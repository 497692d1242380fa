// Package mnist is the binarised-MNIST task of the paper, §6(a2): the
// official images from a pinned Go module, thresholded at 128 (optionally
// 2×2-downsampled to 14×14), steered toward a target digit with the reward
// r(x) = log p_clf(target | x) of a main classifier; a held-out classifier
// of another architecture and seed gives the "val" metrics.
//
// It registers the task "mnist". Its options:
//
//	[data]
//	size = 28                 # image side: 28, or 14 (2×2 downsampled)
//	[reward]
//	target = 4                # target digit
//	classifier = ""           # main classifier (default runs/mnist<size>/clf_main.ckpt)
//	val_classifier = ""       # held-out classifier (default runs/mnist<size>/clf_val.ckpt)
//	classifier_epochs = 12    # training epochs of `ddsmc prepare`
//	classifier_arch = "mlp"   # "cnn": the conv pair CNNMainClassifier / CNNValClassifier,
//	                          # default paths runs/mnist<size>-cnn/clf_{main,val}.ckpt
//
// The classifiers are the task's prepared artefacts: `ddsmc prepare
// <config>` trains the missing ones.
package mnist

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/plots"
	"github.com/ddsmc/ddsmc/smc"
)

func init() { task.Register("mnist", open) }

// Options are the task-owned keys of an MNIST config.
type Options struct {
	Data struct {
		Size int `toml:"size" json:"size"`
	} `toml:"data" json:"data"`
	Reward struct {
		Target           int    `toml:"target" json:"target"`
		Classifier       string `toml:"classifier" json:"classifier"`
		ValClassifier    string `toml:"val_classifier" json:"val_classifier"`
		ClassifierEpochs int    `toml:"classifier_epochs" json:"classifier_epochs"`
		// ClassifierArch is the architecture `ddsmc prepare` trains: "mlp"
		// (the default, stored as "" so that the options of existing
		// configs, which sweep fingerprints hash, are unchanged) or "cnn".
		ClassifierArch string `toml:"classifier_arch" json:"classifier_arch,omitempty"`
	} `toml:"reward" json:"reward"`
}

// Task is binarised MNIST as a task.Task, with the task.Labelled,
// task.Preparer and task.SampleReporter capabilities.
type Task struct {
	spec task.Spec
	o    Options

	mu   sync.Mutex
	data map[string]*MNIST // official split → images
}

var (
	_ task.Labelled       = (*Task)(nil)
	_ task.Preparer       = (*Task)(nil)
	_ task.SampleReporter = (*Task)(nil)
)

// DefaultClassifierDir is where [reward] looks when its paths are empty:
// runs/mnist<size>.
func DefaultClassifierDir(size int) string {
	return filepath.Join("runs", fmt.Sprintf("mnist%d", size))
}

// DefaultClassifierDirFor is DefaultClassifierDir for an architecture:
// the MLPs' runs/mnist<size>, the CNNs' runs/mnist<size>-cnn (so that the
// MLP classifiers, and every result recorded with them, stay as they are).
func DefaultClassifierDirFor(size int, arch string) string {
	if arch == ArchCNN {
		return DefaultClassifierDir(size) + "-cnn"
	}
	return DefaultClassifierDir(size)
}

// arch is the classifier architecture of [reward] classifier_arch.
func (t *Task) arch() string {
	if t.o.Reward.ClassifierArch == "" {
		return ArchMLP
	}
	return t.o.Reward.ClassifierArch
}

// ClassifierArch returns the classifier architecture `ddsmc prepare`
// trains: ArchMLP or ArchCNN.
func (t *Task) ClassifierArch() string { return t.arch() }

func open(spec *task.Spec, dec task.Decoder) (task.Task, error) {
	var o Options
	o.Data.Size, o.Reward.Target, o.Reward.ClassifierEpochs = 28, 4, 12
	if err := dec.Decode(&o); err != nil {
		return nil, err
	}
	// The GMM-sized defaults do not fit MNIST's splits.
	if !dec.Defined("data", "train_size") {
		spec.TrainSize = 60000
	}
	if !dec.Defined("data", "val_size") {
		spec.ValSize = 2000
	}
	switch {
	case o.Data.Size != 28 && o.Data.Size != 14:
		return nil, fmt.Errorf("data.size = %d: want 28 (full MNIST) or 14 (2×2 downsampled)", o.Data.Size)
	case spec.TrainSize > 60000:
		return nil, fmt.Errorf("data.train_size = %d: MNIST has 60000 training images", spec.TrainSize)
	case spec.ValSize > 10000:
		return nil, fmt.Errorf("data.val_size = %d: MNIST has 10000 test images", spec.ValSize)
	case o.Reward.Target < 0 || o.Reward.Target > 9:
		return nil, fmt.Errorf("reward.target = %d: want a digit 0..9", o.Reward.Target)
	case o.Reward.ClassifierEpochs < 1:
		return nil, fmt.Errorf("reward.classifier_epochs = %d: must be >= 1", o.Reward.ClassifierEpochs)
	case o.Reward.ClassifierArch != "" && o.Reward.ClassifierArch != ArchMLP && o.Reward.ClassifierArch != ArchCNN:
		return nil, fmt.Errorf("reward.classifier_arch = %q: want %q or %q", o.Reward.ClassifierArch, ArchMLP, ArchCNN)
	}
	if o.Reward.ClassifierArch == ArchMLP {
		o.Reward.ClassifierArch = "" // the default's canonical form
	}
	dir := DefaultClassifierDirFor(o.Data.Size, o.Reward.ClassifierArch) // "" = mlp
	if o.Reward.Classifier == "" {
		o.Reward.Classifier = filepath.Join(dir, "clf_main.ckpt")
	}
	if o.Reward.ValClassifier == "" {
		o.Reward.ValClassifier = filepath.Join(dir, "clf_val.ckpt")
	}
	return &Task{spec: *spec, o: o, data: map[string]*MNIST{}}, nil
}

// Name is "mnist".
func (t *Task) Name() string { return t.spec.Name }

// Shape is L = size² pixels over V = 2 (ink or not).
func (t *Task) Shape() (L, V int) { return t.o.Data.Size * t.o.Data.Size, 2 }

// Side is the image side.
func (t *Task) Side() int { return t.o.Data.Size }

// Target is the target digit.
func (t *Task) Target() int { return t.o.Reward.Target }

// ClassifierPaths returns the main and held-out classifier checkpoints.
func (t *Task) ClassifierPaths() (main, val string) {
	return t.o.Reward.Classifier, t.o.Reward.ValClassifier
}

// official loads an official split ("train" or "test") once.
func (t *Task) official(split string) (*MNIST, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.data[split]; ok {
		return m, nil
	}
	dir, err := MNISTDir()
	if err != nil {
		return nil, err
	}
	m, err := LoadMNIST(dir, split, t.o.Data.Size)
	if err != nil {
		return nil, err
	}
	t.data[split] = m
	return m, nil
}

// split returns the images and the number of rows of a task split: "train"
// is the first train_size official training images, "val" the first
// val_size official test images.
func (t *Task) split(split string) (*MNIST, int, error) {
	var name string
	var n int
	switch split {
	case "train":
		name, n = "train", t.spec.TrainSize
	case "val":
		name, n = "test", t.spec.ValSize
	default:
		return nil, 0, fmt.Errorf("mnist: unknown split %q, want train or val", split)
	}
	m, err := t.official(name)
	if err != nil {
		return nil, 0, err
	}
	if n > m.Len() {
		return nil, 0, fmt.Errorf("mnist: the %s split has %d images; asked for %d", name, m.Len(), n)
	}
	return m, n, nil
}

// Data returns a split's images as binary token rows.
func (t *Task) Data(split string) (*task.Dataset, error) {
	m, n, err := t.split(split)
	if err != nil {
		return nil, err
	}
	L, V := t.Shape()
	return &task.Dataset{L: L, V: V, Tokens: m.Pixels[:n*L]}, nil
}

// Classes is 10 (the digits).
func (t *Task) Classes() int { return 10 }

// Labels returns the digits of a split's rows.
func (t *Task) Labels(split string) ([]int, error) {
	m, n, err := t.split(split)
	if err != nil {
		return nil, err
	}
	return m.Labels[:n], nil
}

// Reward is r(x) = log p_clf(target | x) of the main classifier, one
// classifier per worker for the differentiable copies.
func (t *Task) Reward(workers int) (smc.Reward, []objectives.RewardGraph, error) {
	graphs := make([]objectives.RewardGraph, workers)
	var first smc.Reward
	for w := range graphs {
		clf, err := t.classifier(t.o.Reward.Classifier, "reward.classifier")
		if err != nil {
			return nil, nil, err
		}
		r, err := clf.Reward(t.o.Reward.Target)
		if err != nil {
			return nil, nil, err
		}
		graphs[w] = r
		if w == 0 {
			first = r
		}
	}
	return first, graphs, nil
}

// classifier loads a classifier checkpoint for this image size; a missing
// one is task.ErrNotPrepared.
func (t *Task) classifier(path, key string) (*objectives.Classifier, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("mnist: %s: no classifier checkpoint at %s: %w", key, path, task.ErrNotPrepared)
	}
	c, err := objectives.LoadClassifier(path, t.o.Data.Size, t.o.Data.Size)
	if err != nil {
		return nil, fmt.Errorf("mnist: %s: %w", key, err)
	}
	return c, nil
}

// Metrics are the image columns of the paper's MNIST table.
func (t *Task) Metrics() []task.Metric {
	return []task.Metric{
		{Key: "reward_val", Label: "val reward (held-out classifier)", Plot: true, Summary: true},
		{Key: "acc", Label: "accuracy (p(target) > 0.5)", Plot: true, Summary: true},
		{Key: "acc_val", Label: "val accuracy (held-out classifier)", Plot: true, Summary: true},
		{Key: "diversity", Label: "diversity (effective rank of held-out embeddings)", Plot: true, Summary: true},
		{Key: "success_any", Label: "success@1 (≥ 1 correct output)", Plot: true, Summary: true},
		{Key: "success_all", Label: "success@all (every output correct)", Plot: true, Summary: true},
		{Key: "fid", Label: "FID analogue to held-out images of the target (held-out classifier features)", Plot: true},
		{Key: "is", Label: "IS analogue (held-out classifier)", Plot: true},
	}
}

// Evaluator loads both classifiers; it writes each run's per-sample
// rewards to sample_rewards.csv in the run's directory.
func (t *Task) Evaluator(task.Model) (task.Evaluator, error) {
	main, err := t.classifier(t.o.Reward.Classifier, "reward.classifier")
	if err != nil {
		return nil, err
	}
	val, err := t.classifier(t.o.Reward.ValClassifier, "reward.val_classifier")
	if err != nil {
		return nil, err
	}
	tg := t.o.Reward.Target
	if tg >= main.Cfg.Classes || tg >= val.Cfg.Classes {
		return nil, fmt.Errorf("mnist: reward.target = %d is not a class of the classifiers", tg)
	}
	ev := &imageEval{target: tg, main: main, val: val}
	ev.allRefFn = func() ([]float64, int, error) { // every class's held-out images
		data, err := t.Data("val")
		if err != nil {
			return nil, 0, nil // no reference: the FID analogue is NaN
		}
		f, _, err := val.Features(data.Tokens)
		return f, data.Len(), err
	}
	// The FID analogue's reference: the held-out split's images of the
	// target class (skipped when the data cannot be read).
	if data, err := t.Data("val"); err == nil {
		if labels, err := t.Labels("val"); err == nil {
			L, _ := t.Shape()
			var x []int
			for i, y := range labels {
				if y == tg {
					x = append(x, data.Row(i)...)
				}
			}
			if len(x) >= 2*L {
				f, dim, err := val.Features(x)
				if err != nil {
					return nil, err
				}
				ev.ref, ev.refN, ev.refD = f, len(x)/L, dim
			}
		}
	}
	return ev, nil
}

// Evaluate scores one run's outputs.
func (e *imageEval) Evaluate(_ *rand.Rand, out task.Outputs) (map[string]float64, error) {
	if err := out.Check(); err != nil {
		return nil, err
	}
	m, rm, rv, err := e.metrics(out.Samples, out.L, out.LogW, out.Classes)
	if err != nil {
		return nil, err
	}
	if out.Dir != "" {
		if err := writeSampleRewards(filepath.Join(out.Dir, SampleRewardsFile), rm, rv); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// SampleRewardsFile is the per-run file of each output's main and held-out
// reward.
const SampleRewardsFile = "sample_rewards.csv"

// Missing lists the classifier checkpoints that do not exist.
func (t *Task) Missing() []string {
	var out []string
	for _, p := range []string{t.o.Reward.Classifier, t.o.Reward.ValClassifier} {
		if _, err := os.Stat(p); err != nil {
			out = append(out, p)
		}
	}
	return out
}

// Prepare trains the two classifiers of classifier_arch
// (classifier_epochs epochs; TrainClassifierPair) if either is missing, or
// always with force, and writes them to their paths.
func (t *Task) Prepare(force bool, log io.Writer) error {
	if !force && len(t.Missing()) == 0 {
		fmt.Fprintf(log, "mnist: classifiers %s and %s exist (use -force to retrain)\n", t.o.Reward.Classifier, t.o.Reward.ValClassifier)
		return nil
	}
	_, err := TrainClassifierPair(t.arch(), t.o.Data.Size, t.o.Reward.ClassifierEpochs, t.o.Reward.Classifier, t.o.Reward.ValClassifier, log)
	return err
}

// Render draws image grids. One panel: up to 64 of its outputs, captioned
// with their main-classifier rewards (from the run's sample_rewards.csv).
// Several panels: a row of up to 8 outputs per panel, each captioned with
// the panel's title.
func (t *Task) Render(path string, panels []task.Panel) error {
	side := t.o.Data.Size
	if len(panels) == 1 {
		p := panels[0]
		imgs := tokensAsImages(p.Out.Samples, p.Out.L)
		if len(imgs) > 64 {
			imgs = imgs[:64]
		}
		if s := int(math.Round(math.Sqrt(float64(p.Out.L)))); s*s == p.Out.L {
			side = s // an old run may have another size
		}
		var captions []string
		if r, err := readSampleRewards(filepath.Join(p.Out.Dir, SampleRewardsFile)); err == nil && len(r) >= len(imgs) {
			captions = make([]string, len(imgs))
			for i := range imgs {
				captions[i] = fmt.Sprintf("r = %.2f", r[i])
			}
		}
		title := fmt.Sprintf("%s: reward %.2f, acc %.2f, val acc %.2f", p.Title, p.Metrics["reward_mean"], p.Metrics["acc"], p.Metrics["acc_val"])
		return plots.ImageGrid(path, imgs, side, side, 8, captions, title)
	}
	var imgs [][]float64
	var captions, names []string
	for _, p := range panels {
		im := tokensAsImages(p.Out.Samples, p.Out.L)
		if len(im) > 8 {
			im = im[:8]
		}
		for len(im) < 8 {
			im = append(im, make([]float64, p.Out.L))
		}
		for i := range im {
			c := ""
			if i == 0 {
				c = shorten(p.Title, 24)
			}
			captions = append(captions, c)
		}
		imgs = append(imgs, im...)
		names = append(names, fmt.Sprintf("%s (acc %.2f)", p.Title, p.Metrics["acc"]))
	}
	if len(imgs) > 0 {
		if s := int(math.Round(math.Sqrt(float64(len(imgs[0]))))); s*s == len(imgs[0]) {
			side = s
		}
	}
	return plots.ImageGrid(path, imgs, side, side, 8, captions, "one row per point: "+strings.Join(names, "; "))
}

func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// tokensAsImages views n·L binary tokens as n float images for plotting.
func tokensAsImages(x []int, L int) [][]float64 {
	out := make([][]float64, len(x)/L)
	for i := range out {
		img := make([]float64, L)
		for j, v := range x[i*L : (i+1)*L] {
			img[j] = float64(v)
		}
		out[i] = img
	}
	return out
}

func meanInt(x []int) float64 {
	s := 0
	for _, v := range x {
		s += v
	}
	return float64(s) / float64(max(len(x), 1))
}
