package experiments

// The runner never names a domain; its tests run on the real ones.
import (
	_ "github.com/ddsmc/ddsmc/experiments/gmm"
	_ "github.com/ddsmc/ddsmc/experiments/mnist"
)
