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

// ClassifierReport records the training of the two classifiers.
type ClassifierReport struct {
	Size    int       `json:"size"`
	Main    ClfResult `json:"main"`
	Val     ClfResult `json:"val"`
	Seconds float64   `json:"seconds"`
}

// ClfResult is one classifier's outcome.
type ClfResult struct {
	Path      string    `json:"path"`
	Hidden    []int     `json:"hidden"`
	Act       string    `json:"activation"`
	Losses    []float64 `json:"epoch_losses"`
	TrainAcc  float64   `json:"train_accuracy"`
	TestAcc   float64   `json:"test_accuracy"`
	Seconds   float64   `json:"seconds"`
	Parameter int       `json:"parameters"`
}

// TrainClassifiers trains the main and held-out classifiers on the
// binarised MNIST training split at size 28 or 14 (epochs passes, Adam),
// evaluates them on the official test split, and writes them (atomically)
// to mainPath and valPath, with classifiers.json beside mainPath.
func TrainClassifiers(size, epochs int, mainPath, valPath string, log io.Writer) (*ClassifierReport, error) {
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
	for i, spec := range []struct {
		cfg  objectives.ClassifierConfig
		name string
		res  *ClfResult
	}{{MainClassifier, "main", &rep.Main}, {ValClassifier, "val", &rep.Val}} {
		cfg := spec.cfg
		cfg.H, cfg.W = size, size
		c, err := objectives.NewClassifier(cfg)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		fmt.Fprintf(log, "classifier %s: %d×%d binary MNIST, hidden %v %s, %d parameters, BLAS %s\n",
			spec.name, size, size, cfg.Hidden, cfg.Act, c.Store.NumParams(), graph.BLAS())
		losses, err := c.Train(train.Pixels, train.Labels, epochs, 128, 1e-3, rand.New(rand.NewPCG(cfg.Seed, uint64(i))), log)
		if err != nil {
			return nil, err
		}
		path := mainPath
		if spec.name == "val" {
			path = valPath
		}
		*spec.res = ClfResult{Path: path, Hidden: cfg.Hidden, Act: cfg.Act,
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
