package pipeline

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/data/builtin"
	"github.com/patchwise-ml/patchwise/internal/fsutil"
	"github.com/patchwise-ml/patchwise/internal/mpi"
	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/nn/kernel"
	"github.com/patchwise-ml/patchwise/pipeline/checkpoint"
	"github.com/patchwise-ml/patchwise/pretext"
)

// Files of a training directory: what Pretrain writes besides its
// checkpoints.
const (
	TrainConfigFile = "config.json"   // the resolved PretrainConfig
	MetricsFile     = "metrics.jsonl" // one MetricsRecord per line
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

// ErrOutExists is wrapped by the error of Pretrain for a training directory
// that already exists when not resuming. It also matches fs.ErrExist.
var ErrOutExists = errors.New("pipeline: training directory exists (resume it, or choose another)")

// ErrNonFinite is wrapped by the error of Pretrain when a training loss is
// NaN or infinite, or a parameter is when a checkpoint is due (it is then
// not saved).
var ErrNonFinite = errors.New("not finite")

// PretrainConfig configures a pretraining. Its zero value means the
// defaults given on each field; Dataset, Pretext and Out are required.
// Defaults that depend on the dataset or the pretext (the encoder's
// channels and input side, the pretext's own settings, Steps from Epochs,
// which is then 0) are resolved by Pretrain and saved, resolved, in
// OUT/config.json.
type PretrainConfig struct {
	Dataset string `json:"dataset"` // dataset directory, or "builtin:NAME" (builtin.Open)
	Pretext string `json:"pretext"` // a registered pretext (pretext.Names)
	Out     string `json:"out"`     // training directory; must not exist unless resuming

	// Steps is the number of optimiser steps; default 1000, or Epochs
	// passes over the training split when Epochs is set (not both).
	Steps  int `json:"steps"`
	Epochs int `json:"epochs"`
	Batch  int `json:"batch"` // samples (relpos: pairs) per step; default 128

	// Optimizer is "sgd" (momentum 0.9) or "adamw"; default the
	// pretext's (pretext.Spec.Optimizer), else "sgd".
	Optimizer string `json:"optimizer"`
	// LR is the peak learning rate; default the pretext's when it uses
	// the pretext's optimiser, else 0.05 for sgd and 1e-3 for adamw. A
	// linear warm-up over Warmup steps and a cosine decay to 0 at Steps
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

	// Seed drives the initial weights, the loaders and the pretext's own
	// draws (pretext.BatchSeed(Seed, step)).
	Seed uint64 `json:"seed"`
	// Workers is the number of data-loading goroutines; default one per
	// core. Results do not depend on it.
	Workers int `json:"workers"`
	// ShuffleBuffer is the number of images the training and validation
	// orders draw from (augment.LoaderConfig.ShuffleBuffer): pretraining
	// streams the dataset's shards and holds that many images, whatever
	// the dataset's size; default 10,000 (data.DefaultShuffleBuffer).
	ShuffleBuffer int `json:"shuffle_buffer,omitempty"`
	// Distributed, when DistributedMPI ("mpi"), trains data-parallel over
	// the processes that mpirun or srun started, each on its slice of
	// every batch (see Pretrain); "" trains in this process alone.
	Distributed string `json:"distributed,omitempty"`

	// Config holds the encoder's shape and input side and every
	// pretext's own settings (see pretext.Config), resolved by the
	// pretext's Spec for the dataset.
	pretext.Config

	// ImageSide is the training dataset's image side, in pixels, recorded
	// by Pretrain in the resolved config so that a probe can check that
	// its datasets match; a value given in a config is replaced.
	ImageSide int `json:"image_side,omitempty"`

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
// dataset, at once. The pretext's own settings are checked by its Spec
// when Pretrain resolves them for the dataset.
func (c PretrainConfig) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("pipeline: pretrain: "+format, args...))
	}
	if c.Dataset == "" {
		add("no dataset given")
	}
	if c.Pretext == "" {
		add("no pretext given (one of %s)", strings.Join(pretext.Names(), ", "))
	} else if _, err := pretext.Lookup(c.Pretext); err != nil {
		errs = append(errs, fmt.Errorf("pipeline: pretrain: %w", err))
	}
	if c.Out == "" {
		add("no training directory (out) given")
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
	if c.ShuffleBuffer < 0 {
		add("shuffle_buffer %d is negative", c.ShuffleBuffer)
	}
	if c.Distributed != "" && c.Distributed != DistributedMPI {
		add("distributed %q: want %q or nothing", c.Distributed, DistributedMPI)
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
	return errors.Join(errs...)
}

// withDefaults fills in the defaults that depend on neither the dataset
// nor the pretext's own settings; spec is the pretext's.
func (c PretrainConfig) withDefaults(spec pretext.Spec) PretrainConfig {
	if c.Batch == 0 {
		c.Batch = DefaultPretrainBatch
	}
	if c.Optimizer == "" {
		c.Optimizer = cmp.Or(spec.Optimizer, OptimizerSGD)
	}
	if c.LR == 0 {
		switch {
		case spec.LR > 0 && c.Optimizer == cmp.Or(spec.Optimizer, OptimizerSGD):
			c.LR = spec.LR
		case c.Optimizer == OptimizerAdamW:
			c.LR = DefaultAdamWLR
		default:
			c.LR = DefaultSGDLR
		}
	}
	if c.WeightDecay == 0 {
		c.WeightDecay = DefaultWeightDecay
	}
	if c.ShuffleBuffer == 0 {
		c.ShuffleBuffer = data.DefaultShuffleBuffer
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
	return c
}

// MetricsRecord is one line of OUT/metrics.jsonl: a training step's
// numbers (Loss, LR, GradNorm, SamplesPerS, and the pretext's Values) or a
// validation's (ValLoss and Values), with the step (from 1: the number of
// optimiser steps done), the epoch of the step's batch and the training's
// wall time in seconds.
//
// In JSON the pretext's values sit beside the other fields under their
// metric keys (pretext.Metric.Key), those of a validation prefixed with
// "val_": {"step": 100, "loss": 1.2, "acc": 0.5, …} and {"step": 100,
// "val_loss": 1.3, "val_acc": 0.48, …}.
type MetricsRecord struct {
	Step        int
	Epoch       int
	Loss        *float64
	LR          *float64
	GradNorm    *float64 // the global L2 norm of the gradient, before clipping
	SamplesPerS *float64
	WallS       float64
	ValLoss     *float64
	Values      map[string]float64 // by metric key, without the "val_" prefix
}

// IsVal reports whether r is a validation record.
func (r MetricsRecord) IsVal() bool { return r.ValLoss != nil }

// Value returns the value of the metric key, and whether r has it.
func (r MetricsRecord) Value(key string) (float64, bool) {
	v, ok := r.Values[key]
	return v, ok
}

// metricsFields are the JSON keys of MetricsRecord's own fields.
var metricsFields = []string{"step", "epoch", "loss", "lr", "grad_norm", "samples_per_s", "wall_s", "val_loss"}

// MarshalJSON writes r as one flat JSON object (see MetricsRecord).
func (r MetricsRecord) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"step":` + strconv.Itoa(r.Step) + `,"epoch":` + strconv.Itoa(r.Epoch))
	num := func(key string, v float64) error {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("pipeline: metrics: %s is %v", key, v)
		}
		b.WriteString(`,"` + key + `":` + strconv.FormatFloat(v, 'g', -1, 64))
		return nil
	}
	for _, f := range []struct {
		key string
		v   *float64
	}{{"loss", r.Loss}, {"lr", r.LR}, {"grad_norm", r.GradNorm}, {"samples_per_s", r.SamplesPerS}} {
		if f.v != nil {
			if err := num(f.key, *f.v); err != nil {
				return nil, err
			}
		}
	}
	if err := num("wall_s", r.WallS); err != nil {
		return nil, err
	}
	prefix := ""
	if r.ValLoss != nil {
		prefix = "val_"
		if err := num("val_loss", *r.ValLoss); err != nil {
			return nil, err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Values)) {
		if slices.Contains(metricsFields, prefix+k) || !metricKey.MatchString(k) {
			return nil, fmt.Errorf("pipeline: metrics: %q cannot be a metric's key", k)
		}
		if err := num(prefix+k, r.Values[k]); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// metricKey is what a metric's key may be.
var metricKey = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// UnmarshalJSON reads a flat JSON object written by MarshalJSON.
func (r *MetricsRecord) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*r = MetricsRecord{}
	var vals map[string]float64
	for k, raw := range m {
		var v float64
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
		switch k {
		case "step":
			r.Step = int(v)
		case "epoch":
			r.Epoch = int(v)
		case "loss":
			r.Loss = ptr(v)
		case "lr":
			r.LR = ptr(v)
		case "grad_norm":
			r.GradNorm = ptr(v)
		case "samples_per_s":
			r.SamplesPerS = ptr(v)
		case "wall_s":
			r.WallS = v
		case "val_loss":
			r.ValLoss = ptr(v)
		default:
			if vals == nil {
				vals = map[string]float64{}
			}
			vals[k] = v
		}
	}
	if _, ok := m["step"]; !ok {
		return errors.New("no step")
	}
	if r.ValLoss != nil {
		for k, v := range vals {
			name, ok := strings.CutPrefix(k, "val_")
			if !ok {
				return fmt.Errorf("validation record with the training value %q", k)
			}
			delete(vals, k)
			vals[name] = v
		}
	}
	r.Values = vals
	return nil
}

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

// PretrainResult describes a finished (or interrupted) pretraining.
type PretrainResult struct {
	Config     PretrainConfig // resolved
	DatasetID  string
	StartStep  int           // steps already done when this call began (resume)
	Steps      int           // steps done when it returned
	Last       MetricsRecord // the last training record
	LastVal    *MetricsRecord
	Checkpoint string // the last checkpoint written
	Best       string // the checkpoint of lowest val_loss, if any
	// ReduceS is the time, in seconds, this process spent summing the
	// step's metrics and averaging the gradients over the processes of a
	// distributed training (the synchronised batch norms' sums excluded).
	ReduceS float64
}

// Pretrain trains cfg.Pretext on cfg.Dataset, writing into the training
// directory cfg.Out: config.json (the resolved config), metrics.jsonl (one
// MetricsRecord per training step and per validation, appended and
// fsynced line by line) and checkpoints (package checkpoint) every
// CheckpointEvery steps, at the end and when ctx is cancelled; the
// KeepLast latest and the best by val_loss are kept. The training split is
// "train"; validation uses "val", or "test" when there is no "val".
//
// Any registered pretext trains the same way: its Spec resolves its
// settings for the dataset, its sampler makes the batches
// (augment.Loader), its model takes the steps. The loaders stream the
// dataset's shards through a shuffle buffer of ShuffleBuffer images, so
// memory does not grow with the dataset. A checkpoint holds the
// model's parameters and buffers, the optimiser's state, the step, the
// epoch and position of the next batch (rng "loader_position": two
// little-endian uint64, epoch and index), the resolved config, the dataset
// ID and, when validated at that step, val_loss; the pretext's own draws
// need no state (pretext.BatchSeed).
//
// With resume, cfg.Out must hold a training directory: Pretrain takes its
// saved config.json (only cfg.Workers, if set, overrides it), loads the
// latest checkpoint and continues from the next step with the same
// batches as an uninterrupted run, dropping lines of metrics.jsonl past
// the checkpoint. Without resume, cfg.Out must not exist (ErrOutExists).
//
// When ctx is cancelled Pretrain finishes the current step, saves a
// checkpoint and returns ctx's error with the result so far. A NaN or
// infinite loss stops the training with an error wrapping ErrNonFinite
// that names the step; the last checkpoint saved before it stays. Progress
// gets one unit per step (and Report calls if it is a StepReporter).
//
// With Distributed set to DistributedMPI, every process that mpirun or srun
// started calls Pretrain with the same config and trains data-parallel:
// process r of P makes samples [r·B/P, (r+1)·B/P) of every global batch of
// B (a multiple of P) from the same loader order, its model's batch norms
// normalise with the global batch's statistics (nn.SyncBatchNorm), the
// batch's loss and metrics are summed over the processes and the gradients
// averaged (MPI_Allreduce), so every process takes the same optimiser step
// and the losses are those of one process on the same batch, up to the
// order of the sums. Validation is split and summed the same way. Rank 0
// alone writes the training directory and reports progress; on resume it
// loads the checkpoint and hands the others its config, weights and
// optimiser state, so they need no view of the directory (the dataset they
// do need, at the same path). The processes check that they start from
// the same config and weights. ctx, cancelled on any process, stops every
// process after the same step (rank 0 saves the checkpoint), and each
// returns ctx's error; any other error is this process's alone, and the
// caller must end the others (AbortMPI), which would wait for it forever.
// The trajectory is one process's for every pretext whose loss is a mean
// over its samples: simclr's negatives are those of a process's own slice,
// and the denoising autoencoders draw each slice's corruption from a seed
// of its own, so these train well but not on one process's trajectory.
func Pretrain(ctx context.Context, cfg PretrainConfig, resume bool, p Progress) (*PretrainResult, error) {
	if resume && cfg.Distributed == "" {
		// One process resuming a training that was distributed goes on
		// as a world of one.
		if saved, err := LoadPretrainConfig(filepath.Join(cfg.Out, TrainConfigFile)); err == nil {
			cfg.Distributed = saved.Distributed
		}
	}
	var d *dist
	switch cfg.Distributed {
	case "":
	case DistributedMPI:
		w, err := mpi.Init()
		if err != nil {
			return nil, fmt.Errorf("pipeline: pretrain: distributed %q: %w", cfg.Distributed, err)
		}
		d = newDist(w)
	default:
		return nil, fmt.Errorf("%w:\n%w", ErrInvalidConfig, cfg.Validate())
	}
	return pretrain(ctx, cfg, resume, p, d)
}

// pretrain is Pretrain in this process alone (d nil) or as its share d
// of a distributed training.
func pretrain(ctx context.Context, cfg PretrainConfig, resume bool, p Progress, d *dist) (*PretrainResult, error) {
	if p == nil || !d.lead() {
		p = NoProgress{}
	}
	if resume {
		var saved PretrainConfig
		var err error
		if d.lead() {
			saved, err = LoadPretrainConfig(filepath.Join(cfg.Out, TrainConfigFile))
			if err != nil {
				return nil, fmt.Errorf("pipeline: resume %q: %w", cfg.Out, err)
			}
		}
		if d != nil {
			// Rank 0 owns the training directory: the others take its
			// config.
			if saved, err = d.shareConfig(saved); err != nil {
				return nil, err
			}
		}
		saved.Out = cfg.Out
		if cfg.Workers > 0 {
			saved.Workers = cfg.Workers
		}
		if cfg.Distributed != "" {
			saved.Distributed = cfg.Distributed
		}
		cfg = saved
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w:\n%w", ErrInvalidConfig, err)
	}
	if !resume && d.lead() {
		if _, err := os.Lstat(cfg.Out); err == nil {
			return nil, fmt.Errorf("pipeline: pretrain: %q: %w (%w)", cfg.Out, ErrOutExists, fs.ErrExist)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("pipeline: pretrain: %w", err)
		}
	}
	ds, err := builtin.Open(cfg.Dataset)
	if err != nil {
		return nil, fmt.Errorf("pipeline: pretrain: %w", err)
	}
	t, err := newTrainer(ds, cfg, d)
	if err != nil {
		return nil, err
	}
	return t.run(ctx, resume, p)
}

// trainer is one pretraining in progress: the resolved config, the
// pretext's Spec, its loaders, and once built, its model and optimiser.
type trainer struct {
	cfg    PretrainConfig // resolved
	spec   pretext.Spec
	ds     *data.Dataset
	model  pretext.Model
	params []*nn.Param
	unique []*nn.Param // params, each once (tied weights appear twice in params)
	opt    interface {
		nn.Optimizer
		State() []*nn.Param
	}
	sched    nn.WarmupCosine
	train    *augment.Loader
	val      *augment.Loader // nil: no validation
	valSplit string
	eval     augment.Sampler // the evaluation sampler, for the mean image
	dist     *dist           // nil: this process alone
}

// valSeedMix separates the validation draws from training's ("vali").
const valSeedMix = 0x76616c69

// newTrainer resolves cfg against ds and the pretext's Spec and builds the
// loaders. Every problem is reported at once, wrapping ErrInvalidConfig.
func newTrainer(ds *data.Dataset, cfg PretrainConfig, d *dist) (*trainer, error) {
	m := ds.Manifest()
	spec, err := pretext.Lookup(cfg.Pretext)
	if err != nil {
		return nil, fmt.Errorf("%w:\n%w", ErrInvalidConfig, err)
	}
	cfg = cfg.withDefaults(spec)
	bad := func(errs ...error) error { return fmt.Errorf("%w:\n%w", ErrInvalidConfig, errors.Join(errs...)) }
	var errs []error
	if ds.Len(data.Train) == 0 {
		errs = append(errs, fmt.Errorf("pipeline: pretrain: dataset %q has no %q split", ds.Dir(), data.Train))
	}
	pc, err := resolvePretext(spec, cfg.Config, m)
	if err != nil {
		errs = append(errs, err)
	}
	part, parts := 0, 1
	if d != nil {
		part, parts = d.rank, d.size
		if cfg.Batch%parts != 0 {
			errs = append(errs, fmt.Errorf("pipeline: pretrain: batch %d is not a multiple of the %d processes", cfg.Batch, parts))
		}
	}
	if len(errs) > 0 {
		return nil, bad(errs...)
	}
	cfg.Config = pc
	cfg.ImageSide = m.Size

	t := &trainer{ds: ds, spec: spec, dist: d}
	for _, s := range []string{data.Val, data.Test} {
		if ds.Len(s) > 0 {
			t.valSplit = s
			break
		}
	}
	sampler, err := spec.Sampler(pc, m.Size, m.Channels, true)
	if err != nil {
		return nil, bad(err)
	}
	t.train, err = augment.NewLoader(ds, data.Train, sampler, augment.LoaderConfig{
		Batch: cfg.Batch, Workers: cfg.Workers, Seed: cfg.Seed, Shuffle: true, ShuffleBuffer: cfg.ShuffleBuffer,
		Part: part, Parts: parts})
	if err != nil {
		return nil, bad(err)
	}
	cfg.Workers = t.train.Config().Workers
	if t.eval, err = spec.Sampler(pc, m.Size, m.Channels, false); err != nil {
		return nil, bad(err)
	}
	if t.valSplit != "" {
		t.val, err = augment.NewLoader(ds, t.valSplit, t.eval, augment.LoaderConfig{
			Batch: min(cfg.Batch, ds.Len(t.valSplit)), Workers: cfg.Workers, Seed: cfg.Seed ^ valSeedMix, Shuffle: true,
			ShuffleBuffer: cfg.ShuffleBuffer, Part: part, Parts: parts})
		if err != nil {
			return nil, bad(err)
		}
	}
	if cfg.Epochs > 0 {
		// Resolved into Steps, so that the saved config is valid as is.
		cfg.Steps = cfg.Epochs * t.train.BatchesPerEpoch()
		cfg.Epochs = 0
	}
	if cfg.Steps == 0 {
		cfg.Steps = DefaultPretrainSteps
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = cfg.Steps / 20
	}
	t.sched = nn.WarmupCosine{Base: cfg.LR, Final: 0, Warmup: max(cfg.Warmup, 0), Total: cfg.Steps}
	t.cfg = cfg
	return t, nil
}

// build computes what the model needs from the data (the mean image, for
// a Spec that asks for it and when there is validation) and builds the
// model and its optimiser.
func (t *trainer) build(ctx context.Context) error {
	pc := t.cfg.Config
	if t.spec.MeanImage && t.val != nil {
		mean, err := t.meanImage(ctx)
		if err != nil {
			return err
		}
		pc.MeanImage = mean
	}
	rng, _ := nn.NewRNG(t.cfg.Seed)
	model, err := t.spec.New(pc, rng)
	if err != nil {
		return fmt.Errorf("%w:\n%w", ErrInvalidConfig, err)
	}
	t.model, t.params = model, model.Params()
	t.unique = nn.Unique(t.params)
	wd := max(t.cfg.WeightDecay, 0)
	switch t.cfg.Optimizer {
	case OptimizerAdamW:
		t.opt = nn.NewAdamW(t.params, wd)
	default:
		t.opt = nn.NewSGD(t.params, DefaultSGDMomentum, wd, false)
	}
	return nil
}

// resolvePretext resolves the pretext settings c with spec for the
// images and classes of a dataset with manifest m.
func resolvePretext(spec pretext.Spec, c pretext.Config, m *data.Manifest) (pretext.Config, error) {
	c.Classes = len(m.Classes)
	return spec.Resolve(c, m.Size, m.Channels)
}

// PretextSampler returns the sampler that pretraining with cfg would draw
// its samples of ds with: its training sampler, or with train false the
// evaluation sampler of its validation. It returns the error of an
// unknown pretext or of settings that do not fit ds, as Pretrain would.
func PretextSampler(cfg PretrainConfig, ds *data.Dataset, train bool) (augment.Sampler, error) {
	spec, err := pretext.Lookup(cfg.Pretext)
	if err != nil {
		return nil, err
	}
	m := ds.Manifest()
	pc, err := resolvePretext(spec, cfg.Config, m)
	if err != nil {
		return nil, err
	}
	return spec.Sampler(pc, m.Size, m.Channels, train)
}

// batchOf returns b as a pretext.Batch: its views as tensors of the
// loader's view shapes, its labels (shared with b).
func batchOf(b *augment.Batch, views []augment.View) pretext.Batch {
	pb := pretext.Batch{Labels: b.Labels}
	for k, v := range views {
		pb.Views = append(pb.Views, nn.FromData(b.Views[k], b.N*v.Count, v.Side, v.Side, b.C))
	}
	return pb
}

// position returns the (epoch, index) of the batch of step (from 1) of a
// training whose loader has per batches an epoch.
func position(step, per int) (epoch, index int) {
	return (step - 1) / per, (step - 1) % per
}

// run resumes or starts the training and runs its loop.
func (t *trainer) run(ctx context.Context, resume bool, p Progress) (*PretrainResult, error) {
	cfg, d := t.cfg, t.dist
	res := &PretrainResult{Config: cfg, DatasetID: t.ds.ID()}
	cfgJSON, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("pipeline: pretrain: %w", err)
	}
	parent := ctx
	st := &loopState{res: res, cfgJSON: cfgJSON, bestVal: math.Inf(1), savedAt: -1}
	if d != nil {
		// The processes stop together (see step), never one alone.
		ctx, st.stop = stopTogether(ctx)
		defer st.stop()
		if err := d.agree("the resolved config", configFingerprint(cfg)); err != nil {
			return nil, err
		}
	}
	if !resume && d.lead() {
		if err := createOut(cfg.Out, cfgJSON); err != nil {
			return nil, err
		}
	}
	if err := t.build(ctx); err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		return nil, err
	}
	if d != nil {
		nn.SyncBatchNorm(t.model.Buffers(), d)
		d.bucket(t.unique)
	}
	metricsPath := filepath.Join(cfg.Out, MetricsFile)
	if resume {
		if d.lead() {
			if err := t.resume(st); err != nil {
				return nil, err
			}
			if err := truncateMetrics(metricsPath, st.start); err != nil {
				return nil, err
			}
		}
		if d != nil {
			if err := d.shareResume(t, st); err != nil {
				return nil, err
			}
		}
	}
	if d != nil {
		if err := d.agree("the model's starting state", fingerprint(t.params, t.model.Buffers(), t.opt.State())); err != nil {
			return nil, err
		}
	}
	res.StartStep, res.Steps = st.start, st.start

	if !d.lead() {
		st.log = func(MetricsRecord) error { return nil }
	} else if err := t.openMetrics(st, metricsPath, p); err != nil {
		return nil, err
	} else {
		defer st.closeLog()
	}
	p.Start("pretrain "+cfg.Pretext, cfg.Steps)
	defer p.Done()
	p.Add(st.start)
	if st.start >= cfg.Steps {
		return res, nil
	}
	st.per = t.train.BatchesPerEpoch()
	st.t0 = time.Now()
	e0, k0 := position(st.start+1, st.per)
	stream := t.train.Stream(ctx, e0, k0)
	defer stream.Close()

	l := &loop{
		step: func(ctx context.Context, step int) error { return t.step(parent, stream, st, step) },
		hooks: []hook{
			{every: 1, run: func(ctx context.Context, step int) error { return st.log(st.rec) }},
			{every: 1, run: func(context.Context, int) error { p.Add(1); return nil }},
			{every: cfg.ValEvery, last: true, run: func(ctx context.Context, step int) error { return t.validateHook(ctx, st, step) }},
			{every: cfg.CheckpointEvery, last: true, run: func(ctx context.Context, step int) error { return t.save(st, step) }},
		},
		interrupted: func(step int) error {
			if st.savedAt == step {
				return nil
			}
			return t.save(st, step)
		},
	}
	err = l.run(ctx, st.start, cfg.Steps)
	if d != nil {
		res.ReduceS = d.reduceS
	}
	return res, err
}

// openMetrics opens the metrics log for appending and sets st.log and
// st.closeLog.
func (t *trainer) openMetrics(st *loopState, metricsPath string, p Progress) error {
	mf, err := os.OpenFile(metricsPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("pipeline: pretrain: %w", err)
	}
	st.closeLog = func() { mf.Close() }
	st.log = func(rec MetricsRecord) error {
		b, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("pipeline: pretrain: step %d: %w", rec.Step, err)
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
	return nil
}

// createOut creates the training directory out and its config.json.
func createOut(out string, cfgJSON []byte) error {
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(out)), 0o755); err != nil {
		return fmt.Errorf("pipeline: pretrain: %w", err)
	}
	if err := os.Mkdir(out, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("pipeline: pretrain: %q: %w (%w)", out, ErrOutExists, err)
		}
		return fmt.Errorf("pipeline: pretrain: %w", err)
	}
	if err := fsutil.WriteSynced(filepath.Join(out, TrainConfigFile), fsutil.CreateExcl, func(w io.Writer) error {
		_, err := w.Write(append(cfgJSON, '\n'))
		return err
	}); err != nil {
		return fmt.Errorf("pipeline: pretrain: %w", err)
	}
	return nil
}

// loopState is what the training loop's step and hooks share.
type loopState struct {
	res     *PretrainResult
	cfgJSON []byte
	log     func(MetricsRecord) error
	start   int       // steps done before this call
	per     int       // batches per epoch
	t0      time.Time // when this call's loop began
	wall0   float64   // wall time of earlier calls (resume), seconds
	rec     MetricsRecord
	val     *float64 // the validation loss of the current step, if validated
	bestVal float64
	best    string
	savedAt int // the step of the last checkpoint saved or loaded; -1: none

	closeLog func()
	stop     context.CancelFunc // distributed: stops every process's loop together
}

func (st *loopState) wall() float64 { return round3(st.wall0 + time.Since(st.t0).Seconds()) }

// resume loads the latest checkpoint of the training directory into the
// model and optimiser and finds the best checkpoint so far.
func (t *trainer) resume(st *loopState) error {
	cfg := t.cfg
	ckpt, err := checkpoint.Latest(cfg.Out)
	switch {
	case errors.Is(err, checkpoint.ErrNone):
		// Interrupted before its first checkpoint: start again.
	case err != nil:
		return fmt.Errorf("pipeline: resume: %w", err)
	default:
		s := checkpoint.State{Params: t.params, Buffers: t.model.Buffers(), Optim: t.opt.State()}
		if err := checkpoint.Load(ckpt, &s); err != nil {
			return fmt.Errorf("pipeline: resume: %w", err)
		}
		if s.DatasetID != t.ds.ID() {
			return fmt.Errorf("pipeline: resume %q: the checkpoint was made on dataset %.12s…, %q is %.12s…", cfg.Out, s.DatasetID, cfg.Dataset, t.ds.ID())
		}
		if s.Pretext != cfg.Pretext {
			return fmt.Errorf("pipeline: resume %q: the checkpoint is of pretext %q, the training's config says %q", cfg.Out, s.Pretext, cfg.Pretext)
		}
		st.start, st.wall0 = s.Step, s.Metrics["wall_s"]
		st.res.Checkpoint, st.savedAt = ckpt, s.Step
	}
	paths, _ := checkpoint.List(cfg.Out)
	for _, path := range paths {
		if m, err := checkpoint.ReadManifest(path); err == nil {
			if v, ok := m.Metrics["val_loss"]; ok && v < st.bestVal {
				st.best, st.bestVal = path, v
			}
		}
	}
	st.res.Best = st.best
	return nil
}

// step takes training step (from 1): the next batch from stream, the
// model's forward and backward pass, the non-finite guard, gradient
// clipping and the optimiser's update, leaving the step's record in st.
//
// Distributed, the model steps on this process's slice of the batch; the
// loss and metrics of the whole batch, and whether any process's parent
// was cancelled, are summed over the processes, then the gradients are
// averaged (bucketed all-reduces), so that every process takes the same
// optimiser step; when any process was cancelled, st.stop ends every
// loop after this step.
func (t *trainer) step(parent context.Context, stream *augment.Stream, st *loopState, step int) error {
	cfg := t.cfg
	tStep := time.Now()
	b, err := stream.Next()
	if err != nil {
		return fmt.Errorf("pipeline: pretrain: step %d: %w", step, err)
	}
	pb := batchOf(b, t.train.Views())
	pb.Seed = pretext.BatchSeed(cfg.Seed, int64(step))
	if t.dist != nil && t.dist.rank > 0 {
		// The model's own draws (the corruption of the denoising
		// autoencoders) are the slice's own, not rank 0's again.
		pb.Seed = pretext.BatchSeed(cfg.Seed^uint64(t.dist.rank)*rankSeedMix, int64(step))
	}
	lr := t.sched.At(step - 1)
	nn.ZeroGrads(t.params)
	m := t.model.Step(pb, true)
	n, epoch := b.N, b.Epoch
	b.Release()
	if d := t.dist; d != nil {
		t0 := time.Now()
		var stop bool
		var err error
		if m, n, stop, err = d.reduceMetrics(m, n, metricKeys(t.spec), parent.Err() != nil); err != nil {
			return fmt.Errorf("pipeline: pretrain: step %d: %w", step, err)
		}
		if err := d.averageGrads(); err != nil {
			return fmt.Errorf("pipeline: pretrain: step %d: %w", step, err)
		}
		d.reduceS += time.Since(t0).Seconds()
		if stop {
			st.stop()
		}
	}
	if math.IsNaN(m.Loss) || math.IsInf(m.Loss, 0) {
		return fmt.Errorf("pipeline: pretrain: step %d: loss %w (%v); the last good checkpoint is %q", step, ErrNonFinite, m.Loss, st.res.Checkpoint)
	}
	gnorm := clipGradients(t.unique, cfg.GradClip)
	if math.IsNaN(gnorm) || math.IsInf(gnorm, 0) {
		return fmt.Errorf("pipeline: pretrain: step %d: gradient norm %w (%v); the last good checkpoint is %q", step, ErrNonFinite, gnorm, st.res.Checkpoint)
	}
	t.opt.Step(lr)
	st.res.Steps = step
	dt := time.Since(tStep).Seconds()
	st.rec = MetricsRecord{Step: step, Epoch: epoch, Loss: ptr(m.Loss), LR: ptr(lr), GradNorm: ptr(gnorm),
		SamplesPerS: ptr(round1(float64(n) / max(dt, 1e-9))), WallS: st.wall(), Values: m.Values}
	st.res.Last = st.rec
	st.val = nil
	return nil
}

// validateHook validates at step and logs the record.
func (t *trainer) validateHook(ctx context.Context, st *loopState, step int) error {
	if t.val == nil {
		return nil
	}
	vr, err := t.validate(ctx, step, st.rec.Epoch)
	if err != nil {
		return err
	}
	if v := *vr.ValLoss; math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("pipeline: pretrain: step %d: validation loss %w (%v); the last good checkpoint is %q", step, ErrNonFinite, v, st.res.Checkpoint)
	}
	vr.WallS = st.wall()
	if err := st.log(vr); err != nil {
		return err
	}
	st.res.LastVal = &vr
	st.val = vr.ValLoss
	return nil
}

// save writes the checkpoint of step and prunes the older ones.
func (t *trainer) save(st *loopState, step int) error {
	cfg := t.cfg
	e, k := position(step+1, st.per)
	pos := make([]byte, 16)
	binary.LittleEndian.PutUint64(pos, uint64(e))
	binary.LittleEndian.PutUint64(pos[8:], uint64(k))
	metrics := map[string]float64{"wall_s": st.wall()}
	if st.val != nil {
		metrics["val_loss"] = *st.val
	}
	for _, q := range t.params {
		if !kernel.AllFinite(q.Value.Data) {
			return fmt.Errorf("pipeline: pretrain: step %d: parameter %q %w: checkpoint not saved; the last good checkpoint is %q", step, q.Name, ErrNonFinite, st.res.Checkpoint)
		}
	}
	if !t.dist.lead() {
		// Rank 0's checkpoint holds every process's state: the same
		// weights, and the position of the global batch, of which each
		// process takes its slice by its rank.
		st.savedAt = step
		return nil
	}
	path, err := checkpoint.Save(cfg.Out, checkpoint.State{
		Step: step, Epoch: e, Config: st.cfgJSON, DatasetID: t.ds.ID(), Pretext: cfg.Pretext,
		RNG: map[string][]byte{"loader_position": pos}, Metrics: metrics,
		Params: t.params, Buffers: t.model.Buffers(), Optim: t.opt.State(),
	})
	if err != nil {
		return fmt.Errorf("pipeline: pretrain: %w", err)
	}
	st.res.Checkpoint, st.savedAt = path, step
	if v, ok := metrics["val_loss"]; ok && v < st.bestVal {
		st.best, st.bestVal = path, v
		st.res.Best = path
	}
	if err := checkpoint.Prune(cfg.Out, cfg.KeepLast, st.best); err != nil {
		return fmt.Errorf("pipeline: pretrain: %w", err)
	}
	return nil
}

// validate evaluates the model on up to ValBatches batches of the
// validation split (at most one pass), the same batches every time.
func (t *trainer) validate(ctx context.Context, step, epoch int) (MetricsRecord, error) {
	cfg := t.cfg
	s := t.val.Stream(ctx, 0, 0)
	defer s.Close()
	var loss float64
	sums := map[string]float64{}
	total := 0
	for i := range min(cfg.ValBatches, t.val.BatchesPerEpoch()) {
		b, err := s.Next()
		if err != nil {
			return MetricsRecord{}, fmt.Errorf("pipeline: pretrain: validation at step %d: %w", step, err)
		}
		if b.N == 0 {
			b.Release()
			continue // distributed: this process's slice of a small batch
		}
		pb := batchOf(b, t.val.Views())
		pb.Seed = pretext.BatchSeed(cfg.Seed^valSeedMix, int64(-1-i))
		m := t.model.Step(pb, false)
		n := float64(b.N)
		loss += m.Loss * n
		for k, v := range m.Values {
			sums[k] += v * n
		}
		total += b.N
		b.Release()
	}
	if d := t.dist; d != nil {
		m := pretext.Metrics{Values: map[string]float64{}}
		if total > 0 {
			m.Loss = loss / float64(total)
			for k, v := range sums {
				m.Values[k] = v / float64(total)
			}
		}
		m, n, _, err := d.reduceMetrics(m, total, metricKeys(t.spec), false)
		if err != nil {
			return MetricsRecord{}, fmt.Errorf("pipeline: pretrain: validation at step %d: %w", step, err)
		}
		total, loss, sums = n, m.Loss*float64(n), map[string]float64{}
		for k, v := range m.Values {
			sums[k] = v * float64(n)
		}
	}
	if total == 0 {
		return MetricsRecord{}, fmt.Errorf("pipeline: pretrain: validation at step %d: no batches in split %q", step, t.valSplit)
	}
	rec := MetricsRecord{Step: step, Epoch: epoch, ValLoss: ptr(loss / float64(total))}
	if len(sums) > 0 {
		rec.Values = map[string]float64{}
		for k, v := range sums {
			rec.Values[k] = v / float64(total)
		}
	}
	return rec, nil
}

// meanImage returns the mean, over the training split, of the first view
// of the evaluation sampler's samples ([Count, S, S, C] averaged over the
// split's images).
func (t *trainer) meanImage(ctx context.Context) ([]float32, error) {
	l, err := augment.NewLoader(t.ds, data.Train, t.eval, augment.LoaderConfig{Batch: 256, Workers: t.cfg.Workers, Seed: t.cfg.Seed})
	if err != nil {
		return nil, fmt.Errorf("pipeline: pretrain: mean image: %w", err)
	}
	s := l.Stream(ctx, 0, 0)
	defer s.Close()
	per := l.Views()[0].Len(t.ds.Manifest().Channels)
	sum := make([]float64, per)
	count := 0
	for {
		b, err := s.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("pipeline: pretrain: mean image: %w", err)
		}
		for i := range b.N {
			for j, v := range b.Views[0][i*per : (i+1)*per] {
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
			sum += kernel.SquaredDiff(nil, p.Grad.Data, nil)
		}
	}
	norm := math.Sqrt(sum)
	if max > 0 && norm > max {
		scale := float32(max / norm)
		for _, p := range ps {
			if p.Grad != nil {
				kernel.Scale(p.Grad.Data, p.Grad.Data, scale)
			}
		}
	}
	return norm
}

func ptr(v float64) *float64 { return &v }
