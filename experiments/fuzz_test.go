package experiments

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/ddsmc/ddsmc/configs"
)

// encodeConfig re-encodes a parsed config as TOML: the runner's keys and
// the task's options, merged.
func encodeConfig(t *testing.T, cfg Config) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(cfg); err != nil {
		t.Fatalf("encode: %v", err)
	}
	var merged map[string]any
	if _, err := toml.Decode(buf.String(), &merged); err != nil {
		t.Fatalf("re-decode: %v\n%s", err, buf.String())
	}
	for _, o := range cfg.TaskOptions {
		var ob bytes.Buffer
		if err := toml.NewEncoder(&ob).Encode(o); err != nil {
			t.Fatalf("encode task options: %v", err)
		}
		var om map[string]any
		if _, err := toml.Decode(ob.String(), &om); err != nil {
			t.Fatal(err)
		}
		for k, v := range om {
			sub, ok := v.(map[string]any)
			dst, ok2 := merged[k].(map[string]any)
			if ok && ok2 {
				for kk, vv := range sub {
					dst[kk] = vv
				}
			} else {
				merged[k] = v
			}
		}
	}
	buf.Reset()
	if err := toml.NewEncoder(&buf).Encode(merged); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzParseConfig: decoding any text never panics, and every accepted
// experiment config re-encodes to an equivalent one (the same resolved
// config, task options included). The seed corpus — the built-in configs
// and hostile variants of them — runs in go test ./....
func FuzzParseConfig(f *testing.F) {
	for _, n := range []string{"gmm1", "gmm2", "mnist"} {
		b, _ := configs.Get(n)
		f.Add(b)
	}
	for _, s := range []string{
		"[smc]\nparticles = 64\nParticles = 128\n",
		"[smc]\nseed = -1\n",
		"[smc]\nphi = 1000000000000\n",
		"[data]\nname = \"mnist\"\nsize = 14\n[reward]\ntarget = 3\n",
		"x = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
		"[smc]\nresampler = \" SYSTEMATIC \"\n",
		"[smc]\ntarget = \"product\"\nsecond_model = \"a.ckpt\"\nexponents = [1.5, -0.5]\n",
		"[smc]\nlambda = \"list\"\nlambda_values = [0.0, 0.5, 1.0]\n[diffusion]\nsteps = 2\n",
		"name = \"\\u0000\"\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := Parse("fuzz.toml", b)
		if err != nil {
			return
		}
		again, err := Parse("again.toml", encodeConfig(t, cfg))
		if err != nil {
			t.Fatalf("an accepted config does not re-parse: %v\n%s", err, encodeConfig(t, cfg))
		}
		j1, _ := json.Marshal(cfg)
		j2, _ := json.Marshal(again)
		if !bytes.Equal(j1, j2) {
			t.Fatalf("re-encoding changed the config:\n%s\n%s", j1, j2)
		}
	})
}

// FuzzParseSweep: decoding any sweep text never panics, and an accepted
// sweep re-encodes to one with the same fingerprint (the same points).
func FuzzParseSweep(f *testing.F) {
	for _, n := range configs.Names() {
		if len(n) > 6 && n[:6] == "sweep_" {
			b, _ := configs.Get(n)
			f.Add(b)
		}
	}
	for _, s := range []string{
		"name = \"s\"\nbase = \"gmm1\"\n[sweep]\nparticles = [8, 16]\n",
		"name = \"s\"\nbase = \"gmm1\"\n[smc]\nParticles = 8\n[sweep]\nphi = [1]\n",
		"name = \"s\"\nbase = \"gmm1\"\n[variants.A]\nproposal = \"lop\"\ntwist = \"exact\"\n[sweep]\nvariants = [\"A\"]\n",
		"name = \"s\"\nbase = \"gmm1\"\n[[sweep]]\nphi = [1, 2]\n[[sweep]]\nparticles = [4]\n",
		"name = \"s\"\nbase = \"gmm1\"\n[sweep]\nseed = [1, 2]\n",
		"name = \"s\"\nbase = \"gmm1\"\nseed = -4\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, err := ParseSweep("fuzz.toml", b)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		raw := map[string]any{"name": sc.Name, "base": sc.Base, "auto_train": sc.AutoTrain, "repeats": sc.Repeats,
			"workers": sc.Workers, "seed": sc.Seed}
		if sc.SMC != nil {
			raw["smc"] = sc.SMC
		}
		if sc.Variants != nil {
			raw["variants"] = sc.Variants
		}
		if sc.Sweep != nil {
			raw["sweep"] = sc.Sweep
		}
		if err := toml.NewEncoder(&buf).Encode(raw); err != nil {
			t.Fatalf("encode: %v", err)
		}
		again, err := ParseSweep("again.toml", buf.Bytes())
		if err != nil {
			t.Fatalf("an accepted sweep does not re-parse: %v\n%s", err, buf.String())
		}
		f1, _ := sc.Fingerprint()
		f2, _ := again.Fingerprint()
		if f1 != f2 {
			t.Fatalf("re-encoding changed the sweep's fingerprint\n%s", buf.String())
		}
	})
}
