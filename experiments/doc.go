// Package experiments is the runner: typed TOML configs, denoiser training
// and unguided sampling, the SMC sampler built from a config, one run path
// (RunPoint: build the sampler, run it, record the common metrics and the
// task's), sweeps over settings with resumable results, the results store,
// and the tables and figures drawn from it.
//
// It never names a domain. A domain (data, reward, metrics, renderer) is a
// package that implements the contract of package task and registers
// itself; a config's [data] name selects it. The domains that ship are
// experiments/gmm (the synthetic grids, with exact references) and
// experiments/mnist (binarised MNIST with classifier rewards).
//
// Data flows one way: config → task + trained model → sampler → Record →
// store → report.
package experiments
