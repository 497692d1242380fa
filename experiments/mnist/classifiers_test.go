package mnist

import (
	"strings"
	"testing"
)

// TestMNISTClassifierSpecs: the main and held-out classifiers differ in
// architecture and seed (so the held-out metrics are independent), and bad
// training arguments are errors.
func TestMNISTClassifierSpecs(t *testing.T) {
	if MainClassifier.Seed == ValClassifier.Seed || MainClassifier.Act == ValClassifier.Act ||
		len(MainClassifier.Hidden) == len(ValClassifier.Hidden) {
		t.Fatalf("main %+v and held-out %+v classifiers must differ in architecture and seed", MainClassifier, ValClassifier)
	}
	if _, err := TrainClassifiers(28, 0, t.TempDir()+"/a", t.TempDir()+"/b", nil); err == nil || !strings.Contains(err.Error(), "epochs = 0") {
		t.Fatalf("epochs = 0: %v", err)
	}
	if _, err := TrainClassifiers(20, 1, t.TempDir()+"/a", t.TempDir()+"/b", nil); err == nil || !strings.Contains(err.Error(), "20") {
		t.Fatalf("size 20: %v", err)
	}
}
