package pretext

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/nn"
)

// tinyConfig is a small encoder (widths 4, 8) on 8×8 grey images.
func tinyConfig() Config {
	return Config{Encoder: EncoderConfig{Channels: 1, Widths: []int{4, 8}}, Size: 8, Classes: 3, Hidden: 16}
}

// randImages returns n size×size×c images from N(0, 1).
func randImages(rng *rand.Rand, n, size, c int) *nn.Tensor {
	t := nn.NewTensor(n, size, size, c)
	for i := range t.Data {
		t.Data[i] = float32(rng.NormFloat64())
	}
	return t
}

// tinySide is the side of the images tiny batches are drawn from.
const tinySide = 16

// tinyBatch returns a batch of n samples of the pretext name: the
// pretext's training sampler drawn from random tinySide×tinySide images
// with random classes.
func tinyBatch(name string, cfg Config, n int, rng *rand.Rand) Batch {
	return sampledBatch(name, cfg, n, tinySide, rng)
}

// sampledBatch is tinyBatch from side×side images.
func sampledBatch(name string, cfg Config, n, side int, rng *rand.Rand) Batch {
	spec, err := Lookup(name)
	if err != nil {
		panic(err)
	}
	c := cfg.Encoder.withDefaults().Channels
	cfg, err = spec.Resolve(cfg, side, c)
	if err != nil {
		panic(err)
	}
	s, err := spec.Sampler(cfg, side, c, true)
	if err != nil {
		panic(err)
	}
	d := s.NewDrawer()
	views := s.Views()
	data := make([][]float32, len(views))
	labels := make([]int, n*s.Labels())
	for i := range n {
		pix := make([]uint8, side*side*c)
		for k := range pix {
			pix[k] = uint8(rng.IntN(256))
		}
		smp := augment.Sample{Views: make([][]float32, len(views)), Labels: labels[i*s.Labels() : (i+1)*s.Labels()]}
		for k, v := range views {
			smp.Views[k] = make([]float32, v.Len(c))
		}
		img := augment.Image{Pix: pix, Side: side, C: c, Label: rng.IntN(max(cfg.Classes, 1))}
		if err := d.Draw(img, rng, smp); err != nil {
			panic(err)
		}
		for k := range views {
			data[k] = append(data[k], smp.Views[k]...)
		}
	}
	b := Batch{Labels: labels, Seed: 7}
	for k, v := range views {
		b.Views = append(b.Views, nn.FromData(data[k], n*v.Count, v.Side, v.Side, c))
	}
	return b
}

// mustNew builds the pretext name's model for tinySide images.
func mustNew(t *testing.T, name string, cfg Config, seed uint64) Model {
	t.Helper()
	spec, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = spec.Resolve(cfg, tinySide, cfg.Encoder.withDefaults().Channels)
	if err != nil {
		t.Fatal(err)
	}
	rng, _ := nn.NewRNG(seed)
	m, err := spec.New(cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func names(ps []*nn.Param) []string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Name)
	}
	return s
}

func TestNewBuildsEveryModel(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			m := mustNew(t, name, tinyConfig(), 1)
			if m.Encoder() == nil {
				t.Fatal("Encoder: nil")
			}
			all := append(m.Params(), m.Buffers()...)
			seen := map[string]bool{}
			for _, n := range names(all) {
				if seen[n] {
					t.Errorf("name %q listed twice", n)
				}
				seen[n] = true
			}
			if len(nn.Unique(all)) != len(all) {
				t.Error("a parameter is listed twice")
			}
			for _, p := range m.Params() {
				if p.Grad == nil {
					t.Errorf("parameter %s has no gradient", p.Name)
				}
			}
			// Stable: another build, from another seed, names the same.
			again := mustNew(t, name, tinyConfig(), 2)
			if a, b := names(m.Params()), names(again.Params()); !slices.Equal(a, b) {
				t.Errorf("parameter names differ between builds:\n%v\n%v", a, b)
			}
			// The encoder's parameters are the model's.
			for _, p := range m.Encoder().Params() {
				if !slices.Contains(m.Params(), p) {
					t.Errorf("encoder parameter %s is not among the model's", p.Name)
				}
			}
			// Every model runs a training and an evaluation step.
			b := tinyBatch(name, tinyConfig(), 4, rand.New(rand.NewPCG(1, 2)))
			for _, train := range []bool{true, false} {
				if l := m.Step(b, train).Loss; math.IsNaN(l) || l <= 0 {
					t.Errorf("Step(train=%v): loss %v", train, l)
				}
			}
		})
	}
}

func TestParamNamesGolden(t *testing.T) {
	for _, tc := range []struct {
		name            string
		params, buffers []string
	}{
		{"ae-tied", []string{
			"encoder.block1.conv.weight", "encoder.block1.bn.weight", "encoder.block1.bn.bias",
			"encoder.block2.conv.weight", "encoder.block2.bn.weight", "encoder.block2.bn.bias",
			"decoder.block1.bn.weight", "decoder.block1.bn.bias", "decoder.out.bias",
		}, []string{
			"encoder.block1.bn.running_mean", "encoder.block1.bn.running_var",
			"encoder.block2.bn.running_mean", "encoder.block2.bn.running_var",
			"decoder.block1.bn.running_mean", "decoder.block1.bn.running_var",
		}},
		{"ae-linear", []string{
			"encoder.block1.conv.weight", "encoder.block1.bn.weight", "encoder.block1.bn.bias",
			"encoder.block2.conv.weight", "encoder.block2.bn.weight", "encoder.block2.bn.bias",
			"decoder.fc.weight", "decoder.fc.bias",
		}, []string{
			"encoder.block1.bn.running_mean", "encoder.block1.bn.running_var",
			"encoder.block2.bn.running_mean", "encoder.block2.bn.running_var",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, prefix := range []string{"", "d"} {
				m := mustNew(t, prefix+tc.name, tinyConfig(), 1)
				if got := names(m.Params()); !slices.Equal(got, tc.params) {
					t.Errorf("%s params:\n got %q\nwant %q", prefix+tc.name, got, tc.params)
				}
				want := slices.Clone(tc.buffers)
				if prefix == "d" { // then the statistics of corrupted inputs
					for _, b := range tc.buffers {
						want = append(want, "corrupted."+b)
					}
				}
				if got := names(m.Buffers()); !slices.Equal(got, want) {
					t.Errorf("%s buffers:\n got %q\nwant %q", prefix+tc.name, got, want)
				}
			}
		})
	}
}

// TestStepLearns trains each model on one fixed batch and requires the
// loss to fall.
func TestStepLearns(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			cfg := tinyConfig()
			m := mustNew(t, name, cfg, 1)
			b := tinyBatch(name, cfg, 4, rand.New(rand.NewPCG(3, 4)))
			params := m.Params()
			opt := nn.NewSGD(params, 0.9, 0, false)
			var first, last float64
			for step := 0; step < 30; step++ {
				nn.ZeroGrads(params)
				last = m.Step(b, true).Loss
				if step == 0 {
					first = last
				}
				opt.Step(0.02)
			}
			t.Logf("loss %.4f → %.4f", first, last)
			if !(last < 0.7*first) {
				t.Errorf("loss %.4f → %.4f after 30 steps, want below 70 %% of the start", first, last)
			}
		})
	}
}

func TestEvalStepKeepsState(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			m := mustNew(t, name, tinyConfig(), 1)
			b := tinyBatch(name, tinyConfig(), 4, rand.New(rand.NewPCG(5, 6)))
			m.Step(b, true) // running statistics away from their start
			state := append(m.Params(), m.Buffers()...)
			var before [][]float32
			for _, p := range state {
				before = append(before, slices.Clone(p.Value.Data))
			}
			l1 := m.Step(b, false).Loss
			l2 := m.Step(b, false).Loss
			for i, p := range state {
				if !slices.Equal(before[i], p.Value.Data) {
					t.Errorf("evaluation step changed %s", p.Name)
				}
			}
			if l1 != l2 {
				t.Errorf("evaluation losses %v then %v", l1, l2)
			}
		})
	}
}

func TestTiedAESharesEncoderWeights(t *testing.T) {
	for _, widths := range [][]int{{4}, {4, 8}, {4, 8, 6}} {
		rng, _ := nn.NewRNG(1)
		m := NewTiedAE(EncoderConfig{Channels: 3, Widths: widths}, rng)
		var tied []*nn.UpsampleConv2D
		for _, l := range m.Decoder.Layers {
			if ct, ok := l.(*nn.UpsampleConv2D); ok {
				tied = append(tied, ct)
			}
		}
		if len(tied) != len(widths) {
			t.Fatalf("widths %v: %d transposed convolutions", widths, len(tied))
		}
		for i, ct := range tied {
			conv := m.Encoder().Blocks[len(widths)-1-i].Layers[0].(*nn.Conv2D)
			if ct.Weight != conv.Weight {
				t.Errorf("widths %v: decoder step %d does not share %s", widths, i+1, conv.Weight.Name)
			}
			if ct.InC != conv.OutC || ct.OutC != conv.InC {
				t.Errorf("widths %v: decoder step %d maps %d→%d, want %d→%d", widths, i+1, ct.InC, ct.OutC, conv.OutC, conv.InC)
			}
			n := 0
			for _, p := range m.Params() {
				if p == conv.Weight {
					n++
				}
			}
			if n != 1 {
				t.Errorf("widths %v: %s listed %d times in Params", widths, conv.Weight.Name, n)
			}
		}
		x := randImages(rng, 2, 16, 3)
		if y := m.Reconstruct(x, true); !slices.Equal(y.Shape, x.Shape) {
			t.Errorf("widths %v: reconstruction %v of input %v", widths, y.Shape, x.Shape)
		}
	}
}

// TestGradients compares Param.Grad with central differences of the
// training loss, in float64, on the element of largest gradient of each
// listed parameter: for the tied autoencoder the shared kernels collect
// both the encoder's and the decoder's contributions. A step of h = 1e-2
// can cross a kink of a ReLU or a max pool's choice, which spoils the
// difference quotient (measured over other seeds: up to 16 % off at 1e-2,
// under 0.5 % at 1e-3; the denoising model's first layer, behind the noise,
// 2.7 % at 1e-3 and 1.1 % at 3e-4), so a miss is retried at smaller steps
// and only a miss at all three fails; a wrong gradient misses at every step
// size, where a kink's error shrinks with the step.
func TestGradients(t *testing.T) {
	const tol = 2e-2
	for _, tc := range []struct {
		name   string
		params []string
	}{
		{"ae-tied", []string{"encoder.block1.conv.weight", "encoder.block2.conv.weight", "decoder.block1.bn.weight", "decoder.out.bias"}},
		{"ae-linear", []string{"encoder.block1.conv.weight", "encoder.block2.bn.bias", "decoder.fc.weight"}},
		{"rotation", []string{"encoder.block1.conv.weight", "encoder.block2.bn.weight", "head.weight", "head.bias"}},
		{"inpaint", []string{"encoder.block1.conv.weight", "encoder.block2.conv.weight", "decoder.block1.conv.weight", "decoder.block2.bn.bias", "decoder.out.weight"}},
		{"jigsaw", []string{"encoder.block1.conv.weight", "encoder.block2.bn.weight", "head.fc1.weight", "head.fc1.bias", "head.fc2.weight", "head.fc2.bias"}},
		{"simclr", []string{"encoder.block1.conv.weight", "encoder.block2.bn.weight", "head.fc1.weight", "head.fc2.bias"}},
		// The denoising step runs a clean forward pass before the
		// corrupted one it differentiates.
		{"dae-mirrored", []string{"encoder.block1.conv.weight", "encoder.block2.bn.weight", "decoder.block1.conv.weight", "decoder.out.bias"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tinyConfig()
			m := mustNew(t, tc.name, cfg, 11)
			b := tinyBatch(tc.name, cfg, 4, rand.New(rand.NewPCG(7, 8)))
			params := m.Params()
			nn.ZeroGrads(params)
			m.Step(b, true)
			byName := map[string]*nn.Param{}
			grads := map[string][]float32{}
			for _, p := range params {
				byName[p.Name] = p
				grads[p.Name] = slices.Clone(p.Grad.Data)
			}
			loss := func() float64 { return m.Step(b, true).Loss } // grads ignored
			for _, pn := range tc.params {
				p := byName[pn]
				g := grads[pn]
				k := 0
				for i := range g {
					if math.Abs(float64(g[i])) > math.Abs(float64(g[k])) {
						k = i
					}
				}
				w, an := p.Value.Data[k], float64(g[k])
				var fd, rel float64
				for _, h := range []float64{1e-2, 1e-3, 3e-4} {
					p.Value.Data[k] = float32(float64(w) + h)
					lp := loss()
					p.Value.Data[k] = float32(float64(w) - h)
					lm := loss()
					p.Value.Data[k] = w
					fd = (lp - lm) / (2 * h)
					rel = math.Abs(fd-an) / math.Max(math.Abs(fd), math.Abs(an))
					t.Logf("%s[%d], h %g: analytic %.6g, numeric %.6g, relative error %.2g", pn, k, h, an, fd, rel)
					if rel <= tol {
						break
					}
				}
				if !(rel <= tol) {
					t.Errorf("%s[%d]: analytic %.6g, numeric %.6g: relative error %.2g > %g", pn, k, an, fd, rel, tol)
				}
			}
		})
	}
}

func TestResolve(t *testing.T) {
	ok := tinyConfig()
	with := func(f func(*Config)) Config {
		c := tinyConfig()
		f(&c)
		return c
	}
	for _, tc := range []struct {
		desc, name string
		cfg        Config
		want       []string // substrings of the error, one per problem; none: valid
	}{
		{"relpos", "relpos", ok, nil},
		{"supervised", "supervised", ok, nil},
		{"every name at the minimum size", "ae-linear", with(func(c *Config) { c.Size = 4 }), nil},
		{"linear decoder at an odd size", "dae-linear", with(func(c *Config) { c.Size = 9 }), nil},
		{"default hidden", "relpos", with(func(c *Config) { c.Hidden = 0 }), nil},
		{"default size", "relpos", with(func(c *Config) { c.Size = 0 }), nil},
		{"mask corruption", "dae-tied", with(func(c *Config) { c.Corruption = Corruption{Kind: "mask", MaskFraction: 0.5, MaskSize: 2} }), nil},
		{"negative size", "relpos", with(func(c *Config) { c.Size = -1 }), []string{"input size -1 is negative"}},
		{"too small", "supervised", with(func(c *Config) { c.Size = 3 }), []string{"input size 3 is too small for an encoder of 2 blocks: need at least 4"}},
		{"too small for the default depth", "relpos", with(func(c *Config) { c.Encoder.Widths = nil }), []string{"need at least 16"}},
		{"mirrored size", "ae-mirrored", with(func(c *Config) { c.Size = 10 }), []string{"multiples of 4"}},
		{"tied size", "dae-tied", with(func(c *Config) { c.Size = 6 }), []string{"multiples of 4"}},
		{"classes", "supervised", with(func(c *Config) { c.Classes = 1 }), []string{"at least 2 classes, got 1"}},
		{"classes unused", "relpos", with(func(c *Config) { c.Classes = 0 }), nil},
		{"hidden", "relpos", with(func(c *Config) { c.Hidden = -1 }), []string{"hidden width -1"}},
		{"geometry", "relpos", with(func(c *Config) { c.Pairs.Patch = 10 }), []string{"largest patch that fits"}},
		{"pair size", "relpos", with(func(c *Config) { c.PairSize = 4 }), nil},
		{"negative pair size", "relpos", with(func(c *Config) { c.PairSize = -2 }), []string{"pair size -2 is negative"}},
		{"pair size too small", "relpos", with(func(c *Config) { c.PairSize = 3 }), []string{"pair size 3 is too small for an encoder of 2 blocks: need at least 4"}},
		{"corruption", "dae-mirrored", with(func(c *Config) {
			c.Corruption = Corruption{Kind: "blur", Std: -1, MaskFraction: 1.5, MaskSize: 9}
		}), []string{`kind "blur"`, "std -1", "mask fraction 1.5", "mask size 9 exceeds the image side 8"}},
		{"corruption unused", "ae-mirrored", with(func(c *Config) { c.Corruption.Kind = "blur" }), nil},
		{"channels", "relpos", with(func(c *Config) { c.Encoder.Channels = 3 }), []string{"encoder channels 3, but the images have 1"}},
		{"every problem at once", "supervised", with(func(c *Config) {
			c.Size, c.Classes = 2, 0
		}), []string{"input size 2 is too small", "at least 2 classes"}},
		{"a bad encoder", "supervised", with(func(c *Config) { c.Encoder.Widths = []int{4, 0} }), []string{"width 0 of block 2"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			spec, err := Lookup(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			got, err := spec.Resolve(tc.cfg, tinySide, 1)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got.Size < 1 || got.Encoder.Channels != 1 {
					t.Errorf("resolved %+v", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if got := strings.Count(err.Error(), "\n") + 1; got != len(tc.want) {
				t.Errorf("%d problems reported, want %d: %v", got, len(tc.want), err)
			}
		})
	}
	if _, err := Lookup("nope"); !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), `unknown pretext "nope" (known: relpos, `) {
		t.Errorf("unknown name: %v", err)
	}
}

// TestRegistry checks the registered specs: every one builds, its metrics
// have keys and titles, the default comparison is a subset in order.
func TestRegistry(t *testing.T) {
	names := Names()
	if len(names) < 8 || names[0] != "relpos" {
		t.Fatalf("Names() = %v", names)
	}
	def := DefaultNames()
	if !slices.Contains(def, "relpos") || slices.Contains(def, "dae-mirrored") {
		t.Errorf("DefaultNames() = %v", def)
	}
	for _, name := range names {
		spec, _ := Lookup(name)
		if spec.Summary == "" || spec.Reference == "" {
			t.Errorf("%s: no summary or reference", name)
		}
		for _, m := range spec.Metrics {
			if m.Key == "" || m.Title == "" {
				t.Errorf("%s: metric %+v", name, m)
			}
		}
	}
	for _, bad := range []Spec{{}, {Name: "x"}, relposSpec} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) did not panic", bad.Name)
				}
			}()
			Register(bad)
		}()
	}
}

// TestTiedAEInitScale checks the scale of the shared kernels at the start:
// the encoder computes what an encoder drawn from the same seed does, and
// the reconstruction of images in [0, 1] starts near their scale (with the
// encoder's own scale, the reference model's outputs had an RMS of 6.6).
func TestTiedAEInitScale(t *testing.T) {
	cfg := EncoderConfig{Channels: 1}
	r1, _ := nn.NewRNG(5)
	r2, _ := nn.NewRNG(5)
	m, e := NewTiedAE(cfg, r1), NewEncoder("encoder", cfg, r2)
	x := nn.NewTensor(4, 32, 32, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range x.Data {
		x.Data[i] = float32(rng.Float64())
	}
	want := e.Forward(x, true)
	got := m.Encoder().Forward(x, true)
	var d, s float64
	for i, v := range got.Data {
		d += math.Abs(float64(v - want.Data[i]))
		s += math.Abs(float64(want.Data[i]))
	}
	if d > 1e-3*s {
		t.Errorf("the tied encoder's output differs from the plain one's by %.3g of its L1 norm", d/s)
	}
	y := m.Reconstruct(x, true)
	var sq float64
	for _, v := range y.Data {
		sq += float64(v) * float64(v)
	}
	if rms := math.Sqrt(sq / float64(y.Len())); rms > 2 {
		t.Errorf("initial reconstruction RMS %.2f, want at most 2", rms)
	} else {
		t.Logf("initial reconstruction RMS %.2f", rms)
	}
}

// TestRelposPairSize checks the rule for the side relpos feeds its crops
// at: their own where they are at least the encoder's least side, the
// whole image's input side where they are smaller, and a config that
// leaves the field at 0 marshals as before.
func TestRelposPairSize(t *testing.T) {
	spec, _ := Lookup("relpos")
	for _, tc := range []struct {
		side, ch       int
		cfg            Config
		pairSize, view int  // resolved PairSize, the sampler's view side
		photo          bool // the default transform is PhotoTransform
	}{
		{28, 1, Config{}, 0, 32, false},  // 6-px crops enlarged, as before
		{64, 3, Config{}, 0, 64, false},  // 14-px crops: below 16, enlarged
		{96, 3, Config{}, 21, 21, true},  // native
		{128, 3, Config{}, 28, 28, true}, // native
		{96, 3, Config{Pairs: augment.PairConfig{Patch: 24, Gap: 8, Jitter: 3}}, 24, 24, true}, // a given patch, native
		{96, 3, Config{PairSize: 64}, 64, 64, true},                                            // a given side is kept
		{96, 3, Config{Encoder: EncoderConfig{Widths: []int{8, 8, 8, 8, 8}}}, 0, 96, false},    // 21 < 32 for five blocks
	} {
		c, err := spec.Resolve(tc.cfg, tc.side, tc.ch)
		if err != nil {
			t.Fatalf("%d px %+v: %v", tc.side, tc.cfg, err)
		}
		s, err := spec.Sampler(c, tc.side, tc.ch, true)
		if err != nil {
			t.Fatal(err)
		}
		if v := s.Views(); c.PairSize != tc.pairSize || v[0].Side != tc.view || v[1].Side != tc.view {
			t.Errorf("%d px %+v: pair size %d, views %d; want %d, %d", tc.side, tc.cfg, c.PairSize, v[0].Side, tc.pairSize, tc.view)
		}
		want := augment.ModernDefaults()
		if tc.photo {
			want = PhotoTransform()
		}
		if *c.Transform != want {
			t.Errorf("%d px %+v: transform %+v, want %+v", tc.side, tc.cfg, *c.Transform, want)
		}
		b, _ := json.Marshal(c)
		if has := strings.Contains(string(b), "pair_size"); has != (tc.pairSize != 0) {
			t.Errorf("%d px: pair_size in the JSON is %v, want %v: %s", tc.side, has, tc.pairSize != 0, b)
		}
	}
	// A given transform is kept.
	given := augment.Transform{Color: augment.ColorDrop}
	if c, err := spec.Resolve(Config{Transform: &given}, 96, 3); err != nil || *c.Transform != given {
		t.Errorf("given transform: %+v, %v", c.Transform, err)
	}
}
