package experiments

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/configs"
)

// TestBuiltinConfigsParse: every built-in config parses, experiments as
// Config and sweeps (sweep_*) as SweepConfig with every point resolved.
func TestBuiltinConfigsParse(t *testing.T) {
	for _, n := range configs.Names() {
		b, _ := configs.Get(n)
		if strings.HasPrefix(n, "sweep_") {
			sc, err := ParseSweep(n, b)
			if err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			pts, _ := sc.Points()
			if len(pts) < 2 || sc.Name != strings.TrimPrefix(n, "sweep_") {
				t.Fatalf("%s: name %q, %d points", n, sc.Name, len(pts))
			}
			continue
		}
		cfg, err := Parse(n, b)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if cfg.Name != n || cfg.Out != filepath.Join("runs", n) {
			t.Fatalf("%s: name %q out %q", n, cfg.Name, cfg.Out)
		}
	}
}

// Every bad config names the offending key.
func TestBadConfigsNameTheKey(t *testing.T) {
	cases := []struct{ toml, want string }{
		{"[train]\nsetps = 10\n", "train.setps"},                         // typo
		{"[data]\nname = \"gmm1\"\ntrain_szie = 5\n", "data.train_szie"}, // typo
		{"[model]\nlength = 3\n", "model.length"},                        // shape comes from data
		{"learning_rate = 0.1\n", "learning_rate"},                       // unknown top-level key
		{"[train]\nsteps = \"many\"\n", "train.steps"},                   // wrong type
		{"[train]\nlr = -0.5\n", "train.lr"},                             // out of range
		{"[train]\nbatch = 0\n", "train.batch"},
		{"[data]\nname = \"gmm7\"\n", "data.name"},
		{"[data]\ntrain_size = -1\n", "data.train_size"},
		{"[diffusion]\nschedule = \"sqrt\"\n", "diffusion.schedule"},
		{"[diffusion]\ngrid = \"log\"\n", "diffusion.grid"},
		{"[diffusion]\nsteps = 0\n", "diffusion.steps"},
		{"[diffusion]\neta = 1.5\n", "diffusion.eta"},
		{"[model]\narch = \"rnn\"\n", "model.arch"},
		{"[model]\nactivation = \"tanh\"\n", "model.activation"},
		{"[sample]\nn = 0\n", "sample.n"},
		{"[train\nsteps = 1\n", "line 2"},                                         // malformed TOML
		{"[smc]\nParticles = 128\n", "unknown key smc.Particles"},                 // keys are case-sensitive
		{"[smc]\nparticles = 64\nParticles = 128\n", "unknown key smc.Particles"}, // (once both were accepted, and the winner varied)
		{"[Train]\nsteps = 5\n", "unknown key Train"},
		{"[smc]\nseed = -1\n", "smc.seed = -1: must be >= 0"},
		{"[data]\nseed = -3\n", "data.seed = -3"},
		{"[train]\nseed = -1\n", "train.seed = -1"},
		{"[smc]\nresampler = \" SYSTEMATIC \"\n", `smc.resampler = " SYSTEMATIC ": names are lower-case`},
		{"[diffusion]\nschedule = \"Linear\"\n", "diffusion.schedule"},
		{"[smc]\nkappa = 0\n", "smc.kappa = 0"},
		{"[smc]\nevery = 0\n", "smc.every = 0"},
		{"x = " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "\n", "nested more than 32 deep"},
	}
	for _, c := range cases {
		_, err := Parse("test.toml", []byte(c.toml))
		if err == nil {
			t.Errorf("%q: no error", c.toml)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "test.toml") {
			t.Errorf("%q: error %q does not name %q and the file", c.toml, err, c.want)
		}
	}
}

func TestOverridesApplyOnTopOfDefaults(t *testing.T) {
	cfg, err := Parse("x", []byte("name = \"small\"\n[train]\nsteps = 7\n"))
	if err != nil {
		t.Fatal(err)
	}
	def := Default()
	if cfg.Train.Steps != 7 || cfg.Train.Batch != def.Train.Batch || cfg.Out != filepath.Join("runs", "small") {
		t.Fatalf("overrides not merged: %+v", cfg.Train)
	}
}

func TestLoadMissingFileNamesIt(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.toml"))
	if err == nil || !strings.Contains(err.Error(), "absent.toml") {
		t.Fatalf("err = %v", err)
	}
}

// A config's task is opened by name; an unknown name lists the registered
// tasks, and a key that neither the runner nor the task owns is an error
// naming it (a [reward] table means nothing to a GMM task).
func TestTaskOptionsAndNames(t *testing.T) {
	for _, c := range []struct{ toml, want string }{
		{"[data]\nname = \"gmm7\"\n", "unknown task (registered: "},
		{"[data]\nname = \"mnist\"\n[reward]\ntargte = 3\n", "unknown key reward.targte"},
		{"[data]\nname = \"mnist\"\nsize = 14\nsise = 3\n", "unknown key data.sise"},
		{"[data]\nname = \"gmm1\"\nsize = 14\n", "unknown key data.size"},
		{"[reward]\ntarget = 3\n", "unknown key reward, reward.target"},
		{"[eval]\nemd_samples = 0\n", "eval.emd_samples = 0"},
		{"[data]\nname = \"mnist\"\n[eval]\nemd_samples = 5\n", "unknown key eval, eval.emd_samples"},
	} {
		if _, err := Parse("t.toml", []byte(c.toml)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.toml, err, c.want)
		}
	}
	cfg, err := Parse("t.toml", []byte("[data]\nname = \"mnist\"\nsize = 14\n[reward]\ntarget = 7\n"))
	if err != nil {
		t.Fatal(err)
	}
	if L, V := cfg.Task.Shape(); cfg.Task.Name() != "mnist" || L != 196 || V != 2 {
		t.Fatalf("task %s with shape %d×%d, want mnist 196×2", cfg.Task.Name(), L, V)
	}
	// The task's own defaults of the common sizes apply when unset.
	if cfg.Data.TrainSize != 60000 || cfg.Data.ValSize != 2000 {
		t.Fatalf("mnist sizes %d/%d, want the task's defaults 60000/2000", cfg.Data.TrainSize, cfg.Data.ValSize)
	}
}

// The product target is a config choice with named errors.
func TestProductTargetConfig(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"target = \"prod\"\n", "smc.target = \"prod\""},
		{"target = \"product\"\n", "smc.second_model"},
		{"target = \"product\"\nsecond_model = \"x.ckpt\"\nexponents = [1.0]\n", "two exponents"},
		{"target = \"product\"\nsecond_model = \"x.ckpt\"\nexponents = [1.0, nan]\n", "finite"},
		{"second_model = \"x.ckpt\"\n", "but smc.target = \"tilted\""},
		{"target = \"product\"\nsecond_model = \"x.ckpt\"\nexponents = [1.5, -0.5]\nproposal = \"grad\"\ntwist = \"grad\"\n", "not proposal \"grad\""},
	} {
		if _, err := parseSMC(t, c.body); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.body, err, c.want)
		}
	}
}

// Absurd sizes are errors naming the setting and a memory estimate, not
// panics or out-of-memory kills.
func TestAbsurdSizesAreErrors(t *testing.T) {
	for _, c := range []struct{ toml, want string }{
		{"[smc]\nphi = 1000000000000\n", "smc.phi: needs about"},
		{"[smc]\nparticles = 9223372036854775807\n", "smc.particles: needs about"},
		{"[smc]\nparticles = 1000000000000\n", "smc.particles"},
		{"[smc]\nworkers = 100000\n", "smc.workers"},
		{"[train]\nbatch = 1000000000000\n", "train.batch"},
		{"[data]\ntrain_size = 1000000000000\n", "data.train_size"},
		{"[model]\nhidden = 1000000000000\n", "model (hidden/layers/embed)"},
		{"[model]\nlayers = 1000000000\n", "model (hidden/layers/embed)"},
	} {
		if _, err := Parse("t.toml", []byte(c.toml)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.toml, err, c.want)
		}
	}
	// The shipped configs fit.
	for _, n := range []string{"gmm1", "gmm2", "mnist"} {
		b, _ := configs.Get(n)
		if _, err := Parse(n, b); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// A prompt on a task that takes none is an error naming the task.
func TestPromptNeedsAPromptedTask(t *testing.T) {
	tmp := t.TempDir()
	_, cfg := trainedTinyBase(t, tmp)
	m, _, err := loadDenoiser(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.SMC.Prompt, cfg.SMC.Particles = "x0=3", 8
	if _, _, err := BuildSampler(cfg, m); err == nil || !strings.Contains(err.Error(), "task gmm1 takes no prompts") {
		t.Fatalf("prompt on gmm1: %v", err)
	}
}
