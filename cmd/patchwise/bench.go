package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/patchwise-ml/patchwise/pipeline"
)

var benchCmd = &command{
	name:    "bench",
	summary: "time training steps of the reference models",
	usage: `patchwise bench [--json] [--models classifier,autoencoder,relpos] [--batch 128]
	[--size 32] [--channels 3] [--steps 20] [--warmup 5] [--seed 0] [--width 1]
patchwise bench --gemm [--json] [--steps 20]

Bench times training steps (forward, backward, SGD update) of the reference
models on random data and prints, per model, the median step time, the
throughput in samples per second and the peak resident memory. The model
encoder_forward times feature extraction instead: the encoder alone, in
evaluation mode, as the probe runs it. The model resnet18 is a ResNet-18
classifier (torchvision's resnet18 layout, ImageNet stem) with stage widths
64, 128, 256, 512 times --width; bench/compare times it on 64x64 images in
batches of 64. Without --json it prints a table;
with --json one JSON object per model and line, with the same fields as
bench/torch_ref.py in Patchwise's repository (the same models in
PyTorch), so the two can be compared side by side; bench/compare runs
both alternately and prints the ratios.

With --gemm it times the matrix multiplication at the convolution shapes
instead, in GFLOP/s.

Progress goes to stderr when it is a terminal.`,
	example: `# compare with PyTorch on the same machine, in the same run
patchwise bench --json
MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000 \
	/usr/bin/python3 bench/torch_ref.py --channels-last

# feature extraction, a quarter-width ResNet-18, and the GEMM on its own
patchwise bench --models encoder_forward
patchwise bench --models resnet18 --batch 64 --size 64 --width 0.25
patchwise bench --gemm`,
}

func init() { benchCmd.run = runBench }

// benchOptions holds the bench verb's flags.
type benchOptions struct {
	json     bool
	gemm     bool
	models   string // comma-separated model names
	batch    int
	size     int
	channels int
	steps    int
	warmup   int
	seed     uint64
	width    float64
}

// register defines o's flags on fs, with the documented defaults.
func (o *benchOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.json, "json", false, "print one JSON object per model and line instead of a table")
	fs.BoolVar(&o.gemm, "gemm", false, "time the GEMM at the convolution shapes instead of models (--steps products each)")
	fs.StringVar(&o.models, "models", "classifier,autoencoder,relpos", "comma-separated `models` to time: classifier, autoencoder, relpos, encoder_forward, resnet18")
	fs.IntVar(&o.batch, "batch", 128, "images (pairs for relpos) per step")
	fs.IntVar(&o.size, "size", 32, "image side in `pixels`")
	fs.IntVar(&o.channels, "channels", 3, "image channels, 1 or 3")
	fs.IntVar(&o.steps, "steps", 20, "timed steps")
	fs.IntVar(&o.warmup, "warmup", 5, "untimed warm-up steps before timing")
	fs.Uint64Var(&o.seed, "seed", 0, "seed for weights and random inputs")
	fs.Float64Var(&o.width, "width", 1, "width `multiplier` of resnet18's stages, e.g. 0.25 for 16, 32, 64, 128 channels")
}

// config checks o and converts it to a pipeline.BenchConfig. Every
// problem is reported at once, each naming its flag.
func (o *benchOptions) config() (pipeline.BenchConfig, error) {
	var errs []error
	positive := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("--%s must be positive, got %d", name, v))
		}
	}
	positive("batch", o.batch)
	positive("size", o.size)
	positive("steps", o.steps)
	if o.channels != 1 && o.channels != 3 {
		errs = append(errs, fmt.Errorf("--channels must be 1 or 3, got %d", o.channels))
	}
	if o.warmup < 0 {
		errs = append(errs, fmt.Errorf("--warmup must not be negative, got %d", o.warmup))
	}
	if !(o.width > 0) {
		errs = append(errs, fmt.Errorf("--width must be positive, got %v", o.width))
	}
	var models []string
	for _, m := range strings.Split(o.models, ",") {
		if m = strings.TrimSpace(m); m != "" {
			models = append(models, m)
		}
	}
	if len(models) == 0 {
		errs = append(errs, errors.New("--models names no model"))
	}
	warmup := o.warmup
	if warmup == 0 {
		warmup = -1 // BenchConfig's zero value means the default
	}
	cfg := pipeline.BenchConfig{
		Models:   models,
		Batch:    o.batch,
		Size:     o.size,
		Channels: o.channels,
		Steps:    o.steps,
		Warmup:   warmup,
		Seed:     o.seed,
		Width:    o.width,
	}
	if len(errs) == 0 {
		errs = append(errs, cfg.Validate()) // what only the pipeline knows: model names, the smallest size
	}
	return cfg, errors.Join(errs...)
}

// runBench implements 'patchwise bench'.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o benchOptions
	fs := newFlagSet(benchCmd)
	o.register(fs)
	if err := parseFlags(benchCmd, fs, args, stdout); err != nil {
		return err
	}
	cfg, err := o.config()
	if err != nil {
		return &usageError{verb: benchCmd.name, err: err}
	}
	if o.gemm {
		results, err := pipeline.BenchGemm(ctx, o.steps, newProgress(stderr))
		if err != nil {
			return err
		}
		return writeGemmResults(stdout, results, o.json)
	}
	results, err := pipeline.Bench(ctx, cfg, newProgress(stderr))
	if err != nil {
		return err
	}
	return writeBenchResults(stdout, results, o.json)
}

// writeGemmResults prints results as an aligned table, or with asJSON as
// one JSON object per line.
func writeGemmResults(w io.Writer, results []pipeline.GemmResult, asJSON bool) error {
	if asJSON {
		return writeJSONLines(w, results)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "shape\tGFLOP/s\tkernel\tthreads")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%d\n", r.Shape, r.GFlops, r.Kernel, r.Threads)
	}
	return tw.Flush()
}

// writeJSONLines prints each of items as one JSON object per line.
func writeJSONLines[T any](w io.Writer, items []T) error {
	enc := json.NewEncoder(w)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return err
		}
	}
	return nil
}

// writeBenchResults prints results as an aligned table, or with asJSON as
// one JSON object per line.
func writeBenchResults(w io.Writer, results []pipeline.BenchResult, asJSON bool) error {
	if asJSON {
		return writeJSONLines(w, results)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "model\tbatch\tstep ms\tsamples/s\tpeak MiB\tthreads")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.0f\t%.0f\t%d\n", r.Model, r.Batch, r.StepMS, r.SamplesPerS, r.PeakRSSMB, r.Threads)
	}
	return tw.Flush()
}
