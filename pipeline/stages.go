package pipeline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/nn/kernel"
	"github.com/patchwise-ml/patchwise/pretext"
	"github.com/patchwise-ml/patchwise/probe"
)

// PretextOverride replaces shared pretraining settings (RunConfig.Pretrain)
// for one pretext; zero fields keep the shared ones.
type PretextOverride struct {
	Optimizer string  `json:"optimizer,omitempty"` // "sgd" or "adamw"
	LR        float64 `json:"lr,omitempty"`        // peak learning rate
	Batch     int     `json:"batch,omitempty"`     // samples per step
	Steps     int     `json:"steps,omitempty"`     // optimiser steps
	// LRSweep lists peak learning rates to choose from, instead of LR: the
	// pretext is pretrained with each, with the run's first seed, and the
	// one with the lowest validation loss of the pretext (its own loss on
	// held-out images, never a probe's test split) trains every seed. The
	// validation images are the pretraining dataset's "val" split, or
	// when it has none SweepValFraction of its training images carved
	// out (SweepDataset): the sweep then trains on the rest.
	LRSweep []float64 `json:"lr_sweep,omitempty"`
}

// SweepValFraction is the share of each class of the training split that
// a learning-rate sweep holds out for validation when the pretraining
// dataset has no "val" split.
const SweepValFraction = 0.1

func (o PretextOverride) validate(name string) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("overrides[%q]: "+format, append([]any{name}, args...)...))
	}
	if o.Optimizer != "" && o.Optimizer != OptimizerSGD && o.Optimizer != OptimizerAdamW {
		bad("optimizer %q: want %q or %q", o.Optimizer, OptimizerSGD, OptimizerAdamW)
	}
	if !(o.LR >= 0) || math.IsInf(o.LR, 0) {
		bad("lr %v: want a finite value > 0 (0: the shared one)", o.LR)
	}
	if o.Batch < 0 {
		bad("batch %d is negative", o.Batch)
	}
	if o.Steps < 0 {
		bad("steps %d is negative", o.Steps)
	}
	if len(o.LRSweep) > 0 && o.LR != 0 {
		bad("give lr or lr_sweep, not both")
	}
	for i, lr := range o.LRSweep {
		if !(lr > 0) || math.IsInf(lr, 0) {
			bad("lr_sweep[%d] = %v: want a finite value > 0", i, lr)
		} else if j := slices.Index(o.LRSweep, lr); j < i {
			bad("lr_sweep[%d] = %v repeats lr_sweep[%d]", i, lr, j)
		}
	}
	return errors.Join(errs...)
}

// LayersConfig configures the layer-wise probes: the linear probe of every
// block of each encoder, each block's map average-pooled to about the same
// number of features.
type LayersConfig struct {
	// Features is the feature count every block is pooled to, about:
	// block k, of width W_k and side S_k, is average-pooled to p_k×p_k
	// bins (as PyTorch's AdaptiveAvgPool2d) with p_k the integer nearest
	// √(Features/W_k), at least 1 and at most S_k, giving p_k²·W_k
	// features. Default DefaultLayerFeatures.
	Features int `json:"features,omitempty"`
	// Transfer probes the transfer datasets layer by layer too; by
	// default only the pretraining dataset.
	Transfer bool `json:"transfer,omitempty"`
	// Protocol is the linear probe's; nil means the run's
	// (RunConfig.Probe.Protocol). The k-NN probes are not run.
	Protocol *probe.Config `json:"protocol,omitempty"`
}

// DefaultLayerFeatures is LayersConfig.Features's default: for the
// compare job's widths 16, 32, 64, 128 it gives 256, 288, 256 and 128
// features (bins of 4², 3², 2², 1²).
const DefaultLayerFeatures = 256

func (c LayersConfig) validate() error {
	var errs []error
	if c.Features < 0 {
		errs = append(errs, fmt.Errorf("layers: features %d is negative (0 for %d)", c.Features, DefaultLayerFeatures))
	}
	if c.Protocol != nil {
		if err := c.Protocol.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("layers: %w", err))
		}
	}
	return errors.Join(errs...)
}

// LayerPooling returns the pooled side of each block of the encoder enc
// on inputs of side size, for about features features per block
// (LayersConfig.Features), at most the side of the block's map.
func LayerPooling(enc pretext.EncoderConfig, size, features int) []int {
	widths, sides := enc.BlockWidths(), enc.MapSides(size)
	out := make([]int, len(widths))
	for k, w := range widths {
		side := max(1, sides[k])
		p := int(math.Round(math.Sqrt(float64(features) / float64(w))))
		out[k] = min(max(p, 1), side)
	}
	return out
}

// LayerProbe is the layer-wise probe of one encoder on one dataset.
type LayerProbe struct {
	Features int           `json:"features"` // LayersConfig.Features
	Stages   []LayerResult `json:"stages"`
}

// LayerResult is the linear probe of one block.
type LayerResult struct {
	Stage      int     `json:"stage"`       // the block, from 1
	Pooled     int     `json:"pooled"`      // bins per side
	FeatureDim int     `json:"feature_dim"` // pooled²·width
	Top1       float64 `json:"linear_top1"`
	L2         float64 `json:"l2"`
	Converged  bool    `json:"converged"`
}

// StepCost is what one pretraining step of a pretext costs, counted on one
// step of its model (kernel.CountFLOPs).
type StepCost struct {
	// FLOPs of the step's forward and backward products (GEMMs and
	// convolutions), at Batch.
	FLOPs float64 `json:"flops"`
	Batch int     `json:"batch"`
	// Views is the number of images the sampler makes per sample (the
	// crops, tiles or rotations of one source image), summed over its
	// views.
	Views int `json:"views_per_sample"`
}

// countStep counts the FLOPs of one training step of the pretraining cfg
// on ds: its first batch through a model built from the seed, forward and
// backward. The model is built without the mean image (which only its
// baseline metrics read).
func countStep(ctx context.Context, ds *data.Dataset, cfg PretrainConfig) (StepCost, error) {
	spec, err := pretext.Lookup(cfg.Pretext)
	if err != nil {
		return StepCost{}, err
	}
	cfg = cfg.withDefaults(spec)
	m := ds.Manifest()
	pc, err := resolvePretext(spec, cfg.Config, m)
	if err != nil {
		return StepCost{}, err
	}
	sampler, err := spec.Sampler(pc, m.Size, m.Channels, true)
	if err != nil {
		return StepCost{}, err
	}
	l, err := augment.NewLoader(ds, data.Train, sampler, augment.LoaderConfig{Batch: cfg.Batch, Workers: 1, Seed: cfg.Seed, Shuffle: true})
	if err != nil {
		return StepCost{}, err
	}
	s := l.Stream(ctx, 0, 0)
	defer s.Close()
	b, err := s.Next()
	if err != nil {
		return StepCost{}, err
	}
	defer b.Release()
	pb := batchOf(b, l.Views())
	pb.Seed = pretext.BatchSeed(cfg.Seed, 1)
	rng, _ := nn.NewRNG(cfg.Seed)
	model, err := spec.New(pc, rng)
	if err != nil {
		return StepCost{}, err
	}
	flops := kernel.CountFLOPs(func() { model.Step(pb, true) })
	views := 0
	for _, v := range l.Views() {
		views += v.Count
	}
	return StepCost{FLOPs: float64(flops), Batch: cfg.Batch, Views: views}, nil
}

// pretrainConfig is the pretraining config of pretext name: the shared
// settings with the pretext's overrides and, after a sweep, its chosen
// learning rate.
func (r *runner) pretrainConfig(name string) PretrainConfig {
	cfg := r.cfg.Pretrain
	cfg.Pretext = name
	o := r.cfg.Overrides[name]
	if o.Optimizer != "" {
		cfg.Optimizer = o.Optimizer
	}
	if o.LR != 0 {
		cfg.LR = o.LR
	}
	if o.Batch != 0 {
		cfg.Batch = o.Batch
	}
	if o.Steps != 0 {
		cfg.Steps, cfg.Epochs = o.Steps, 0
	}
	if lr, ok := r.chosenLR[name]; ok {
		cfg.LR = lr
	}
	return cfg
}

// SweepRecord is the learning-rate sweep of one pretext.
type SweepRecord struct {
	Pretext string `json:"pretext"`
	Seed    uint64 `json:"seed"`
	// Validation says where the validation loss comes from: "val split"
	// or "carve" (SweepValFraction of the training split, held out).
	Validation string       `json:"validation"`
	Trials     []SweepTrial `json:"trials"`
	Chosen     float64      `json:"chosen_lr"`
}

// SweepTrial is one learning rate of a sweep.
type SweepTrial struct {
	LR      float64  `json:"lr"`
	ValLoss *float64 `json:"val_loss"` // null when it diverged
	Error   string   `json:"error,omitempty"`
	Steps   int      `json:"steps"`
	Seconds float64  `json:"-"`                // wall time, in report.md only
	Reused  bool     `json:"reused,omitempty"` // it is the first seed's pretraining itself
}

// sweep pretrains name with each learning rate of its sweep and the
// first seed, and chooses the one of the lowest validation loss.
func (r *runner) sweep(ctx context.Context, name string) (*SweepRecord, error) {
	lrs := r.cfg.Overrides[name].LRSweep
	ds, how, err := r.sweepDataset(ctx)
	if err != nil {
		return nil, err
	}
	seed := r.cfg.Seeds[0]
	rec := &SweepRecord{Pretext: name, Seed: seed, Validation: how}
	best := math.Inf(1)
	for _, lr := range lrs {
		cfg := r.pretrainConfig(name)
		cfg.LR, cfg.Seed = lr, seed
		e := &ReportEntry{}
		label := fmt.Sprintf("%s lr %g seed %d (sweep)", name, lr, seed)
		prefix := fmt.Sprintf("%s-seed%d", name, seed)
		if ds != r.datasets[0] {
			prefix = fmt.Sprintf("%s-sweep-seed%d", name, seed)
		}
		tr := SweepTrial{LR: lr, Reused: ds == r.datasets[0]}
		_, err := r.pretrain(ctx, ds, cfg, label, prefix, e)
		switch {
		case errors.Is(err, ErrNonFinite) && ctx.Err() == nil:
			tr.Error = err.Error()
			r.log("%v", err)
		case err != nil:
			return nil, err
		default:
			tr.ValLoss, tr.Steps, tr.Seconds = e.Training.ValLoss, e.Training.Steps, e.Training.Seconds
			if tr.ValLoss == nil {
				return nil, fmt.Errorf("pipeline: run: sweep %s: the pretraining at lr %g has no validation loss", name, lr)
			}
			if *tr.ValLoss < best {
				best, rec.Chosen = *tr.ValLoss, lr
			}
		}
		rec.Trials = append(rec.Trials, tr)
	}
	if math.IsInf(best, 1) {
		return rec, fmt.Errorf("pipeline: run: sweep %s: every learning rate diverged (%v): %w", name, lrs, ErrNonFinite)
	}
	return rec, nil
}

// sweepDataset returns the dataset a sweep trains and validates on: the
// pretraining dataset when it has a "val" split, else a copy of its
// training split with SweepValFraction of each class moved into a "val"
// split (written once into the run's datasets/).
func (r *runner) sweepDataset(ctx context.Context) (*data.Dataset, string, error) {
	src := r.datasets[0]
	if src.Len(data.Val) > 0 {
		return src, "val split", nil
	}
	if r.sweepDS != nil {
		return r.sweepDS, "carve", nil
	}
	t0 := time.Now()
	dir := filepath.Join(r.dir, "datasets", fmt.Sprintf("%s-sweep-%s", r.names[0], hashOf(struct {
		Dataset  string
		Fraction float64
	}{src.ID(), SweepValFraction})))
	status := "skipped"
	if _, err := os.Stat(filepath.Join(dir, data.ManifestFile)); errors.Is(err, fs.ErrNotExist) {
		status = "done"
		if err := carveDataset(ctx, src, dir, SweepValFraction); err != nil {
			return nil, "", err
		}
	}
	ds, err := data.Open(dir)
	if err != nil {
		return nil, "", err
	}
	r.sweepDS = ds
	return ds, "carve", r.stage("carve", fmt.Sprintf("%s validation carve for sweeps", r.names[0]), dir, status, t0)
}

// carveDataset writes to dir a dataset of src's training split with
// round(frac·n_c) images of each class c (at most n_c − 1), chosen by a
// shuffle seeded with 0, in a "val" split and the rest in "train". The
// other splits of src are not copied: nothing chosen on it can see them.
func carveDataset(ctx context.Context, src *data.Dataset, dir string, frac float64) error {
	recs, err := src.Load(data.Train)
	if err != nil {
		return err
	}
	m := src.Manifest()
	byClass := map[int][]int{}
	for i, r := range recs {
		byClass[r.Label] = append(byClass[r.Label], i)
	}
	rng := rand.New(rand.NewPCG(0, 0x7077737765657021)) // "pwsweep!"
	inVal := make([]bool, len(recs))
	for _, c := range slices.Sorted(maps.Keys(byClass)) {
		idx := byClass[c]
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for _, i := range idx[:min(int(math.Round(frac*float64(len(idx)))), len(idx)-1)] {
			inVal[i] = true
		}
	}
	w, err := data.Create(dir, m.Preprocessing, m.Classes, data.Provenance{Format: "carve", Inputs: []string{src.ID()},
		Notes: fmt.Sprintf("the training split of dataset %s, %g of each class held out as \"val\" for learning-rate sweeps", src.ID(), frac)})
	if err != nil {
		return err
	}
	for i, rec := range recs {
		if err := ctx.Err(); err != nil {
			w.Abort()
			return err
		}
		split := data.Train
		if inVal[i] {
			split = data.Val
		}
		if err := w.Add(split, rec); err != nil {
			w.Abort()
			return err
		}
	}
	_, _, err = w.Close()
	return err
}

// budget returns the step cost of pretext name's pretraining, counted once
// per configuration (budget/ in the run directory).
func (r *runner) budget(ctx context.Context, name string) (*StepCost, error) {
	t0 := time.Now()
	cfg := r.pretrainConfig(name)
	cfg.Seed = r.cfg.Seeds[0]
	hashed := cfg
	hashed.Workers = 0
	ds := r.datasets[0]
	out := filepath.Join(r.dir, "budget", fmt.Sprintf("%s-%s.json", name, hashOf(struct {
		Dataset string
		Config  PretrainConfig
	}{ds.ID(), hashed})))
	var c StepCost
	b, err := os.ReadFile(out)
	status := "skipped"
	switch {
	case errors.Is(err, fs.ErrNotExist):
		status = "done"
		if c, err = countStep(ctx, ds, cfg); err == nil {
			err = writeJSONNew(out, c)
		}
	case err == nil:
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline: run: budget of %s: %w", name, err)
	}
	return &c, r.stage("budget", name, out, status, t0)
}

// probeStage reads the JSON output of a probe stage into v, or when it
// is missing computes it with compute and writes it; it records the stage.
func (r *runner) probeStage(kind, what, out string, v any, compute func() (any, error)) error {
	t0 := time.Now()
	b, err := os.ReadFile(out)
	status := "skipped"
	switch {
	case errors.Is(err, fs.ErrNotExist):
		status = "done"
		var res any
		if res, err = compute(); err == nil {
			if err = writeJSONNew(out, res); err == nil {
				b, err = json.Marshal(res)
			}
		}
		if err == nil {
			err = json.Unmarshal(b, v)
		}
	case err == nil:
		if err = json.Unmarshal(b, v); err != nil {
			err = fmt.Errorf("%s: %w (remove it to probe again)", out, err)
		}
	}
	if err != nil {
		return fmt.Errorf("pipeline: run: %s probe %s: %w", kind, what, err)
	}
	return r.stage(kind, what, out, status, t0)
}

// lowShot runs or reads the low-shot probes of an encoder (nil: pixels)
// on dataset i with the resolved probe config pc.
func (r *runner) lowShot(ctx context.Context, enc *FrozenEncoder, i int, pc ProbeConfig, label string) ([]probe.LowShotResult, error) {
	ds := r.datasets[i]
	lc := r.cfg.LowShot.WithDefaults()
	encHash := "pixels"
	depth := 0
	if enc != nil {
		encHash, depth = enc.Hash, len(enc.Encoder.Blocks)
	}
	rc, err := pc.resolve(depth)
	if err != nil {
		return nil, err
	}
	out := filepath.Join(r.dir, "probe", fmt.Sprintf("%s-%s-lowshot-%s.json", label, r.names[i], hashOf(struct {
		Encoder, Dataset string
		Probe            ProbeConfig
		LowShot          probe.LowShotConfig
	}{encHash, ds.ID(), rc, lc})))
	var res []probe.LowShotResult
	err = r.probeStage("low-shot", strings.ReplaceAll(label, "-seed", " seed ")+" on "+r.names[i], out, &res, func() (any, error) {
		req := ProbeRequest{Encoder: enc, Train: ds, Test: ds, CacheDir: filepath.Join(r.dir, "features")}
		testSplit, err := req.check()
		if err != nil {
			return nil, err
		}
		train, err := req.features(ctx, ds, data.Train, rc.Stage, rc.Pooled, rc.Batch, r.p)
		if err != nil {
			return nil, err
		}
		test, err := req.features(ctx, ds, testSplit, rc.Stage, rc.Pooled, rc.Batch, r.p)
		if err != nil {
			return nil, err
		}
		return probe.LowShot(ctx, train, test, lc, rc.Protocol, r.p)
	})
	return res, err
}

// layers runs or reads the layer-wise probes of enc on dataset i with
// the probe seed of pc.
func (r *runner) layers(ctx context.Context, enc *FrozenEncoder, i int, pc ProbeConfig, label string) (*LayerProbe, error) {
	ds := r.datasets[i]
	lc := *r.cfg.Layers
	lc.Features = cmp.Or(lc.Features, DefaultLayerFeatures)
	proto := pc.Protocol
	if lc.Protocol != nil {
		proto = *lc.Protocol
		proto.Seed = pc.Protocol.Seed
	}
	proto = proto.WithDefaults()
	lc.Protocol = &proto
	batch := cmp.Or(pc.Batch, 256)
	out := filepath.Join(r.dir, "probe", fmt.Sprintf("%s-%s-layers-%s.json", label, r.names[i], hashOf(struct {
		Encoder, Dataset string
		Layers           LayersConfig
	}{enc.Hash, ds.ID(), lc})))
	var res LayerProbe
	err := r.probeStage("layers", strings.ReplaceAll(label, "-seed", " seed ")+" on "+r.names[i], out, &res, func() (any, error) {
		req := ProbeRequest{Encoder: enc, Train: ds, Test: ds, CacheDir: filepath.Join(r.dir, "features")}
		testSplit, err := req.check()
		if err != nil {
			return nil, err
		}
		lp := LayerProbe{Features: lc.Features}
		for k, p := range LayerPooling(enc.Encoder.Config, enc.Size, lc.Features) {
			train, err := req.features(ctx, ds, data.Train, k+1, p, batch, r.p)
			if err != nil {
				return nil, err
			}
			test, err := req.features(ctx, ds, testSplit, k+1, p, batch, r.p)
			if err != nil {
				return nil, err
			}
			res, err := probe.EvaluateLinear(ctx, train, test, proto, r.p)
			if err != nil {
				return nil, fmt.Errorf("block %d: %w", k+1, err)
			}
			lp.Stages = append(lp.Stages, LayerResult{Stage: k + 1, Pooled: p, FeatureDim: train.D, Top1: res.LinearTop1,
				L2: res.Protocol.L2, Converged: res.Protocol.Converged})
		}
		return lp, nil
	})
	return &res, err
}
