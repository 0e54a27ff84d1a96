package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/patchwise-ml/patchwise/pipeline"
	"github.com/patchwise-ml/patchwise/pretext"
)

var pretrainCmd = &command{
	name:    "pretrain",
	summary: "train an encoder on a pretext task, with checkpoints and metrics",
	usage: `patchwise pretrain DATASET --pretext NAME -o DIR [--steps N | --epochs E]
	[--batch 128] [--optimizer sgd|adamw] [--lr X] [--weight-decay X] [--warmup S] [--grad-clip X]
	[--seed 0] [--workers 0] [--config FILE.json] [--resume]

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
Images and crops are resized to the encoder's input side, by default the
dataset's side rounded up to a multiple of 2^blocks (28 → 32; 8 for a
ResNet with the small stem, 32 with the ImageNet stem).

--resume continues the training in DIR from its latest checkpoint with its
saved configuration (DATASET and the other flags, but --workers, are not
needed and ignored); the per-step losses are those of an uninterrupted one.
Ctrl-C (or SIGTERM) finishes the current step, saves a checkpoint and exits
with status 130.

` + datasetArgHelp("DATASET") + ` config.json
keeps builtin:NAME as given; --resume materializes it again when needed.`,
	example: `patchwise ingest /usr/share/datasets/fashion-mnist -o fm --size 28 --channels 1 --val-fraction 0.1
patchwise pretrain fm --pretext relpos --steps 400 --seed 1 -o runs/relpos
patchwise pretrain builtin:fashion-mnist-small --pretext ae-mirrored --steps 200 -o runs/ae
# after Ctrl-C:
patchwise pretrain --resume -o runs/relpos`,
}

func init() { pretrainCmd.run = runPretrain }

// pretrainOptions holds the pretrain verb's flags.
type pretrainOptions struct {
	pretext, out, optimizer, config string
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
		"grad-clip": func() { cfg.GradClip = o.gradClip },
		"workers":   func() { cfg.Workers = o.workers },
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

	p := newPretrainProgress(stderr)
	res, err := pipeline.Pretrain(ctx, cfg, o.resume, p)
	p.Done()
	if errors.Is(err, pipeline.ErrInvalidConfig) {
		return usage(err)
	}
	if res != nil && err != nil && ctx.Err() != nil {
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
