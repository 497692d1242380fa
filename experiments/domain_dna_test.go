package experiments

// The DNA domain registers its task for the tests that parse every
// built-in config (configs/dna.toml and the sweep_dna_* files).
import _ "github.com/ddsmc/ddsmc/experiments/dna"
