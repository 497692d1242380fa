package mnist

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/ddsmc/ddsmc/configs"
	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/objectives"
)

// Render draws one run's outputs as a captioned grid and several runs as
// one row each.
func TestRenderOneAndManyPanels(t *testing.T) {
	tk, err := openTOML(t, "[data]\nsize = 14\n")
	if err != nil {
		t.Fatal(err)
	}
	x := make([]int, 3*196)
	for i := range x {
		x[i] = (i / 5) % 2
	}
	dir := t.TempDir()
	if err := writeSampleRewards(filepath.Join(dir, SampleRewardsFile), []float64{-1, -2, -3}, []float64{-1, -2, -3}); err != nil {
		t.Fatal(err)
	}
	p := task.Panel{Title: "SMC", Out: task.Outputs{L: 196, Samples: x, Dir: dir}, Metrics: map[string]float64{"acc": 0.5}}
	for name, panels := range map[string][]task.Panel{"one.png": {p}, "many.png": {p, p}} {
		path := filepath.Join(dir, name)
		if err := tk.Render(path, panels); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(path); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// Prepare trains nothing when the classifiers exist.
func TestPrepareKeepsExistingClassifiers(t *testing.T) {
	dir := t.TempDir()
	tk, err := openTOML(t, "[data]\nsize = 14\n[reward]\nclassifier = \""+filepath.Join(dir, "a")+"\"\nval_classifier = \""+filepath.Join(dir, "b")+"\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(tk.Missing()) != 2 {
		t.Fatalf("Missing() = %v, want both", tk.Missing())
	}
	for _, f := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if m := tk.Missing(); len(m) != 0 {
		t.Fatalf("Missing() = %v", m)
	}
	if err := tk.Prepare(false, os.Stderr); err != nil {
		t.Fatal(err)
	}
}

// [reward] classifier_arch: "mlp" is the default (stored in its canonical
// empty form, so the options of existing configs, which sweep
// fingerprints hash, are unchanged), "cnn" moves the default classifier
// paths to runs/mnist<size>-cnn, explicit paths are kept, and anything
// else is an error naming the key.
func TestClassifierArchOption(t *testing.T) {
	def, err := openTOML(t, "[data]\nsize = 28\n")
	if err != nil {
		t.Fatal(err)
	}
	explicit, err := openTOML(t, "[data]\nsize = 28\n[reward]\nclassifier_arch = \"mlp\"\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range []*Task{def, explicit} {
		main, val := tk.ClassifierPaths()
		if tk.ClassifierArch() != ArchMLP || main != filepath.Join("runs", "mnist28", "clf_main.ckpt") || val != filepath.Join("runs", "mnist28", "clf_val.ckpt") {
			t.Errorf("mlp: arch %q, paths %s, %s", tk.ClassifierArch(), main, val)
		}
	}
	jd, _ := json.Marshal(def.o)
	je, _ := json.Marshal(explicit.o)
	if string(jd) != string(je) || strings.Contains(string(jd), "classifier_arch") {
		t.Errorf("options JSON: default %s, explicit mlp %s (want equal, without classifier_arch)", jd, je)
	}

	cnn, err := openTOML(t, "[data]\nsize = 14\n[reward]\nclassifier_arch = \"cnn\"\n")
	if err != nil {
		t.Fatal(err)
	}
	main, val := cnn.ClassifierPaths()
	if cnn.ClassifierArch() != ArchCNN || main != filepath.Join("runs", "mnist14-cnn", "clf_main.ckpt") || val != filepath.Join("runs", "mnist14-cnn", "clf_val.ckpt") {
		t.Errorf("cnn: arch %q, paths %s, %s", cnn.ClassifierArch(), main, val)
	}
	if DefaultClassifierDirFor(28, ArchCNN) != filepath.Join("runs", "mnist28-cnn") || DefaultClassifierDirFor(28, ArchMLP) != DefaultClassifierDir(28) {
		t.Errorf("DefaultClassifierDirFor: %s, %s", DefaultClassifierDirFor(28, ArchCNN), DefaultClassifierDirFor(28, ArchMLP))
	}
	own, err := openTOML(t, "[reward]\nclassifier_arch = \"cnn\"\nclassifier = \"a.ckpt\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if main, val := own.ClassifierPaths(); main != "a.ckpt" || val != filepath.Join("runs", "mnist28-cnn", "clf_val.ckpt") {
		t.Errorf("cnn with an explicit main path: %s, %s", main, val)
	}
	for _, bad := range []string{"resnet", "CNN", " mlp"} {
		_, err := openTOML(t, "[reward]\nclassifier_arch = \""+bad+"\"\n")
		if err == nil || !strings.Contains(err.Error(), "reward.classifier_arch = \""+bad+"\"") || !strings.Contains(err.Error(), `"cnn"`) {
			t.Errorf("classifier_arch %q: error %v", bad, err)
		}
	}
}

// The CNN pair: valid at both image sizes, convolutional, different from
// each other in shape, activation and seed (like the MLP pair), and
// different in seed from the MLPs; an unknown architecture is an error.
func TestCNNClassifierSpecs(t *testing.T) {
	m, v, err := ClassifierPair(ArchCNN)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Conv, CNNMainClassifier.Conv) || !slices.Equal(v.Conv, CNNValClassifier.Conv) {
		t.Fatalf("ClassifierPair(cnn) = %+v, %+v", m, v)
	}
	if len(m.Conv) == 0 || len(v.Conv) == 0 || m.Seed == v.Seed || m.Act == v.Act || slices.Equal(m.Conv, v.Conv) ||
		m.Seed == MainClassifier.Seed || v.Seed == ValClassifier.Seed {
		t.Fatalf("CNN main %+v and held-out %+v must be convolutional and differ in architecture and seed", m, v)
	}
	if mm, vv, err := ClassifierPair(ArchMLP); err != nil || len(mm.Conv) != 0 || len(vv.Conv) != 0 || mm.Seed != MainClassifier.Seed || vv.Seed != ValClassifier.Seed {
		t.Fatalf("ClassifierPair(mlp) = %+v, %+v, %v", mm, vv, err)
	}
	for _, cfg := range []objectives.ClassifierConfig{m, v} {
		for _, size := range []int{28, 14} {
			cfg.H, cfg.W = size, size
			if _, err := objectives.NewClassifier(cfg); err != nil {
				t.Fatalf("%d×%d: %v", size, size, err)
			}
		}
	}
	if _, _, err := ClassifierPair("rnn"); err == nil || !strings.Contains(err.Error(), `"rnn"`) {
		t.Fatalf("ClassifierPair(rnn): %v", err)
	}
	if _, err := TrainClassifierPair("rnn", 28, 1, t.TempDir()+"/a", t.TempDir()+"/b", nil); err == nil || !strings.Contains(err.Error(), `"rnn"`) {
		t.Fatalf("TrainClassifierPair(rnn): %v", err)
	}
	if _, err := TrainClassifierPair(ArchCNN, 28, 0, t.TempDir()+"/a", t.TempDir()+"/b", nil); err == nil || !strings.Contains(err.Error(), "epochs = 0") {
		t.Fatalf("cnn, epochs = 0: %v", err)
	}
}

// The built-in mnist-cnn config is mnist's with the CNN classifiers: the
// same settings except its name, the denoiser checkpoint (mnist's) and
// classifier_arch; its task trains the CNN pair into runs/mnist28-cnn.
func TestMNISTCNNConfig(t *testing.T) {
	b, err := configs.Get("mnist-cnn")
	if err != nil {
		t.Fatal(err)
	}
	base, err := configs.Get("mnist")
	if err != nil {
		t.Fatal(err)
	}
	var cnn, mlp map[string]any
	if err := toml.Unmarshal(b, &cnn); err != nil {
		t.Fatal(err)
	}
	if err := toml.Unmarshal(base, &mlp); err != nil {
		t.Fatal(err)
	}
	if cnn["name"] != "mnist-cnn" || cnn["checkpoint"] != "runs/mnist/denoiser.ckpt" || cnn["out"] != nil {
		t.Fatalf("mnist-cnn: name %v, checkpoint %v, out %v", cnn["name"], cnn["checkpoint"], cnn["out"])
	}
	if r := cnn["reward"].(map[string]any); r["classifier_arch"] != "cnn" {
		t.Fatalf("mnist-cnn [reward] %v", r)
	}
	delete(cnn, "name")
	delete(cnn, "checkpoint")
	delete(cnn["reward"].(map[string]any), "classifier_arch")
	delete(mlp, "name")
	if !reflect.DeepEqual(cnn, mlp) {
		t.Fatalf("mnist-cnn differs from mnist beyond name, checkpoint and classifier_arch:\n%v\n%v", cnn, mlp)
	}
	dec, err := task.NewTOML(b)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := task.Open(&task.Spec{Name: "mnist", TrainSize: 60000, ValSize: 2000}, dec)
	if err != nil {
		t.Fatal(err)
	}
	main, val := tk.(*Task).ClassifierPaths()
	if tk.(*Task).ClassifierArch() != ArchCNN || main != filepath.Join("runs", "mnist28-cnn", "clf_main.ckpt") || val != filepath.Join("runs", "mnist28-cnn", "clf_val.ckpt") {
		t.Fatalf("mnist-cnn classifiers: %s %s, %s", tk.(*Task).ClassifierArch(), main, val)
	}
}

// The MLPs train as they always did (every epoch at 1e-3, no
// augmentation); the CNNs with shifts and the last quarter of the epochs
// at a tenth of the learning rate, the phases adding up to the epochs.
func TestClassifierSchedules(t *testing.T) {
	if ph, shift := clfSchedule(ArchMLP, 12); shift != 0 || !reflect.DeepEqual(ph, []clfPhase{{12, 1e-3}}) {
		t.Errorf("mlp: %v, shift %d", ph, shift)
	}
	if ph, shift := clfSchedule(ArchCNN, 12); shift != cnnShift || shift < 1 || !reflect.DeepEqual(ph, []clfPhase{{9, 1e-3}, {3, 1e-4}}) {
		t.Errorf("cnn, 12 epochs: %v, shift %d", ph, shift)
	}
	for e := 1; e <= 9; e++ {
		ph, _ := clfSchedule(ArchCNN, e)
		sum := 0
		for _, p := range ph {
			if p.epochs < 1 {
				t.Errorf("cnn, %d epochs: empty phase in %v", e, ph)
			}
			sum += p.epochs
		}
		if sum != e || ph[0].lr != 1e-3 {
			t.Errorf("cnn, %d epochs: %v", e, ph)
		}
	}
}
