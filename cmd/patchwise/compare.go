package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/patchwise-ml/patchwise/data/builtin"
	"github.com/patchwise-ml/patchwise/pipeline"
	"github.com/patchwise-ml/patchwise/pretext"
	"github.com/patchwise-ml/patchwise/probe"
)

var compareCmd = &command{
	name:    "compare",
	summary: "compare pretext tasks side by side (the default job; nothing to download)",
	usage: `patchwise compare [-o DIR] [--dataset DS] [--transfer DS2 ...]
	[--pretexts ` + strings.Join(comparePretexts(), ",") + `]
	[--seeds N] [--steps N] [--batch N] [--widths 16,32,64,128] [--grad-clip 5]
	[--low-shot 0.01,0.1] [--layers] [--lr-sweep LR,LR,...] [--workers N]

Compare answers which pretext gives features that transfer: it pretrains
the same encoder with every pretext on the same data with the same budget,
N seeds each, probes every encoder the same way (linear probe and k-NN,
docs/design.md §6) on DS and on each transfer dataset, and writes report.md,
report.html, report.json and plots into DIR, printing its answer at the
end. "random" (the untrained encoder), "pixels" (raw pixels) and
"supervised" (trained with the labels) are the baselines. The pretexts
(--pretexts takes any of them; the default list is the pretexts marked *
and the baselines):

` + pretextList(true) + `

With no --dataset it runs on the small real datasets embedded in the
binary: 10,000 Fashion-MNIST training images (2,000 test) to pretrain and
probe, and 5,000 MNIST images (1,000 test) as the transfer target (see
data/builtin for their licences). This default job takes a few minutes on
two cores.

DS and DS2 are dataset directories (patchwise ingest) or builtin:NAME
(` + strings.Join(builtin.Names, ", ") + `), which compare writes into
DIR/datasets. Compare is 'patchwise run' with a generated config (saved in
DIR/run.json): running it again in the same DIR skips what is finished and
resumes what was interrupted; a DIR holding another comparison is refused.

The report says, for every pretext and dataset, how far it is from the
untrained encoder and from the best row, with a 95 % interval over the
paired seeds (Student t) and one over the test images (bootstrap), and
whether that resolves the difference or about how many seeds would.
--low-shot adds the linear probe with those shares of the labels (1 %
and 10 % by default; --low-shot "" for none), --layers the linear probe
of every encoder block, --lr-sweep a learning-rate sweep for every
trained pretext, chosen on its own validation loss. report.md and
report.html (one self-contained page, plots inline) show it all,
report.json carries every number (docs/report.schema.json), and the
budgets say what each pretraining cost: steps, images, FLOPs, time.`,
	example: `patchwise compare
patchwise compare -o cmp-fm --dataset fm --transfer mnist --seeds 3 --steps 1000
patchwise compare --pretexts relpos,ae-mirrored,random --seeds 2
patchwise compare -o cmp-layers --layers --lr-sweep 0.02,0.05,0.1`,
}

func init() { compareCmd.run = runCompare }

// compareWidths are the encoder widths of the compare job: sized, with its
// steps and seeds, so that the default comparison finishes in a few
// minutes on two cores.
var compareWidths = []int{16, 32, 64, 128}

// comparePretexts is the default list of the compare job: the registry's
// default pretexts (pretext.DefaultNames), then the two baselines.
func comparePretexts() []string {
	return append(pretext.DefaultNames(), pipeline.BaselineRandom, pipeline.BaselinePixels)
}

// The default job's seeds and steps: 5 seeds of 120 steps cost the same
// pretraining steps as 3 of 200, and the paired intervals, whose half-width
// is t(0.975, n−1)·s/√n, are half as wide (1.24·s against 2.48·s). Measured
// side by side on fashion-mnist-small, 5 × 120 resolved 4 of the 6
// differences to the random encoder and 3 × 200 resolved 3, in about the
// same time (6 to 7 minutes on two shared cores).
const (
	compareOut   = "patchwise-compare"
	compareSteps = 120
	compareSeeds = 5
	// compareLowShot are the shares of the labels of the default job's
	// low-shot probes: cheap, since they reuse the cached features.
	compareLowShot = "0.01,0.1"
	// compareGradClip keeps the tied autoencoder, whose first steps see
	// gradient norms above 100, from diverging at the shared learning
	// rate; the other pretexts are clipped in a handful of early steps.
	compareGradClip = 5
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(compareCmd)
	out := fs.String("o", compareOut, "output `dir`ectory")
	dataset := fs.String("dataset", "", "dataset to pretrain and probe on (default builtin:fashion-mnist-small)")
	var transfer listFlag
	fs.Var(&transfer, "transfer", "dataset to probe for transfer; repeatable (default with no --dataset: builtin:mnist-small)")
	pretexts := fs.String("pretexts", strings.Join(comparePretexts(), ","), "pretexts to compare, comma-separated")
	seeds := fs.Int("seeds", compareSeeds, "seeds per pretext (1 to N)")
	steps := fs.Int("steps", compareSteps, "optimiser steps per pretraining")
	batch := fs.Int("batch", 0, "samples (relpos: pairs) per step (0: 128)")
	widths := fs.String("widths", joinInts(compareWidths), "encoder block widths, comma-separated")
	clip := fs.Float64("grad-clip", compareGradClip, "clip the gradient's global L2 norm to this (0: no clipping)")
	workers := fs.Int("workers", 0, "data-loading goroutines (0: one per core); results do not depend on it")
	lowShot := fs.String("low-shot", compareLowShot, "shares of the labels for the low-shot probes, comma-separated (\"\": none)")
	layers := fs.Bool("layers", false, "probe every encoder block (layer-wise) on the pretraining dataset")
	sweep := fs.String("lr-sweep", "", "learning rates to sweep for every trained pretext, chosen on its validation loss, comma-separated")
	if err := parseFlags(compareCmd, fs, args, stdout); err != nil {
		return err
	}
	usage := func(errs ...error) error { return &usageError{verb: compareCmd.name, err: errors.Join(errs...)} }
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if *seeds < 1 {
		errs = append(errs, fmt.Errorf("--seeds %d: want at least 1", *seeds))
	}
	if *steps < 1 {
		errs = append(errs, fmt.Errorf("--steps %d: want at least 1", *steps))
	}
	ws, err := parseInts(*widths)
	if err != nil {
		errs = append(errs, fmt.Errorf("--widths: %w", err))
	}
	fractions, err := parseFloats(*lowShot)
	if err != nil {
		errs = append(errs, fmt.Errorf("--low-shot: %w", err))
	}
	lrs, err := parseFloats(*sweep)
	if err != nil {
		errs = append(errs, fmt.Errorf("--lr-sweep: %w", err))
	}
	if len(errs) > 0 {
		return usage(errs...)
	}
	cfg := pipeline.RunConfig{Out: *out, Pretexts: splitList(*pretexts)}
	if len(fractions) > 0 {
		cfg.LowShot = &probe.LowShotConfig{Fractions: fractions}
	}
	if *layers {
		cfg.Layers = &pipeline.LayersConfig{}
	}
	if len(lrs) > 0 {
		cfg.Overrides = map[string]pipeline.PretextOverride{}
		for _, p := range cfg.Pretexts {
			if p != pipeline.BaselineRandom && p != pipeline.BaselinePixels {
				cfg.Overrides[p] = pipeline.PretextOverride{LRSweep: lrs}
			}
		}
	}
	for s := 1; s <= *seeds; s++ {
		cfg.Seeds = append(cfg.Seeds, uint64(s))
	}
	if *dataset == "" {
		cfg.Dataset = pipeline.DatasetSpec{Builtin: "fashion-mnist-small"}
		if len(transfer) == 0 {
			transfer = listFlag{"builtin:mnist-small"}
		}
	} else {
		cfg.Dataset = datasetSpec(*dataset)
	}
	for _, t := range transfer {
		cfg.Transfer = append(cfg.Transfer, datasetSpec(t))
	}
	cfg.Pretrain = pipeline.PretrainConfig{
		Steps: *steps, Batch: *batch, Workers: *workers, GradClip: *clip,
		Config:          pretext.Config{Encoder: pretext.EncoderConfig{Widths: ws}},
		ValEvery:        -1, // once, at the end
		CheckpointEvery: max(50, *steps/5),
		KeepLast:        1,
	}
	return runExperiment(ctx, compareCmd.name, cfg, stdout, stderr)
}

// datasetSpec reads "builtin:NAME" or a dataset directory.
func datasetSpec(s string) pipeline.DatasetSpec {
	if name, ok := builtin.Parse(s); ok {
		return pipeline.DatasetSpec{Builtin: name}
	}
	return pipeline.DatasetSpec{Path: s}
}

// datasetArgHelp is what a verb's help says about its dataset argument
// what.
func datasetArgHelp(what string) string {
	return what + ` is a dataset directory (patchwise ingest) or a dataset
embedded in the binary, written on first use to patchwise/datasets in the
user cache folder: ` + builtin.Args() + `.`
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseFloats reads a comma-separated list of positive numbers; "" is
// none.
func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, f := range splitList(s) {
		x, err := strconv.ParseFloat(f, 64)
		if err != nil || !(x > 0) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, x)
	}
	return out, nil
}

func joinInts(xs []int) string {
	var s []string
	for _, x := range xs {
		s = append(s, strconv.Itoa(x))
	}
	return strings.Join(s, ",")
}

var _ flag.Value = (*listFlag)(nil)
