package mnist

import (
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/internal/atomicfile"
	"github.com/ddsmc/ddsmc/objectives"
)

// The two MNIST reward classifiers of issue 6: the reward r(x) =
// log p(target | x) uses the main one; a held-out one with another
// architecture and seed gives the "val" metrics, so that steering toward
// one classifier's quirks shows up.
var (
	// MainClassifier is the reward classifier: one hidden layer of 256 ReLUs.
	MainClassifier = objectives.ClassifierConfig{Hidden: []int{256}, Act: "relu", Classes: 10, Seed: 11}
	// ValClassifier is the held-out classifier: two GELU layers, 512 and 128.
	ValClassifier = objectives.ClassifierConfig{Hidden: []int{512, 128}, Act: "gelu", Classes: 10, Seed: 23}
)

// The convolutional pair ([reward] classifier_arch = "cnn"; the paper's
// classifiers are CNNs): 3×3 stride-2 convolutions (28×28 → 14×14 → 7×7
// → 4×4) before a small MLP, differentiable in the soft one-hot input like
// the MLPs, trained with shift augmentation (clfSchedule).
var (
	// CNNMainClassifier is the convolutional reward classifier: conv 16,
	// 32 and 64 channels, one hidden layer of 128 ReLUs.
	CNNMainClassifier = objectives.ClassifierConfig{Conv: []int{16, 32, 64}, Hidden: []int{128}, Act: "relu", Classes: 10, Seed: 31}
	// CNNValClassifier is the convolutional held-out classifier: conv 24,
	// 48 and 96 channels, one hidden layer of 64 GELUs, another seed.
	CNNValClassifier = objectives.ClassifierConfig{Conv: []int{24, 48, 96}, Hidden: []int{64}, Act: "gelu", Classes: 10, Seed: 37}
)

// Classifier architectures, the values of [reward] classifier_arch.
const (
	ArchMLP = "mlp" // MainClassifier and ValClassifier
	ArchCNN = "cnn" // CNNMainClassifier and CNNValClassifier
)

// ClassifierPair returns the main and held-out classifier configurations
// of an architecture, ArchMLP or ArchCNN.
func ClassifierPair(arch string) (main, val objectives.ClassifierConfig, err error) {
	switch arch {
	case ArchMLP:
		return MainClassifier, ValClassifier, nil
	case ArchCNN:
		return CNNMainClassifier, CNNValClassifier, nil
	}
	return main, val, fmt.Errorf("mnist: classifier architecture %q: want %q or %q", arch, ArchMLP, ArchCNN)
}

// ClassifierReport records the training of the two classifiers.
type ClassifierReport struct {
	Arch    string    `json:"arch,omitempty"` // "cnn", or empty for the MLPs
	Size    int       `json:"size"`
	Main    ClfResult `json:"main"`
	Val     ClfResult `json:"val"`
	Seconds float64   `json:"seconds"`
}

// ClfResult is one classifier's outcome.
type ClfResult struct {
	Path      string    `json:"path"`
	Conv      []int     `json:"conv,omitempty"`
	Hidden    []int     `json:"hidden"`
	Act       string    `json:"activation"`
	Losses    []float64 `json:"epoch_losses"`
	TrainAcc  float64   `json:"train_accuracy"`
	TestAcc   float64   `json:"test_accuracy"`
	Seconds   float64   `json:"seconds"`
	Parameter int       `json:"parameters"`
	// Shift and EpochLRs record the CNNs' training (clfSchedule): the
	// augmentation's largest shift in pixels and each epoch's learning
	// rate. The MLPs trained at a constant 1e-3 without augmentation.
	Shift    int       `json:"augment_shift,omitempty"`
	EpochLRs []float64 `json:"epoch_lrs,omitempty"`
}

// TrainClassifiers trains the main and held-out classifiers on the
// binarised MNIST training split at size 28 or 14 (epochs passes, Adam),
// evaluates them on the official test split, and writes them (atomically)
// to mainPath and valPath, with classifiers.json beside mainPath. It is
// TrainClassifierPair of the MLPs.
func TrainClassifiers(size, epochs int, mainPath, valPath string, log io.Writer) (*ClassifierReport, error) {
	return TrainClassifierPair(ArchMLP, size, epochs, mainPath, valPath, log)
}

// clfPhase is a stretch of classifier training at one learning rate.
type clfPhase struct {
	epochs int
	lr     float64
}

// cnnShift is the CNNs' augmentation: every visit of a training image
// shifts it by up to cnnShift pixels in each direction
// (objectives.Classifier.TrainAugmented).
const cnnShift = 1

// clfSchedule is the training of an architecture's classifiers over
// epochs epochs (Adam, batches of 128): the MLPs at learning rate 1e-3
// throughout without augmentation (as they always were); the CNNs, which
// overfit that way (train accuracy 0.996–1.000, test 0.983–0.988), with
// random shifts of up to cnnShift pixels, the first epochs − epochs/4
// epochs at 1e-3 and the last epochs/4 at 1e-4 (a fresh Adam).
func clfSchedule(arch string, epochs int) (phases []clfPhase, shift int) {
	if arch != ArchCNN {
		return []clfPhase{{epochs, 1e-3}}, 0
	}
	phases = []clfPhase{{epochs - epochs/4, 1e-3}}
	if epochs/4 > 0 {
		phases = append(phases, clfPhase{epochs / 4, 1e-4})
	}
	return phases, cnnShift
}

// TrainClassifierPair is TrainClassifiers for the pair of an architecture
// (ClassifierPair): ArchMLP (MainClassifier, ValClassifier) or ArchCNN
// (CNNMainClassifier, CNNValClassifier), trained as clfSchedule says.
func TrainClassifierPair(arch string, size, epochs int, mainPath, valPath string, log io.Writer) (*ClassifierReport, error) {
	mainCfg, valCfg, err := ClassifierPair(arch)
	if err != nil {
		return nil, err
	}
	if epochs < 1 {
		return nil, fmt.Errorf("mnist: classifier epochs = %d: must be >= 1", epochs)
	}
	if log == nil {
		log = io.Discard
	}
	dir, err := MNISTDir()
	if err != nil {
		return nil, err
	}
	train, err := LoadMNIST(dir, "train", size)
	if err != nil {
		return nil, err
	}
	test, err := LoadMNIST(dir, "test", size)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	rep := &ClassifierReport{Size: size}
	if arch != ArchMLP {
		rep.Arch = arch
	}
	for i, spec := range []struct {
		cfg  objectives.ClassifierConfig
		name string
		res  *ClfResult
	}{{mainCfg, "main", &rep.Main}, {valCfg, "val", &rep.Val}} {
		cfg := spec.cfg
		cfg.H, cfg.W = size, size
		c, err := objectives.NewClassifier(cfg)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		shape := fmt.Sprintf("hidden %v", cfg.Hidden)
		if len(cfg.Conv) > 0 {
			shape = fmt.Sprintf("conv %v (3×3, stride 2), hidden %v", cfg.Conv, cfg.Hidden)
		}
		fmt.Fprintf(log, "classifier %s: %d×%d binary MNIST, %s %s, %d parameters, BLAS %s\n",
			spec.name, size, size, shape, cfg.Act, c.Store.NumParams(), graph.BLAS())
		phases, shift := clfSchedule(arch, epochs)
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		var losses, lrs []float64
		for _, ph := range phases {
			if len(phases) > 1 || shift > 0 {
				fmt.Fprintf(log, "classifier %s: epochs %d–%d at learning rate %g, random shifts of up to %d pixels\n",
					spec.name, len(losses)+1, len(losses)+ph.epochs, ph.lr, shift)
			}
			l, err := c.TrainAugmented(train.Pixels, train.Labels, ph.epochs, 128, ph.lr, shift, rng, log)
			if err != nil {
				return nil, err
			}
			losses = append(losses, l...)
			if arch == ArchCNN {
				for range l {
					lrs = append(lrs, ph.lr)
				}
			}
		}
		path := mainPath
		if spec.name == "val" {
			path = valPath
		}
		*spec.res = ClfResult{Path: path, Conv: cfg.Conv, Shift: shift, EpochLRs: lrs, Hidden: cfg.Hidden, Act: cfg.Act,
			Losses: losses, Seconds: time.Since(t0).Seconds(), Parameter: c.Store.NumParams()}
		if spec.res.TrainAcc, err = c.Accuracy(train.Pixels, train.Labels); err != nil {
			return nil, err
		}
		if spec.res.TestAcc, err = c.Accuracy(test.Pixels, test.Labels); err != nil {
			return nil, err
		}
		if err := c.Save(spec.res.Path); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "classifier %s: train accuracy %.4f, test accuracy %.4f, %.0fs; %s\n",
			spec.name, spec.res.TrainAcc, spec.res.TestAcc, spec.res.Seconds, spec.res.Path)
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, atomicfile.WriteJSON(filepath.Join(filepath.Dir(mainPath), "classifiers.json"), rep)
}
