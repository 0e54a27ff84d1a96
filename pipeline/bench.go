package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"time"

	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/nn/kernel"
	"github.com/patchwise-ml/patchwise/pretext"
)

// EncoderForward names the forward-only benchmark: features of a batch from
// the reference encoder in evaluation mode, as a probe extracts them.
const EncoderForward = "encoder_forward"

// BenchResNet18 names the ResNet-18 benchmark: the classifier (Linear to
// 10 classes) on a ResNet-18 encoder with the ImageNet stem (torchvision's
// resnet18 at width 1), trained as the reference models are. bench/compare
// times it on 64×64 images in batches of 64.
const BenchResNet18 = "resnet18"

// BenchModels are the models Bench knows: the reference training models,
// EncoderForward and BenchResNet18.
var BenchModels = append(slices.Clone(pretext.ReferenceModels), EncoderForward, BenchResNet18)

// BenchConfig selects what Bench times. Its zero value means the defaults
// documented on each field.
type BenchConfig struct {
	Models   []string // models to time (see BenchModels); default the reference training models
	Batch    int      // images (pairs for relpos) per step; default 128
	Size     int      // image side in pixels; default 32
	Channels int      // image channels, 1 or 3; default 3
	Steps    int      // timed steps; default 20
	Warmup   int      // untimed steps before timing; default 5, negative for none
	Seed     uint64   // seed for weights and random inputs
	// Width is the width multiplier of BenchResNet18's stages (64·Width,
	// …, 512·Width channels); default 1.
	Width float64
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
	if c.Width == 0 {
		c.Width = 1
	}
	return c
}

// Validate reports every problem with the configuration at once.
func (c BenchConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	for _, m := range c.Models {
		if !slices.Contains(BenchModels, m) {
			errs = append(errs, fmt.Errorf("pipeline: bench: unknown model %q (known: %v)", m, BenchModels))
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
	if slices.Contains(c.Models, BenchResNet18) {
		res := benchResNet(c)
		if err := res.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("pipeline: bench: %s: %w", BenchResNet18, err))
		} else if c.Size < res.MinSize() {
			errs = append(errs, fmt.Errorf("pipeline: bench: size must be at least %d for %s, got %d", res.MinSize(), BenchResNet18, c.Size))
		}
	}
	return errors.Join(errs...)
}

// BenchResult is one model's training throughput. Field names and meanings
// match bench/torch_ref.py so the two can be compared side by side.
type BenchResult struct {
	Model       string  `json:"model"`
	Impl        string  `json:"impl"`
	Device      string  `json:"device"`
	Threads     int     `json:"threads"`
	Batch       int     `json:"batch"`
	Size        int     `json:"size"`
	Channels    int     `json:"channels"`
	StepMS      float64 `json:"step_ms"`               // median wall time of one training step, milliseconds
	SamplesPerS float64 `json:"samples_per_s"`         // Batch / median step time
	Width       float64 `json:"width,omitempty"`       // BenchResNet18's width multiplier; 0 for the other models
	PeakRSSMB   float64 `json:"peak_rss_mb,omitempty"` // the process's peak resident memory while this model ran, MiB (Linux)
	Path        string  `json:"kernel_path,omitempty"` // the instruction-set path of the kernels (kernel.Path)
}

// Bench times steps of the models on random data (see benchStep) and
// returns one result per model, in the order asked. It reports each
// model's steps to p and stops early with ctx's error when ctx is
// cancelled.
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
	// Free the previous model's memory and restart the peak, so that each
	// model's peak is its own.
	runtime.GC()
	debug.FreeOSMemory()
	measureRSS := resetPeakRSS()
	step, err := benchStep(cfg, name)
	if err != nil {
		return BenchResult{}, err
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
	r := BenchResult{
		Model: name, Impl: "patchwise " + runtime.Version(), Device: "cpu", Threads: runtime.GOMAXPROCS(0), Path: kernel.Path(),
		Batch: cfg.Batch, Size: cfg.Size, Channels: cfg.Channels,
		StepMS:      round3(med * 1e3),
		SamplesPerS: round1(float64(cfg.Batch) / med),
	}
	if name == BenchResNet18 {
		r.Width = cfg.Width
	}
	if measureRSS {
		r.PeakRSSMB = round1(peakRSSMB())
	}
	return r, nil
}

// benchStep builds the named model on random data and returns one step of
// it: for the training models forward, loss, backward and an SGD update
// (learning rate 0.01, momentum 0.9, as the PyTorch reference); for
// EncoderForward the encoder's features in evaluation mode.
func benchStep(cfg BenchConfig, name string) (func(), error) {
	rng, _ := nn.NewRNG(cfg.Seed)
	enc := pretext.EncoderConfig{Channels: cfg.Channels}
	if name == EncoderForward {
		e := pretext.NewEncoder("encoder", enc, rng)
		x := nn.NewTensor(cfg.Batch, cfg.Size, cfg.Size, cfg.Channels)
		for i := range x.Data {
			x.Data[i] = float32(rng.NormFloat64())
		}
		return func() { e.Features(x) }, nil
	}
	ref := name
	if name == BenchResNet18 {
		ref, enc = "classifier", benchResNet(cfg)
	}
	model, batch, err := pretext.NewReference(ref, enc, cfg.Batch, cfg.Size, rng)
	if err != nil {
		return nil, err
	}
	params := model.Params()
	opt := nn.NewSGD(params, 0.9, 0, false)
	return func() {
		nn.ZeroGrads(params)
		model.Step(batch, true)
		opt.Step(0.01)
	}, nil
}

// benchResNet is the encoder of BenchResNet18 for cfg.
func benchResNet(cfg BenchConfig) pretext.EncoderConfig {
	return pretext.EncoderConfig{Channels: cfg.Channels, Arch: pretext.ArchResNet18, Stem: pretext.StemImageNet, Width: cfg.Width}
}

// GemmResult is the speed of kernel.Gemm at one of kernel.BenchShapes.
type GemmResult struct {
	Shape   string  `json:"gemm"`
	M       int     `json:"m"`
	N       int     `json:"n"`
	K       int     `json:"k"`
	TransA  bool    `json:"trans_a"`
	TransB  bool    `json:"trans_b"`
	Kernel  string  `json:"kernel"`  // the micro-kernel in use
	Threads int     `json:"threads"` // GOMAXPROCS
	GFlops  float64 `json:"gflops"`  // 2·M·N·K per product, median over reps
}

// BenchGemm times kernel.Gemm at each of kernel.BenchShapes, reps
// products after one untimed, and reports the median GFLOP/s.
func BenchGemm(ctx context.Context, reps int, p Progress) ([]GemmResult, error) {
	reps = max(reps, 1)
	p.Start("bench gemm", len(kernel.BenchShapes))
	defer p.Done()
	rng, _ := nn.NewRNG(1)
	var out []GemmResult
	for _, s := range kernel.BenchShapes {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		fill := func(n int) []float32 {
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(rng.NormFloat64())
			}
			return v
		}
		a, b, c := fill(s.M*s.K), fill(s.K*s.N), make([]float32, s.M*s.N)
		lda, ldb := s.Strides()
		times := make([]float64, 0, reps)
		for i := 0; i <= reps; i++ {
			t0 := time.Now()
			kernel.Gemm(s.TransA, s.TransB, s.M, s.N, s.K, 1, a, lda, b, ldb, 0, c, s.N)
			if i > 0 {
				times = append(times, time.Since(t0).Seconds())
			}
		}
		out = append(out, GemmResult{Shape: s.Name, M: s.M, N: s.N, K: s.K, TransA: s.TransA, TransB: s.TransB,
			Kernel: kernel.KernelNames()[0], Threads: runtime.GOMAXPROCS(0), GFlops: round1(s.Flops() / median(times) / 1e9)})
		p.Add(1)
	}
	return out, nil
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
