package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/patchwise-ml/patchwise/pipeline"
	"github.com/patchwise-ml/patchwise/pretext"
)

var pretrainCmd = &command{
	name:    "pretrain",
	summary: "train an encoder on a pretext task, with checkpoints and metrics",
	usage: `patchwise pretrain DATASET --pretext NAME -o DIR [--steps N | --epochs E]
	[--batch 128] [--optimizer sgd|adamw] [--lr X] [--weight-decay X] [--warmup S] [--grad-clip X]
	[--seed 0] [--workers 0] [--config FILE.json] [--resume] [--distributed mpi]

Pretrain trains a convolutional encoder (blocks of conv, batch norm, ReLU
and max pool; or a ResNet-18/34, from --config: "encoder": {"arch":
"resnet18", "stem": "small", "width": 0.25}) with a pretext task on the
"train" split of DATASET,
validating on "val" (or "test") every val_every steps. The pretexts:

` + pretextList(false) + `

DIR, the training directory, which must not exist, receives config.json (the
resolved configuration), metrics.jsonl (one JSON object per step and per
validation) and checkpoints ckpt-step-NNNNNNNN/ (every checkpoint_every
steps, at the end, and on Ctrl-C; the last keep_last and the best by
val_loss are kept).

--config reads every setting of pipeline.PretrainConfig from a JSON file
(unknown fields are refused); flags given on the command line override it.
Images are resized to the encoder's input side, by default the dataset's
side rounded up to a multiple of 2^blocks (28 → 32; 8 for a ResNet with
the small stem, 32 with the ImageNet stem). Relpos crops and jigsaw tiles
at least the encoder's least side (16 for 4 blocks) go in at their own
side (the 21-pixel crops of 96-pixel images at 21: "pair_size" and
"jigsaw.size" in config.json); smaller ones are enlarged (relpos: to the
input side).

--resume continues the training in DIR from its latest checkpoint with its
saved configuration (DATASET and the other flags, but --workers, are not
needed and ignored); the per-step losses are those of an uninterrupted one.
Ctrl-C (or SIGTERM) finishes the current step, saves a checkpoint and exits
with status 130.

--distributed mpi trains data-parallel over the processes that mpirun (Open
MPI) or srun --mpi=pmix started: each draws its slice of every batch (the
batch must be a multiple of the processes), batch norm's statistics and
the gradients are summed over them, and the losses are those of one process
on the same batch (up to the order of sums). Rank 0 alone writes DIR and
reports; every process must see DATASET at the same path. A process that
fails ends them all (MPI_Abort); Ctrl-C or SIGTERM stops them all after the
same step, with a checkpoint. Open MPI's libmpi.so.40 is opened at run time
('patchwise version' says whether it is found; PATCHWISE_MPI_LIB names
another file).

` + datasetArgHelp("DATASET") + ` config.json
keeps builtin:NAME as given; --resume materializes it again when needed.`,
	example: `patchwise ingest /usr/share/datasets/fashion-mnist -o fm --size 28 --channels 1 --val-fraction 0.1
patchwise pretrain fm --pretext relpos --steps 400 --seed 1 -o runs/relpos
patchwise pretrain builtin:fashion-mnist-small --pretext ae-mirrored --steps 200 -o runs/ae
# after Ctrl-C:
patchwise pretrain --resume -o runs/relpos
# two processes, one core each:
GOMAXPROCS=1 mpirun -np 2 patchwise pretrain fm --pretext relpos --steps 400 --distributed mpi -o runs/relpos2
srun --mpi=pmix -N 2 --ntasks-per-node=1 patchwise pretrain fm --pretext relpos --distributed mpi -o runs/relpos2`,
}

func init() { pretrainCmd.run = runPretrain }

// pretrainOptions holds the pretrain verb's flags.
type pretrainOptions struct {
	pretext, out, optimizer, config string
	distributed                     string
	steps, epochs, batch, warmup    int
	workers                         int
	lr, weightDecay, gradClip       float64
	seed                            uint64
	resume                          bool
}

func (o *pretrainOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.pretext, "pretext", "", "pretext `name`: "+strings.Join(pretext.Names(), ", "))
	fs.StringVar(&o.out, "o", "", "training `dir`ectory to create (or to continue, with --resume)")
	fs.IntVar(&o.steps, "steps", 0, "optimiser steps (0: 1000, or --epochs)")
	fs.IntVar(&o.epochs, "epochs", 0, "passes over the training split, instead of --steps")
	fs.IntVar(&o.batch, "batch", 0, "samples (relpos: pairs) per step (0: 128)")
	fs.StringVar(&o.optimizer, "optimizer", "", "optimiser: sgd (momentum 0.9; the default) or adamw")
	fs.Float64Var(&o.lr, "lr", 0, "peak learning rate (0: 0.05 for sgd, 0.001 for adamw)")
	fs.Float64Var(&o.weightDecay, "weight-decay", 0, "weight decay (0: 0.0005; negative: none)")
	fs.Float64Var(&o.gradClip, "grad-clip", 0, "clip the gradient's global L2 norm to this before each step (0: no clipping)")
	fs.IntVar(&o.warmup, "warmup", 0, "linear warm-up `steps` (0: 5% of the steps; negative: none)")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the weights, the batches and the corruption")
	fs.IntVar(&o.workers, "workers", 0, "data-loading goroutines (0: one per core); results do not depend on it")
	fs.StringVar(&o.config, "config", "", "JSON `file` of pipeline.PretrainConfig settings; flags override it")
	fs.BoolVar(&o.resume, "resume", false, "continue the training in -o from its latest checkpoint")
	fs.StringVar(&o.distributed, "distributed", "", "`mpi`: train data-parallel over the processes mpirun or srun started")
}

func runPretrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o pretrainOptions
	fs := newFlagSet(pretrainCmd)
	o.register(fs)
	pos, err := parseFlagsArgs(pretrainCmd, fs, args, stdout)
	if err != nil {
		return err
	}
	usage := func(errs ...error) error { return &usageError{verb: pretrainCmd.name, err: errors.Join(errs...)} }
	var cfg pipeline.PretrainConfig
	if o.config != "" {
		if cfg, err = pipeline.LoadPretrainConfig(o.config); err != nil {
			return usage(err)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if len(pos) > 1 {
		return usage(fmt.Errorf("want one DATASET, got %d arguments", len(pos)))
	}
	if len(pos) == 1 {
		cfg.Dataset = pos[0]
	}
	for name, apply := range map[string]func(){
		"pretext": func() { cfg.Pretext = o.pretext }, "o": func() { cfg.Out = o.out },
		"steps": func() { cfg.Steps = o.steps }, "epochs": func() { cfg.Epochs = o.epochs },
		"batch": func() { cfg.Batch = o.batch }, "optimizer": func() { cfg.Optimizer = o.optimizer },
		"lr": func() { cfg.LR = o.lr }, "weight-decay": func() { cfg.WeightDecay = o.weightDecay },
		"warmup": func() { cfg.Warmup = o.warmup }, "seed": func() { cfg.Seed = o.seed },
		"grad-clip":   func() { cfg.GradClip = o.gradClip },
		"workers":     func() { cfg.Workers = o.workers },
		"distributed": func() { cfg.Distributed = o.distributed },
	} {
		if set[name] {
			apply()
		}
	}
	if o.resume {
		if cfg.Out == "" {
			return usage(errors.New("--resume needs -o DIR"))
		}
	} else if err := cfg.Validate(); err != nil {
		return usage(err)
	}

	if cfg.Distributed == "" && o.resume {
		// A distributed training resumed without the flag stays one.
		if saved, err := pipeline.LoadPretrainConfig(filepath.Join(cfg.Out, pipeline.TrainConfigFile)); err == nil {
			cfg.Distributed = saved.Distributed
		}
	}
	if n := launchedProcesses(); n > 1 && cfg.Distributed == "" {
		return usage(fmt.Errorf("started as one of %d processes (mpirun or srun): add --distributed mpi, or each would train alone into the same directory", n))
	}
	var p pipeline.Progress = pipeline.NoProgress{}
	if cfg.Distributed == pipeline.DistributedMPI {
		rank, size, err := pipeline.MPIWorld()
		if err != nil {
			return err
		}
		worldRank, worldSize = rank, size
		defer endWorld(stderr)
		if rank == 0 {
			p = newPretrainProgress(stderr)
		} else {
			stdout = io.Discard
		}
	} else {
		p = newPretrainProgress(stderr)
	}
	res, err := pipeline.Pretrain(ctx, cfg, o.resume, p)
	p.Done()
	if cfg.Distributed == pipeline.DistributedMPI {
		err = finishWorld(err, stderr)
	}
	if errors.Is(err, pipeline.ErrInvalidConfig) {
		return usage(err)
	}
	if res != nil && err != nil && errors.Is(err, context.Canceled) && res.Config.Out != "" && stdout != io.Discard {
		fmt.Fprintf(stderr, "interrupted after step %d; checkpoint %s\nresume with: patchwise pretrain --resume -o %s\n", res.Steps, res.Checkpoint, res.Config.Out)
	}
	if err != nil {
		return err
	}
	printPretrainSummary(stdout, res)
	return nil
}

// printPretrainSummary prints where a training ended.
func printPretrainSummary(w io.Writer, res *pipeline.PretrainResult) {
	c := res.Config
	fmt.Fprintf(w, "directory  %s\npretext    %s (size %d, widths %v)\nsteps      %d of %d\n", c.Out, c.Pretext, c.Size, c.Encoder.Widths, res.Steps, c.Steps)
	if l := res.Last; l.Loss != nil {
		fmt.Fprintf(w, "loss       %.4f%s\n", *l.Loss, formatValues(" ", "", l.Values))
	}
	if v := res.LastVal; v != nil {
		fmt.Fprintf(w, "val_loss   %.4f%s\n", *v.ValLoss, formatValues(" ", "val_", v.Values))
	}
	if n := res.Steps - res.StartStep; res.ReduceS > 0 && n > 0 {
		fmt.Fprintf(w, "all-reduce %.3f s, %.1f ms a step (rank 0: the metrics and gradients, waits included)\n", res.ReduceS, 1000*res.ReduceS/float64(n))
	}
	fmt.Fprintf(w, "checkpoint %s\n", res.Checkpoint)
	if res.Best != "" && res.Best != res.Checkpoint {
		fmt.Fprintf(w, "best       %s\n", res.Best)
	}
}

// pretrainProgress is a progress bar whose description shows the latest
// loss, accuracy, samples/s and validation numbers.
type pretrainProgress struct {
	pipeline.Progress
	bar   *barProgress // nil when stderr is not a terminal
	what  string
	train string
	val   string
}

func newPretrainProgress(stderr io.Writer) *pretrainProgress {
	p := newProgress(stderr)
	bp, _ := p.(*barProgress)
	return &pretrainProgress{Progress: p, bar: bp}
}

func (p *pretrainProgress) Start(what string, total int) {
	p.what = what
	p.Progress.Start(what, total)
}

// Report implements pipeline.StepReporter.
func (p *pretrainProgress) Report(r pipeline.MetricsRecord) {
	if p.bar == nil || p.bar.bar == nil {
		return
	}
	if r.IsVal() {
		p.val = fmt.Sprintf(" val_loss %.4f", *r.ValLoss) + formatValues("", "val_", r.Values)
	} else {
		p.train = fmt.Sprintf(" loss %.4f", *r.Loss) + formatValues("", "", r.Values)
		p.train += fmt.Sprintf(" %.0f samples/s", *r.SamplesPerS)
	}
	p.bar.bar.Describe(p.what + p.train + p.val)
}

// formatValues formats a record's pretext metrics as " KEY VALUE" pairs in
// key order, each key prefixed, each pair after sep.
func formatValues(sep, prefix string, vals map[string]float64) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		fmt.Fprintf(&b, "%s %s%s %.4g", sep, prefix, k, vals[k])
	}
	return b.String()
}

// pretextList describes the registered pretexts, one per line; with mark,
// those of the default comparison (pretext.Spec.Default) are marked *.
func pretextList(mark bool) string {
	var b strings.Builder
	for i, name := range pretext.Names() {
		spec, _ := pretext.Lookup(name)
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString("  ")
		if mark {
			b.WriteString(map[bool]string{true: "* ", false: "  "}[spec.Default])
		}
		fmt.Fprintf(&b, "%-13s %s; %s", name, spec.Summary, spec.Reference)
	}
	return b.String()
}

// launchedProcesses returns the number of processes mpirun (Open MPI) or
// srun started together with this one, from their environment; 1 when
// neither did.
func launchedProcesses() int {
	for _, v := range []string{"OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "PMI_SIZE"} {
		if n, err := strconv.Atoi(os.Getenv(v)); err == nil && n > 0 {
			return n
		}
	}
	return 1
}

// worldRank and worldSize are this process's place in the MPI world of a
// distributed pretraining, for endWorld and finishWorld.
var worldRank, worldSize int

// endWorld, deferred once MPI is initialised, ends every process of the
// world when this one panics, after printing the panic and its stack:
// the others would otherwise wait in an all-reduce forever.
func endWorld(stderr io.Writer) {
	if r := recover(); r != nil {
		fmt.Fprintf(stderr, "patchwise: rank %d of %d: panic: %v\n%s", worldRank, worldSize, r, debug.Stack())
		pipeline.AbortMPI(exitFailure)
	}
}

// finishWorld ends this process's part in the MPI world after Pretrain
// returned err: MPI_Finalize when the training finished or every process
// stopped together (an interruption), else it prints err, naming the
// rank, and ends every process (MPI_Abort) with the exit code err maps to.
func finishWorld(err error, stderr io.Writer) error {
	if err == nil || errors.Is(err, context.Canceled) {
		if ferr := pipeline.FinalizeMPI(); ferr != nil && err == nil {
			return ferr
		}
		return err
	}
	code := exitFailure
	if errors.Is(err, pipeline.ErrInvalidConfig) {
		code = exitUsage
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(stderr, "patchwise: rank %d of %d: %s\n", worldRank, worldSize, line)
	}
	pipeline.AbortMPI(code)
	return err
}
