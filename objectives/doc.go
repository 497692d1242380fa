// Package objectives owns the losses and the training loops: the MDLM
// continuous-time ELBO (masked cross-entropy weighted by the schedule), its
// validation in nats per token, and the Adam training loop with checkpoints.
package objectives
