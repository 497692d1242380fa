package experiments

// The IMDB task joins the real domains that the runner's tests parse
// (configs/imdb.toml among the built-in configs).
import _ "github.com/ddsmc/ddsmc/experiments/imdb"
