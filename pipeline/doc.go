// Package pipeline runs Patchwise's stages and nothing else: it
// orchestrates the other packages.
//
//   - Pretrain trains any registered pretext (pretext.Spec) on a dataset:
//     the pretext's sampler on an augment.Loader makes the batches, a
//     training loop of one step and hooks (the metrics log, validation,
//     checkpoints with package checkpoint, the non-finite guard) drives
//     its model, and an interrupted training resumes with the losses of an
//     uninterrupted one. With Distributed "mpi" it trains data-parallel
//     over the processes mpirun or srun started (Open MPI, bound at run
//     time by internal/mpi), with the losses of one process.
//   - LoadEncoder and RandomEncoder give frozen encoders; Probe scores
//     their features (package probe); ExportEncoder writes one as
//     safetensors (package nn/safetensors) with PyTorch's key names.
//   - Run carries out a multi-stage experiment (ingest, pretrain, probe,
//     report) in a run directory whose stages are named by the hash of
//     their inputs; its Report compares the pretexts. PlanRun lists those
//     stages and what each needs; Work carries them out as one of several
//     workers sharing the run directory, on one machine or many (claims:
//     package claim), and Plan.Slurm writes the batch scripts that do so
//     on a Slurm cluster.
//   - Bench times the reference models, for comparison with PyTorch.
//
// It never prints: progress goes through the Progress interface that the
// command line implements.
package pipeline
