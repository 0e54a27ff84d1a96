package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"time"

	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/pretext"
)

// BenchConfig selects what Bench times. Its zero value means the defaults
// documented on each field.
type BenchConfig struct {
	Models   []string // reference models to time (see pretext.ReferenceModels); default all
	Batch    int      // images (pairs for relpos) per step; default 128
	Size     int      // image side in pixels; default 32
	Channels int      // image channels, 1 or 3; default 3
	Steps    int      // timed steps; default 20
	Warmup   int      // untimed steps before timing; default 5, negative for none
	Seed     uint64   // seed for weights and random inputs
}

func (c BenchConfig) withDefaults() BenchConfig {
	if len(c.Models) == 0 {
		c.Models = pretext.ReferenceModels
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Batch, 128)
	def(&c.Size, 32)
	def(&c.Channels, 3)
	def(&c.Steps, 20)
	def(&c.Warmup, 5)
	c.Warmup = max(c.Warmup, 0)
	return c
}

// Validate reports every problem with the configuration at once.
func (c BenchConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	for _, m := range c.Models {
		if !slices.Contains(pretext.ReferenceModels, m) {
			errs = append(errs, fmt.Errorf("pipeline: bench: unknown model %q (known: %v)", m, pretext.ReferenceModels))
		}
	}
	if c.Batch < 1 {
		errs = append(errs, fmt.Errorf("pipeline: bench: batch must be positive, got %d", c.Batch))
	}
	if c.Steps < 1 {
		errs = append(errs, fmt.Errorf("pipeline: bench: steps must be positive, got %d", c.Steps))
	}
	enc := pretext.EncoderConfig{Channels: c.Channels}
	if err := enc.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Size < enc.MinSize() {
		errs = append(errs, fmt.Errorf("pipeline: bench: size must be at least %d for the reference encoder, got %d", enc.MinSize(), c.Size))
	}
	return errors.Join(errs...)
}

// BenchResult is one model's training throughput. Field names and meanings
// match ../shared/bench/torch_ref.py so the two can be compared side by side.
type BenchResult struct {
	Model       string  `json:"model"`
	Impl        string  `json:"impl"`
	Device      string  `json:"device"`
	Threads     int     `json:"threads"`
	Batch       int     `json:"batch"`
	Size        int     `json:"size"`
	Channels    int     `json:"channels"`
	StepMS      float64 `json:"step_ms"`       // median wall time of one training step, milliseconds
	SamplesPerS float64 `json:"samples_per_s"` // Batch / median step time
}

// Bench times training steps (forward, loss, backward, SGD update with
// learning rate 0.01 and momentum 0.9, as the PyTorch reference) of the
// reference models on random data and returns one result per model, in
// the order asked. It reports each model's steps to p and stops early with
// ctx's error when ctx is cancelled.
func Bench(ctx context.Context, cfg BenchConfig, p Progress) ([]BenchResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	var results []BenchResult
	for _, name := range cfg.Models {
		r, err := benchModel(ctx, cfg, name, p)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	return results, nil
}

func benchModel(ctx context.Context, cfg BenchConfig, name string, p Progress) (BenchResult, error) {
	rng, _ := nn.NewRNG(cfg.Seed)
	model, batch, err := pretext.NewReference(name, pretext.EncoderConfig{Channels: cfg.Channels}, cfg.Batch, cfg.Size, rng)
	if err != nil {
		return BenchResult{}, err
	}
	params := model.Params()
	opt := nn.NewSGD(params, 0.9, 0, false)
	step := func() {
		nn.ZeroGrads(params)
		model.Step(batch, true)
		opt.Step(0.01)
	}
	p.Start("bench "+name, cfg.Warmup+cfg.Steps)
	defer p.Done()
	times := make([]float64, 0, cfg.Steps)
	for i := 0; i < cfg.Warmup+cfg.Steps; i++ {
		if err := ctx.Err(); err != nil {
			return BenchResult{}, err
		}
		t0 := time.Now()
		step()
		if i >= cfg.Warmup {
			times = append(times, time.Since(t0).Seconds())
		}
		p.Add(1)
	}
	med := median(times)
	return BenchResult{
		Model: name, Impl: "patchwise " + runtime.Version(), Device: "cpu", Threads: runtime.GOMAXPROCS(0),
		Batch: cfg.Batch, Size: cfg.Size, Channels: cfg.Channels,
		StepMS:      round3(med * 1e3),
		SamplesPerS: round1(float64(cfg.Batch) / med),
	}, nil
}

// median returns the median of xs (the mean of the middle two for an even
// count). It sorts xs.
func median(xs []float64) float64 {
	sort.Float64s(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }
func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
