package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/data/builtin"
	"github.com/patchwise-ml/patchwise/internal/fsutil"
	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/pretext"
)

// Files of a pretraining run directory.
const (
	RunConfigFile  = "config.json"   // the resolved PretrainConfig
	RunMetricsFile = "metrics.jsonl" // one MetricsRecord per line
)

// Pretraining defaults (see PretrainConfig).
const (
	DefaultPretrainSteps   = 1000
	DefaultPretrainBatch   = 128
	DefaultSGDLR           = 0.05
	DefaultAdamWLR         = 1e-3
	DefaultSGDMomentum     = 0.9
	DefaultWeightDecay     = 5e-4
	DefaultValEvery        = 100
	DefaultValBatches      = 10
	DefaultCheckpointEvery = 500
	DefaultKeepLast        = 3
)

// Optimisers.
const (
	OptimizerSGD   = "sgd"
	OptimizerAdamW = "adamw"
)

// ErrInvalidConfig is wrapped by every error of Pretrain that comes from
// its configuration (Validate's, and those found once the dataset is open:
// a geometry or size that does not fit its images, a split too small for a
// batch). Test for it with errors.Is.
var ErrInvalidConfig = errors.New("pipeline: invalid pretrain config")

// ErrRunExists is wrapped by the error of Pretrain for a run directory that
// already exists when not resuming. It also matches fs.ErrExist.
var ErrRunExists = errors.New("pipeline: run directory exists (resume it, or choose another)")

// ErrNonFinite is wrapped by the error of Pretrain when a training loss is
// NaN or infinite, or a parameter is when a checkpoint is due (it is then
// not saved).
var ErrNonFinite = errors.New("not finite")

// PretrainConfig configures a pretraining run. Its zero value means the
// defaults given on each field; Dataset, Pretext and Out are required.
// Defaults that depend on the dataset (Size, Encoder.Channels, Steps from
// Epochs, which is then 0) are resolved by Pretrain and saved, resolved, in
// RUNDIR/config.json.
//
// Small images and crops: the encoder sees Size×Size inputs, and every
// image (autoencoders, supervised) or crop (relpos) is resized to that side
// with a box filter. Size defaults to the dataset's side rounded up to a
// multiple of 2^blocks (the encoder's pooling), so 28×28 Fashion-MNIST
// becomes 32×32 with 4 blocks, and relpos crops of a few pixels (6 px on
// 28×28 images with the default grid) are enlarged to the same 32×32: the
// encoder's depth and receptive field stay those of the reference model
// whatever the crop, at the cost of computing on upsampled pixels.
type PretrainConfig struct {
	Dataset string `json:"dataset"` // dataset directory, or "builtin:NAME" (builtin.Open)
	Pretext string `json:"pretext"` // one of pretext.Names
	Out     string `json:"out"`     // run directory; must not exist unless resuming

	// Steps is the number of optimiser steps; default 1000, or Epochs
	// passes over the training split when Epochs is set (not both).
	Steps  int `json:"steps"`
	Epochs int `json:"epochs"`
	Batch  int `json:"batch"` // samples (relpos: pairs) per step; default 128

	// Optimizer is "sgd" (default; momentum 0.9) or "adamw".
	Optimizer string `json:"optimizer"`
	// LR is the peak learning rate; default 0.05 for sgd, 1e-3 for adamw.
	// A linear warm-up over Warmup steps and a cosine decay to 0 at Steps
	// (nn.WarmupCosine) shape it.
	LR float64 `json:"lr"`
	// WeightDecay is L2 (sgd) or decoupled (adamw) weight decay on the
	// weights; default 5e-4; negative means none.
	WeightDecay float64 `json:"weight_decay"`
	// Warmup is the number of warm-up steps; default 5 % of Steps;
	// negative means none.
	Warmup int `json:"warmup"`
	// GradClip, when positive, scales the gradient down to this global L2
	// norm (over every parameter) when it is larger, before the optimiser
	// step: a guard against the rare step that would make a run diverge.
	// 0 means no clipping.
	GradClip float64 `json:"grad_clip,omitempty"`

	// Seed drives the initial weights, the loaders and the input
	// corruption (pretext.BatchSeed(Seed, step)).
	Seed uint64 `json:"seed"`
	// Workers is the number of data-loading goroutines; default one per
	// core. Results do not depend on it.
	Workers int `json:"workers"`

	// Encoder shapes the encoder; Channels defaults to the dataset's.
	Encoder pretext.EncoderConfig `json:"encoder"`
	// Size is the encoder's input side (see the type's comment); default
	// the dataset's side rounded up to a multiple of 2^blocks.
	Size int `json:"size"`
	// ImageSide is the training dataset's image side, in pixels, recorded
	// by Pretrain in the resolved config so that a probe can check that
	// its datasets match; a value given in a config is replaced.
	ImageSide int `json:"image_side,omitempty"`
	// Hidden is the relpos head's width; default pretext.DefaultHidden.
	Hidden int `json:"hidden"`

	// Pairs and Transform: how relpos draws and transforms its crop
	// pairs. Transform defaults (nil) to augment.ModernDefaults().
	Pairs     augment.PairConfig `json:"pairs"`
	Transform *augment.Transform `json:"transform,omitempty"`

	// Crop and Flip: the training augmentation of the other pretexts (see
	// augment.ImageLoaderConfig); default whole images, no flips.
	Crop augment.Length `json:"crop"`
	Flip bool           `json:"flip"`

	// Corruption is the input corruption of the dae-* pretexts.
	Corruption pretext.Corruption `json:"corruption"`

	// ValEvery: validate every ValEvery steps and at the end, on
	// ValBatches batches of the validation split ("val" if the dataset has
	// one, else "test"; no validation when it has neither). Defaults 100
	// and 10; ValEvery negative means only at the end.
	ValEvery   int `json:"val_every"`
	ValBatches int `json:"val_batches"`

	// CheckpointEvery: save a checkpoint every CheckpointEvery steps
	// (default 500; negative: never in between), at the end and when
	// interrupted. KeepLast checkpoints (default 3) and the best by
	// val_loss are kept.
	CheckpointEvery int `json:"checkpoint_every"`
	KeepLast        int `json:"keep_last"`
}

// LoadPretrainConfig reads a PretrainConfig from a JSON file, refusing
// unknown fields and trailing data.
func LoadPretrainConfig(path string) (PretrainConfig, error) {
	var c PretrainConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("pipeline: pretrain config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return PretrainConfig{}, fmt.Errorf("pipeline: pretrain config %q: %w", path, err)
	}
	if dec.More() {
		return PretrainConfig{}, fmt.Errorf("pipeline: pretrain config %q: data after the JSON object", path)
	}
	return c, nil
}

// Validate reports every problem with c that can be seen without the
// dataset, at once.
func (c PretrainConfig) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("pipeline: pretrain: "+format, args...))
	}
	if c.Dataset == "" {
		add("no dataset given")
	}
	if !slices.Contains(pretext.Names, c.Pretext) {
		if c.Pretext == "" {
			add("no pretext given (one of %s)", strings.Join(pretext.Names, ", "))
		} else {
			add("%w %q (known: %s)", pretext.ErrUnknown, c.Pretext, strings.Join(pretext.Names, ", "))
		}
	}
	if c.Out == "" {
		add("no run directory (out) given")
	}
	if c.Steps < 0 {
		add("steps %d is negative", c.Steps)
	}
	if c.Epochs < 0 {
		add("epochs %d is negative", c.Epochs)
	}
	if c.Steps > 0 && c.Epochs > 0 {
		add("steps %d and epochs %d: give one or the other", c.Steps, c.Epochs)
	}
	if c.Batch < 0 {
		add("batch %d is negative", c.Batch)
	}
	if !(c.GradClip >= 0) || math.IsInf(c.GradClip, 0) {
		add("grad_clip %v: want a finite norm ≥ 0 (0: no clipping)", c.GradClip)
	}
	if c.Optimizer != "" && c.Optimizer != OptimizerSGD && c.Optimizer != OptimizerAdamW {
		add("optimizer %q: want %q or %q", c.Optimizer, OptimizerSGD, OptimizerAdamW)
	}
	if !(c.LR >= 0) || math.IsInf(c.LR, 0) {
		add("learning rate %v: want a finite value > 0 (0: the default)", c.LR)
	}
	if math.IsNaN(c.WeightDecay) || math.IsInf(c.WeightDecay, 0) {
		add("weight decay %v is not finite", c.WeightDecay)
	}
	if c.Workers < 0 {
		add("workers %d is negative", c.Workers)
	}
	if c.Size < 0 {
		add("size %d is negative", c.Size)
	}
	if c.Hidden < 0 {
		add("hidden %d is negative", c.Hidden)
	}
	if c.ValBatches < 0 {
		add("val_batches %d is negative", c.ValBatches)
	}
	if c.KeepLast < 0 {
		add("keep_last %d is negative", c.KeepLast)
	}
	if err := c.Encoder.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Transform != nil {
		if err := c.Transform.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if strings.HasPrefix(c.Pretext, "dae-") {
		if err := c.Corruption.Validate(c.Size); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// withDefaults fills in the defaults that do not depend on the dataset.
func (c PretrainConfig) withDefaults() PretrainConfig {
	if c.Batch == 0 {
		c.Batch = DefaultPretrainBatch
	}
	if c.Optimizer == "" {
		c.Optimizer = OptimizerSGD
	}
	if c.LR == 0 {
		c.LR = DefaultSGDLR
		if c.Optimizer == OptimizerAdamW {
			c.LR = DefaultAdamWLR
		}
	}
	if c.WeightDecay == 0 {
		c.WeightDecay = DefaultWeightDecay
	}
	if c.ValEvery == 0 {
		c.ValEvery = DefaultValEvery
	}
	if c.ValBatches == 0 {
		c.ValBatches = DefaultValBatches
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = DefaultCheckpointEvery
	}
	if c.KeepLast == 0 {
		c.KeepLast = DefaultKeepLast
	}
	if c.Pretext == "relpos" && c.Transform == nil {
		t := augment.ModernDefaults()
		c.Transform = &t
	}
	if c.Hidden == 0 && c.Pretext == "relpos" {
		c.Hidden = pretext.DefaultHidden
	}
	return c
}

// isAutoencoder reports whether name is one of the ae-* or dae-* pretexts.
func isAutoencoder(name string) bool {
	return strings.HasPrefix(name, "ae-") || strings.HasPrefix(name, "dae-")
}

// MetricsRecord is one line of RUNDIR/metrics.jsonl: a training step's
// numbers (Loss, LR, SamplesPerS; Acc for classification pretexts) or a
// validation's (the Val* fields), with the step (from 1: the number of
// optimiser steps done), the epoch of the step's batch and the run's wall
// time in seconds.
type MetricsRecord struct {
	Step        int      `json:"step"`
	Epoch       int      `json:"epoch"`
	Loss        *float64 `json:"loss,omitempty"`
	Acc         *float64 `json:"acc,omitempty"`
	LR          *float64 `json:"lr,omitempty"`
	GradNorm    *float64 `json:"grad_norm,omitempty"` // the global L2 norm of the gradient, before clipping
	SamplesPerS *float64 `json:"samples_per_s,omitempty"`
	WallS       float64  `json:"wall_s"`

	ValLoss *float64 `json:"val_loss,omitempty"`
	ValAcc  *float64 `json:"val_acc,omitempty"`
	// ValMSE is an autoencoder's reconstruction error of the clean val
	// images (for dae-*, with no corruption); ValMSEMeanImage is the error
	// of predicting the training split's mean image on the same batches:
	// the baseline to beat. Like ValLoss it is measured in evaluation mode,
	// batch norm using its running statistics: for dae-*, those of clean
	// inputs, while ValLoss, the denoising loss, uses those of corrupted
	// ones (pretext.Denoising keeps both).
	ValMSE          *float64 `json:"val_mse,omitempty"`
	ValMSEMeanImage *float64 `json:"val_mse_mean_image,omitempty"`
}

// IsVal reports whether r is a validation record.
func (r MetricsRecord) IsVal() bool { return r.ValLoss != nil }

// ReadMetrics reads a metrics.jsonl file.
func ReadMetrics(path string) ([]MetricsRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pipeline: metrics: %w", err)
	}
	defer f.Close()
	var rs []MetricsRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r MetricsRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return rs, fmt.Errorf("pipeline: metrics %q line %d: %w", path, n, err)
		}
		rs = append(rs, r)
	}
	if err := sc.Err(); err != nil {
		return rs, fmt.Errorf("pipeline: metrics %q: %w", path, err)
	}
	return rs, nil
}

// StepReporter is an optional extension of Progress: when the Progress
// given to Pretrain implements it, Pretrain calls Report after every
// training step and every validation with that step's record (to show
// the loss beside a progress bar).
type StepReporter interface {
	Report(r MetricsRecord)
}

// PretrainResult describes a finished (or interrupted) run.
type PretrainResult struct {
	Config     PretrainConfig // resolved
	DatasetID  string
	StartStep  int           // steps already done when this call began (resume)
	Steps      int           // steps done when it returned
	Last       MetricsRecord // the last training record
	LastVal    *MetricsRecord
	Checkpoint string // the last checkpoint written
	Best       string // the checkpoint of lowest val_loss, if any
}

// Pretrain trains cfg.Pretext on cfg.Dataset, writing into cfg.Out:
// config.json (the resolved config), metrics.jsonl (one MetricsRecord per
// training step and per validation, appended and fsynced line by line) and
// checkpoints (SaveCheckpoint) every CheckpointEvery steps, at the end and
// when ctx is cancelled; the KeepLast latest and the best by val_loss are
// kept. The training split is "train"; validation uses "val", or "test"
// when there is no "val".
//
// A checkpoint holds the model's parameters and buffers, the optimiser's
// state, the step, the epoch and position of the next batch (rng
// "loader_position": two little-endian uint64, epoch and index), the
// resolved config, the dataset ID and, when validated at that step,
// val_loss; the input corruption needs no state (pretext.BatchSeed).
//
// With resume, cfg.Out must hold a run: Pretrain takes its saved
// config.json (only cfg.Workers, if set, overrides it), loads the latest
// checkpoint and continues from the next step with the same batches as an
// uninterrupted run, dropping lines of metrics.jsonl past the checkpoint.
// Without resume, cfg.Out must not exist (ErrRunExists).
//
// When ctx is cancelled Pretrain finishes the current step, saves a
// checkpoint and returns ctx's error with the result so far. A NaN or
// infinite loss stops the run with an error wrapping ErrNonFinite that
// names the step; the last checkpoint saved before it stays. Progress
// gets one unit per step (and Report calls if it is a StepReporter).
func Pretrain(ctx context.Context, cfg PretrainConfig, resume bool, p Progress) (*PretrainResult, error) {
	if p == nil {
		p = NoProgress{}
	}
	if resume {
		saved, err := LoadPretrainConfig(filepath.Join(cfg.Out, RunConfigFile))
		if err != nil {
			return nil, fmt.Errorf("pipeline: resume %q: %w", cfg.Out, err)
		}
		saved.Out = cfg.Out
		if cfg.Workers > 0 {
			saved.Workers = cfg.Workers
		}
		cfg = saved
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w:\n%w", ErrInvalidConfig, err)
	}
	if !resume {
		if _, err := os.Lstat(cfg.Out); err == nil {
			return nil, fmt.Errorf("pipeline: pretrain: %q: %w (%w)", cfg.Out, ErrRunExists, fs.ErrExist)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("pipeline: pretrain: %w", err)
		}
	}
	ds, err := builtin.Open(cfg.Dataset)
	if err != nil {
		return nil, fmt.Errorf("pipeline: pretrain: %w", err)
	}
	r, err := newRun(ds, cfg)
	if err != nil {
		return nil, err
	}
	defer r.closeLoaders()
	return r.loop(ctx, resume, p)
}

// run is one pretraining run in progress.
type run struct {
	cfg    PretrainConfig // resolved
	ds     *data.Dataset
	model  pretext.Model
	params []*nn.Param
	unique []*nn.Param // params, each once (tied weights appear twice in params)
	opt    interface {
		nn.Optimizer
		State() []*nn.Param
	}
	sched    nn.WarmupCosine
	train    source
	val      func(ctx context.Context) (source, error) // nil: no validation
	valSplit string
	mean     []float32 // autoencoders: the training split's mean image [S, S, C]
}

// source is a stream of training or validation batches.
type source interface {
	// next returns the next batch as a pretext.Batch (Seed unset), its
	// size and epoch, and a function that releases its memory.
	next() (b pretext.Batch, n, epoch int, release func(), err error)
	close()
}

// newRun resolves cfg against ds and builds the loaders and the model.
func newRun(ds *data.Dataset, cfg PretrainConfig) (*run, error) {
	m := ds.Manifest()
	cfg = cfg.withDefaults()
	bad := func(err error) error { return fmt.Errorf("%w:\n%w", ErrInvalidConfig, err) }
	var errs []error
	if cfg.Encoder.Channels == 0 {
		cfg.Encoder.Channels = m.Channels
	} else if cfg.Encoder.Channels != m.Channels {
		errs = append(errs, fmt.Errorf("pipeline: pretrain: encoder channels %d, but the dataset's images have %d", cfg.Encoder.Channels, m.Channels))
	}
	if len(cfg.Encoder.Widths) == 0 {
		cfg.Encoder.Widths = slices.Clone(pretext.DefaultWidths)
	}
	cfg.ImageSide = m.Size
	if cfg.Size == 0 {
		cfg.Size = cfg.Encoder.InputSize(m.Size)
	}
	if ds.Len(data.Train) == 0 {
		errs = append(errs, fmt.Errorf("pipeline: pretrain: dataset %q has no %q split", ds.Dir(), data.Train))
	}
	pcfg := pretext.Config{Encoder: cfg.Encoder, Size: cfg.Size, Classes: len(m.Classes), Hidden: cfg.Hidden, Corruption: cfg.Corruption}
	if err := pcfg.Validate(cfg.Pretext); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, bad(errors.Join(errs...))
	}
	r := &run{ds: ds}
	valSplit := ""
	for _, s := range []string{data.Val, data.Test} {
		if ds.Len(s) > 0 {
			valSplit = s
			break
		}
	}
	r.valSplit = valSplit
	valSeed := cfg.Seed ^ 0x76616c69 // "vali": validation draws unrelated to training's
	if cfg.Pretext == "relpos" {
		lc := augment.LoaderConfig{Pairs: cfg.Pairs, Transform: *cfg.Transform, Size: cfg.Size,
			Batch: cfg.Batch, Workers: cfg.Workers, Seed: cfg.Seed}
		l, err := augment.NewPairLoader(ds, data.Train, lc)
		if err != nil {
			return nil, bad(err)
		}
		cfg.Workers = l.Config().Workers
		r.train = &pairSource{loader: l}
		if valSplit != "" {
			vc := lc
			vc.Seed = valSeed
			vc.Batch = min(cfg.Batch, ds.Len(valSplit))
			vl, err := augment.NewPairLoader(ds, valSplit, vc)
			if err != nil {
				return nil, bad(err)
			}
			r.val = func(ctx context.Context) (source, error) {
				ps := &pairSource{loader: vl}
				ps.start(ctx, 0, 0)
				return ps, nil
			}
		}
	} else {
		ic := augment.ImageLoaderConfig{Size: cfg.Size, Crop: cfg.Crop, Flip: cfg.Flip, Batch: cfg.Batch,
			Workers: cfg.Workers, Seed: cfg.Seed, Train: true}
		l, err := augment.NewImageLoader(ds, data.Train, ic)
		if err != nil {
			return nil, bad(err)
		}
		cfg.Workers = l.Config().Workers
		r.train = &imageSource{loader: l}
		if valSplit != "" {
			vc := ic
			vc.Train, vc.Seed = false, valSeed
			vl, err := augment.NewImageLoader(ds, valSplit, vc)
			if err != nil {
				return nil, bad(err)
			}
			r.val = func(ctx context.Context) (source, error) {
				is := &imageSource{loader: vl}
				is.start(ctx, 0, 0)
				return is, nil
			}
		}
	}
	if cfg.Epochs > 0 {
		// Resolved into Steps, so that the saved config is valid as is.
		cfg.Steps = cfg.Epochs * r.train.(interface{ perEpoch() int }).perEpoch()
		cfg.Epochs = 0
	}
	if cfg.Steps == 0 {
		cfg.Steps = DefaultPretrainSteps
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = cfg.Steps / 20
	}
	r.sched = nn.WarmupCosine{Base: cfg.LR, Final: 0, Warmup: max(cfg.Warmup, 0), Total: cfg.Steps}
	rng, _ := nn.NewRNG(cfg.Seed)
	model, err := pretext.New(cfg.Pretext, pcfg, rng)
	if err != nil {
		return nil, bad(err)
	}
	r.model, r.params = model, model.Params()
	r.unique = nn.Unique(r.params)
	wd := max(cfg.WeightDecay, 0)
	switch cfg.Optimizer {
	case OptimizerAdamW:
		r.opt = nn.NewAdamW(r.params, wd)
	default:
		r.opt = nn.NewSGD(r.params, DefaultSGDMomentum, wd, false)
	}
	r.cfg = cfg
	return r, nil
}

func (r *run) closeLoaders() {
	if r.train != nil {
		r.train.close()
	}
}

// pairSource streams relpos batches.
type pairSource struct {
	loader *augment.PairLoader
	stream *augment.PairStream
	labels []int
}

func (s *pairSource) perEpoch() int { return s.loader.BatchesPerEpoch() }

func (s *pairSource) start(ctx context.Context, epoch, index int) {
	s.stream = s.loader.Stream(ctx, epoch, index)
}

func (s *pairSource) next() (pretext.Batch, int, int, func(), error) {
	b, err := s.stream.Next()
	if err != nil {
		return pretext.Batch{}, 0, 0, nil, err
	}
	s.labels = append(s.labels[:0], b.Labels[:b.N]...)
	pb := pretext.Batch{
		X:      nn.FromData(b.A, b.N, b.S, b.S, b.C),
		X2:     nn.FromData(b.B, b.N, b.S, b.S, b.C),
		Labels: s.labels,
	}
	return pb, b.N, b.Epoch, b.Release, nil
}

func (s *pairSource) close() {
	if s.stream != nil {
		s.stream.Close()
	}
}

// imageSource streams whole-image batches.
type imageSource struct {
	loader   *augment.ImageLoader
	stream   *augment.ImageStream
	labels   []int
	noLabels bool // autoencoders: Batch.Labels nil
}

func (s *imageSource) perEpoch() int { return s.loader.BatchesPerEpoch() }

func (s *imageSource) start(ctx context.Context, epoch, index int) {
	s.stream = s.loader.Stream(ctx, epoch, index)
}

func (s *imageSource) next() (pretext.Batch, int, int, func(), error) {
	b, err := s.stream.Next()
	if err != nil {
		return pretext.Batch{}, 0, 0, nil, err
	}
	s.labels = append(s.labels[:0], b.Labels[:b.N]...)
	pb := pretext.Batch{X: nn.FromData(b.X[:b.N*b.S*b.S*b.C], b.N, b.S, b.S, b.C), Labels: s.labels}
	return pb, b.N, b.Epoch, b.Release, nil
}

func (s *imageSource) close() {
	if s.stream != nil {
		s.stream.Close()
	}
}

// position returns the (epoch, index) of the batch of step (from 1) of a
// run whose loader has per batches an epoch.
func position(step, per int) (epoch, index int) {
	return (step - 1) / per, (step - 1) % per
}

// train runs the loop.
func (r *run) loop(ctx context.Context, resume bool, p Progress) (*PretrainResult, error) {
	cfg := r.cfg
	res := &PretrainResult{Config: cfg, DatasetID: r.ds.ID()}
	cfgJSON, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("pipeline: pretrain: %w", err)
	}
	metricsPath := filepath.Join(cfg.Out, RunMetricsFile)
	start, wall0 := 0, 0.0
	bestPath, bestVal := "", math.Inf(1)
	if resume {
		ckpt, err := LatestCheckpoint(cfg.Out)
		switch {
		case errors.Is(err, ErrNoCheckpoint):
			// Interrupted before its first checkpoint: start again.
		case err != nil:
			return nil, fmt.Errorf("pipeline: resume: %w", err)
		default:
			st := CheckpointState{Params: r.params, Buffers: r.model.Buffers(), Optim: r.opt.State()}
			if err := LoadCheckpoint(ckpt, &st); err != nil {
				return nil, fmt.Errorf("pipeline: resume: %w", err)
			}
			if st.DatasetID != r.ds.ID() {
				return nil, fmt.Errorf("pipeline: resume %q: the checkpoint was made on dataset %.12s…, %q is %.12s…", cfg.Out, st.DatasetID, cfg.Dataset, r.ds.ID())
			}
			if st.Pretext != cfg.Pretext {
				return nil, fmt.Errorf("pipeline: resume %q: the checkpoint is of pretext %q, the run's config says %q", cfg.Out, st.Pretext, cfg.Pretext)
			}
			start, wall0 = st.Step, st.Metrics["wall_s"]
			res.Checkpoint = ckpt
		}
		// The best checkpoint so far.
		paths, _ := ListCheckpoints(cfg.Out)
		for _, path := range paths {
			if m, err := ReadCheckpointManifest(path); err == nil {
				if v, ok := m.Metrics["val_loss"]; ok && v < bestVal {
					bestPath, bestVal = path, v
				}
			}
		}
		if err := truncateMetrics(metricsPath, start); err != nil {
			return nil, err
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(filepath.Clean(cfg.Out)), 0o755); err != nil {
			return nil, fmt.Errorf("pipeline: pretrain: %w", err)
		}
		if err := os.Mkdir(cfg.Out, 0o755); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("pipeline: pretrain: %q: %w (%w)", cfg.Out, ErrRunExists, err)
			}
			return nil, fmt.Errorf("pipeline: pretrain: %w", err)
		}
		if err := fsutil.WriteSynced(filepath.Join(cfg.Out, RunConfigFile), fsutil.CreateExcl, func(w io.Writer) error {
			_, err := w.Write(append(cfgJSON, '\n'))
			return err
		}); err != nil {
			return nil, fmt.Errorf("pipeline: pretrain: %w", err)
		}
	}
	res.StartStep, res.Steps = start, start
	if bestPath != "" {
		res.Best = bestPath
	}

	mf, err := os.OpenFile(metricsPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pipeline: pretrain: %w", err)
	}
	defer mf.Close()
	logRec := func(rec MetricsRecord) error {
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if _, err := mf.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("pipeline: pretrain: metrics: %w", err)
		}
		if err := mf.Sync(); err != nil {
			return fmt.Errorf("pipeline: pretrain: metrics: %w", err)
		}
		if sr, ok := p.(StepReporter); ok {
			sr.Report(rec)
		}
		return nil
	}

	if isAutoencoder(cfg.Pretext) && r.val != nil {
		if r.mean, err = r.meanImage(ctx); err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			return nil, err
		}
	}

	per := r.train.(interface{ perEpoch() int }).perEpoch()
	t0 := time.Now()
	wall := func() float64 { return round3(wall0 + time.Since(t0).Seconds()) }
	save := func(step int, val *float64) error {
		e, k := position(step+1, per)
		pos := make([]byte, 16)
		binary.LittleEndian.PutUint64(pos, uint64(e))
		binary.LittleEndian.PutUint64(pos[8:], uint64(k))
		metrics := map[string]float64{"wall_s": wall()}
		if val != nil && !math.IsNaN(*val) && !math.IsInf(*val, 0) {
			metrics["val_loss"] = *val
		}
		for _, q := range r.params {
			if !allFinite(q.Value.Data) {
				return fmt.Errorf("pipeline: pretrain: step %d: parameter %q %w: checkpoint not saved; the last good checkpoint is %q", step, q.Name, ErrNonFinite, res.Checkpoint)
			}
		}
		path, err := SaveCheckpoint(cfg.Out, CheckpointState{
			Step: step, Epoch: e, Config: cfgJSON, DatasetID: r.ds.ID(), Pretext: cfg.Pretext,
			RNG: map[string][]byte{"loader_position": pos}, Metrics: metrics,
			Params: r.params, Buffers: r.model.Buffers(), Optim: r.opt.State(),
		})
		if err != nil {
			return fmt.Errorf("pipeline: pretrain: %w", err)
		}
		res.Checkpoint = path
		if v, ok := metrics["val_loss"]; ok && v < bestVal {
			bestPath, bestVal = path, v
			res.Best = path
		}
		if err := PruneCheckpoints(cfg.Out, cfg.KeepLast, bestPath); err != nil {
			return fmt.Errorf("pipeline: pretrain: %w", err)
		}
		return nil
	}

	p.Start("pretrain "+cfg.Pretext, cfg.Steps)
	defer p.Done()
	p.Add(start)
	if start >= cfg.Steps {
		return res, nil
	}
	e0, k0 := position(start+1, per)
	ts := r.train
	switch s := ts.(type) {
	case *pairSource:
		s.start(ctx, e0, k0)
	case *imageSource:
		s.start(ctx, e0, k0)
		s.noLabels = isAutoencoder(cfg.Pretext)
	}
	savedAt := -1
	if res.Checkpoint != "" {
		savedAt = start
	}
	interrupted := func(step int) (*PretrainResult, error) {
		if savedAt != step {
			if err := save(step, nil); err != nil {
				return res, errors.Join(ctx.Err(), err)
			}
		}
		return res, ctx.Err()
	}
	for step := start + 1; step <= cfg.Steps; step++ {
		if ctx.Err() != nil {
			return interrupted(step - 1)
		}
		tStep := time.Now()
		b, n, epoch, release, err := ts.next()
		if err != nil {
			if ctx.Err() != nil {
				return interrupted(step - 1)
			}
			return res, fmt.Errorf("pipeline: pretrain: step %d: %w", step, err)
		}
		if s, ok := ts.(*imageSource); ok && s.noLabels {
			b.Labels = nil
		}
		b.Seed = pretext.BatchSeed(cfg.Seed, int64(step))
		lr := r.sched.At(step - 1)
		nn.ZeroGrads(r.params)
		m := r.model.Step(b, true)
		release()
		if math.IsNaN(m.Loss) || math.IsInf(m.Loss, 0) {
			return res, fmt.Errorf("pipeline: pretrain: step %d: loss %w (%v); the last good checkpoint is %q", step, ErrNonFinite, m.Loss, res.Checkpoint)
		}
		gnorm := clipGradients(r.unique, cfg.GradClip)
		if math.IsNaN(gnorm) || math.IsInf(gnorm, 0) {
			return res, fmt.Errorf("pipeline: pretrain: step %d: gradient norm %w (%v); the last good checkpoint is %q", step, ErrNonFinite, gnorm, res.Checkpoint)
		}
		r.opt.Step(lr)
		res.Steps = step
		dt := time.Since(tStep).Seconds()
		rec := MetricsRecord{Step: step, Epoch: epoch, Loss: ptr(m.Loss), LR: ptr(lr), GradNorm: ptr(gnorm),
			SamplesPerS: ptr(round1(float64(n) / max(dt, 1e-9))), WallS: wall()}
		if cfg.Pretext == "relpos" || cfg.Pretext == "supervised" {
			rec.Acc = ptr(m.Accuracy)
		}
		if err := logRec(rec); err != nil {
			return res, err
		}
		res.Last = rec
		p.Add(1)

		var val *float64
		if r.val != nil && (step == cfg.Steps || (cfg.ValEvery > 0 && step%cfg.ValEvery == 0)) {
			vr, err := r.validate(ctx, step, epoch)
			if err != nil {
				if ctx.Err() != nil {
					return interrupted(step)
				}
				return res, err
			}
			if v := *vr.ValLoss; math.IsNaN(v) || math.IsInf(v, 0) {
				return res, fmt.Errorf("pipeline: pretrain: step %d: validation loss %w (%v); the last good checkpoint is %q", step, ErrNonFinite, v, res.Checkpoint)
			}
			vr.WallS = wall()
			if err := logRec(vr); err != nil {
				return res, err
			}
			res.LastVal = &vr
			val = vr.ValLoss
		}
		if step == cfg.Steps || (cfg.CheckpointEvery > 0 && step%cfg.CheckpointEvery == 0) {
			if err := save(step, val); err != nil {
				return res, err
			}
			savedAt = step
		}
	}
	return res, nil
}

// validate evaluates the model on up to ValBatches batches of the
// validation split.
func (r *run) validate(ctx context.Context, step, epoch int) (MetricsRecord, error) {
	cfg := r.cfg
	src, err := r.val(ctx)
	if err != nil {
		return MetricsRecord{}, err
	}
	defer src.close()
	var clean pretext.Model
	if d, ok := r.model.(*pretext.Denoising); ok {
		clean = d.Clean()
	} else if isAutoencoder(cfg.Pretext) {
		clean = r.model
	}
	var loss, acc, mse, base float64
	total := 0
	for i := range cfg.ValBatches {
		b, n, _, release, err := src.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return MetricsRecord{}, fmt.Errorf("pipeline: pretrain: validation at step %d: %w", step, err)
		}
		if isAutoencoder(cfg.Pretext) {
			b.Labels = nil
		}
		b.Seed = pretext.BatchSeed(cfg.Seed^0x76616c69, int64(-1-i))
		m := r.model.Step(b, false)
		loss += m.Loss * float64(n)
		acc += m.Accuracy * float64(n)
		if clean != nil {
			if clean == r.model {
				mse += m.Loss * float64(n)
			} else {
				mse += clean.Step(pretext.Batch{X: b.X}, false).Loss * float64(n)
			}
			if r.mean != nil {
				base += meanImageMSE(b.X.Data, r.mean) * float64(n)
			}
		}
		release()
		total += n
	}
	if total == 0 {
		return MetricsRecord{}, fmt.Errorf("pipeline: pretrain: validation at step %d: no batches in split %q", step, r.valSplit)
	}
	t := float64(total)
	rec := MetricsRecord{Step: step, Epoch: epoch, ValLoss: ptr(loss / t)}
	if cfg.Pretext == "relpos" || cfg.Pretext == "supervised" {
		rec.ValAcc = ptr(acc / t)
	}
	if clean != nil {
		rec.ValMSE = ptr(mse / t)
		if r.mean != nil {
			rec.ValMSEMeanImage = ptr(base / t)
		}
	}
	return rec, nil
}

// meanImage returns the training split's mean image [S, S, C] as the
// validation loader presents images (resized to Size, centre-cropped).
func (r *run) meanImage(ctx context.Context) ([]float32, error) {
	cfg := r.cfg
	l, err := augment.NewImageLoader(r.ds, data.Train, augment.ImageLoaderConfig{
		Size: cfg.Size, Crop: cfg.Crop, Batch: 256, Workers: cfg.Workers, Seed: cfg.Seed})
	if err != nil {
		return nil, fmt.Errorf("pipeline: pretrain: mean image: %w", err)
	}
	s := l.Stream(ctx, 0, 0)
	defer s.Close()
	var sum []float64
	count := 0
	for {
		b, err := s.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("pipeline: pretrain: mean image: %w", err)
		}
		per := b.S * b.S * b.C
		if sum == nil {
			sum = make([]float64, per)
		}
		for i := range b.N {
			for j, v := range b.X[i*per : (i+1)*per] {
				sum[j] += float64(v)
			}
		}
		count += b.N
		b.Release()
	}
	mean := make([]float32, len(sum))
	for j, v := range sum {
		mean[j] = float32(v / float64(count))
	}
	return mean, nil
}

// meanImageMSE is the mean squared error of predicting mean for every
// image of x [N, S, S, C].
func meanImageMSE(x, mean []float32) float64 {
	var s float64
	for i, v := range x {
		d := float64(v) - float64(mean[i%len(mean)])
		s += d * d
	}
	return s / float64(len(x))
}

// truncateMetrics rewrites path without the records past step (atomically).
// A missing file is fine.
func truncateMetrics(path string, step int) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pipeline: resume: %w", err)
	}
	var keep bytes.Buffer
	for line := range bytes.Lines(b) {
		var r struct {
			Step *int `json:"step"`
		}
		if json.Unmarshal(line, &r) != nil || r.Step == nil {
			break // a torn last line, or garbage: drop it and the rest
		}
		if *r.Step > step {
			break
		}
		if !bytes.HasSuffix(line, []byte("\n")) {
			line = append(slices.Clone(line), '\n')
		}
		keep.Write(line)
	}
	if keep.Len() == len(b) {
		return nil
	}
	err = fsutil.Replace(path, func(w io.Writer) error {
		_, err := w.Write(keep.Bytes())
		return err
	})
	if err != nil {
		return fmt.Errorf("pipeline: resume: metrics: %w", err)
	}
	return nil
}

// clipGradients returns the global L2 norm of the gradients of ps (each
// parameter once) and, when max > 0 and the norm exceeds it, scales them
// to norm max.
func clipGradients(ps []*nn.Param, max float64) float64 {
	var sum float64
	for _, p := range ps {
		if p.Grad != nil {
			for _, g := range p.Grad.Data {
				sum += float64(g) * float64(g)
			}
		}
	}
	norm := math.Sqrt(sum)
	if max > 0 && norm > max {
		scale := float32(max / norm)
		for _, p := range ps {
			if p.Grad != nil {
				for i := range p.Grad.Data {
					p.Grad.Data[i] *= scale
				}
			}
		}
	}
	return norm
}

func allFinite(xs []float32) bool {
	for _, v := range xs {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}

func ptr(v float64) *float64 { return &v }
