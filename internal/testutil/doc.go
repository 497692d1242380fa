// Package testutil holds helpers shared by the tests of ddsmc's packages:
// a finite-difference gradient checker (Checker) and a deterministic
// hashed denoiser (HashDenoiser). It imports only the standard library, so
// the tests of every package, the Gorgonia-free smc and diffusion included,
// can use it; being internal, nothing outside the module can.
package testutil
