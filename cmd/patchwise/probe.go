package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/patchwise-ml/patchwise/data/builtin"
	"github.com/patchwise-ml/patchwise/internal/fsutil"
	"github.com/patchwise-ml/patchwise/pipeline"
	"github.com/patchwise-ml/patchwise/pretext"
	"github.com/patchwise-ml/patchwise/probe"
)

var probeCmd = &command{
	name:    "probe",
	summary: "score frozen features: linear probe and k-NN, with baselines",
	usage: `patchwise probe (--encoder CKPT | --random-encoder | --pixels)
	--train DATASET [--test DATASET] [--stage K] [--pooled P] [--seed S]
	[--l2 X] [--json] [-o DIR] [--cache DIR | --no-cache]

Probe measures how much a frozen encoder's features know about the labels
(docs/design.md §6). It computes the features of the "train" split of --train
and of the "test" split of --test (default: the same dataset; its "val"
split when it has no "test", as a folder ingested with --val-fraction), at
block --stage (default the last, globally average-pooled; earlier blocks
are average-pooled to P×P), in evaluation mode, and caches them keyed by
the encoder's weights, the dataset's ID and the stage.

The linear probe standardises the features with the training split's mean
and standard deviation and fits a multinomial logistic regression with L2
by L-BFGS; the L2 strength is chosen on a validation part carved from the
training split (seeded) and the probe refitted on the whole training split.
The k-NN probes vote among the k nearest training images by cosine
similarity, weighted by exp(similarity/T), for k = 20, T = 0.07 and
k = 200, T = 0.1. Every printed number comes with the protocol that made it
(--json: all of it).

Baselines go through the same code: --random-encoder (the same
architecture as pretraining builds, initialised from --seed; --widths sets
the blocks) and --pixels (the raw pixels as features). The datasets need
not be the one the encoder was pretrained on (transfer), but they must have
its channels and image side.

With -o DIR, result.json is written there (DIR must not hold one). The
result names the classes ("classes", in the order of "per_class" and of
the rows and columns of "confusion").

` + datasetArgHelp("DATASET"),
	example: `patchwise probe --pixels --train fm
patchwise probe --encoder runs/relpos --train fm --json
patchwise probe --encoder runs/relpos/ckpt-step-00000400 --train mnist --stage 3 -o probes/relpos-mnist
patchwise probe --random-encoder --seed 1 --train fm
patchwise probe --pixels --train builtin:fashion-mnist-small`,
}

func init() { probeCmd.run = runProbe }

// probeOptions holds the probe verb's flags.
type probeOptions struct {
	encoder, train, test, out, cache, widths string
	random, pixels, json, noCache            bool
	stage, pooled, batch                     int
	seed                                     uint64
	l2                                       float64
}

func (o *probeOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.encoder, "encoder", "", "encoder to probe: a `checkpoint` directory, or a training directory (its latest checkpoint)")
	fs.BoolVar(&o.random, "random-encoder", false, "probe a randomly initialised encoder (baseline)")
	fs.BoolVar(&o.pixels, "pixels", false, "probe the raw pixels (baseline)")
	fs.StringVar(&o.train, "train", "", "`dataset` whose \"train\" split fits the probes")
	fs.StringVar(&o.test, "test", "", "`dataset` whose \"test\" split scores them (default: --train)")
	fs.IntVar(&o.stage, "stage", 0, "encoder block to probe, 1 to the depth (0: the last)")
	fs.IntVar(&o.pooled, "pooled", 0, "average-pool an earlier block to P×P (0: 2)")
	fs.IntVar(&o.batch, "batch", 0, "images per forward pass (0: 256)")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the validation carve and of --random-encoder's weights")
	fs.Float64Var(&o.l2, "l2", 0, "use this L2 strength instead of choosing it on the validation carve")
	fs.StringVar(&o.widths, "widths", "", "--random-encoder's block widths, comma-separated (default 32,64,128,256)")
	fs.BoolVar(&o.json, "json", false, "print the result as one JSON object")
	fs.StringVar(&o.out, "o", "", "write result.json into `dir`")
	fs.StringVar(&o.cache, "cache", "", "feature cache `dir`ectory (default: the user cache directory's patchwise/features)")
	fs.BoolVar(&o.noCache, "no-cache", false, "compute the features without reading or writing the cache")
}

func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o probeOptions
	fs := newFlagSet(probeCmd)
	o.register(fs)
	if err := parseFlags(probeCmd, fs, args, stdout); err != nil {
		return err
	}
	usage := func(errs ...error) error { return &usageError{verb: probeCmd.name, err: errors.Join(errs...)} }
	var errs []error
	if n := btoi(o.encoder != "") + btoi(o.random) + btoi(o.pixels); n != 1 {
		errs = append(errs, errors.New("give exactly one of --encoder CKPT, --random-encoder, --pixels"))
	}
	if o.train == "" {
		errs = append(errs, errors.New("--train DATASET is required"))
	}
	if o.cache != "" && o.noCache {
		errs = append(errs, errors.New("--cache and --no-cache exclude each other"))
	}
	var widths []int
	if o.widths != "" {
		if !o.random {
			errs = append(errs, errors.New("--widths is only for --random-encoder (a checkpoint knows its own)"))
		}
		var err error
		if widths, err = parseInts(o.widths); err != nil {
			errs = append(errs, fmt.Errorf("--widths: %w", err))
		}
	}
	if len(errs) > 0 {
		return usage(errs...)
	}
	if o.test == "" {
		o.test = o.train
	}
	if o.out != "" {
		if _, err := os.Lstat(filepath.Join(o.out, "result.json")); err == nil {
			return fmt.Errorf("%s already exists: choose another -o directory or remove it", filepath.Join(o.out, "result.json"))
		}
	}
	cache := o.cache
	if cache == "" && !o.noCache {
		dir, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("no cache directory (%w): give --cache DIR or --no-cache", err)
		}
		cache = filepath.Join(dir, "patchwise", "features")
	}

	train, err := builtin.Open(o.train)
	if err != nil {
		return err
	}
	test := train
	if o.test != o.train {
		if test, err = builtin.Open(o.test); err != nil {
			return err
		}
	}
	req := pipeline.ProbeRequest{Train: train, Test: test, CacheDir: cache,
		Config: pipeline.ProbeConfig{Stage: o.stage, Pooled: o.pooled, Batch: o.batch,
			Protocol: probe.Config{L2: o.l2, Seed: o.seed}}}
	switch {
	case o.encoder != "":
		if req.Encoder, err = pipeline.LoadEncoder(o.encoder); err != nil {
			return err
		}
	case o.random:
		cfg := pretext.EncoderConfig{Channels: train.Manifest().Channels, Widths: widths}
		if req.Encoder, err = pipeline.RandomEncoder(cfg, train.Manifest().Size, 0, o.seed); err != nil {
			return usage(err)
		}
	}
	p := newProgress(stderr)
	res, err := pipeline.Probe(ctx, req, p)
	p.Done()
	if errors.Is(err, pipeline.ErrInvalidConfig) {
		return usage(err)
	}
	if err != nil {
		return err
	}
	out := probeOutput{Result: res, Encoder: "pixels", TrainDataset: o.train, TestDataset: o.test}
	if req.Encoder != nil {
		out.Encoder = req.Encoder.Name
	}
	js, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	if o.out != "" {
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			return err
		}
		path := filepath.Join(o.out, "result.json")
		if err := fsutil.WriteNew(path, func(w io.Writer) error { _, err := w.Write(js); return err }); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if o.json {
		_, err := stdout.Write(js)
		return err
	}
	printProbe(stdout, out)
	return nil
}

// probeOutput is what probe prints with --json and writes to result.json.
type probeOutput struct {
	*probe.Result
	Encoder      string `json:"encoder"`       // checkpoint path, "random (seed S)" or "pixels"
	TrainDataset string `json:"train_dataset"` // directories or builtin:NAME, as given
	TestDataset  string `json:"test_dataset"`
}

func printProbe(w io.Writer, out probeOutput) {
	r, pr := out.Result, out.Result.Protocol
	fmt.Fprintf(w, "encoder   %s\n", out.Encoder)
	fmt.Fprintf(w, "features  %d-d (stage %d, pooled %d×%d); train %d images of %s, test %d of %s\n",
		pr.FeatureDim, pr.Stage, pr.Pooled, pr.Pooled, pr.TrainN, out.TrainDataset, pr.TestN, out.TestDataset)
	fmt.Fprintf(w, "linear    top-1 %.4f  (L2 %g chosen from %v on %d held-out images; seed %d)\n", r.LinearTop1, pr.L2, pr.Grid, pr.ValN, pr.Seed)
	for _, k := range r.KNN {
		fmt.Fprintf(w, "k-NN      top-1 %.4f  (k %d, T %g)\n", k.Top1, k.K, k.T)
	}
	fmt.Fprintln(w, "per class (linear):")
	width := 14
	for _, n := range r.Classes {
		width = max(width, len(n))
	}
	for c, a := range r.PerClass {
		name := strconv.Itoa(c)
		if c < len(r.Classes) {
			name = r.Classes[c]
		}
		fmt.Fprintf(w, "  %-*s %.3f\n", width, name, a)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
