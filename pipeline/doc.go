// Package pipeline runs Patchwise's stages: configs, the training loop,
// checkpoints, metrics logs, resume, comparison reports and plots, and the
// speed benchmark of the reference models. It never prints: progress goes
// through the Progress interface that the command line implements.
package pipeline
