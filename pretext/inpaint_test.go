package pretext

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/nn"
)

func TestInpaintMask(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := randImages(rng, 5, 12, 3)
	clean := slices.Clone(x.Data)
	check := func(t *testing.T, in *nn.Tensor, mask []bool) {
		t.Helper()
		if !slices.Equal(x.Data, clean) {
			t.Fatal("Mask changed its input")
		}
		if !slices.Equal(in.Shape, x.Shape) || len(mask) != 5*12*12 {
			t.Fatalf("masked input %v, %d mask entries", in.Shape, len(mask))
		}
		for p, on := range mask {
			for k := range 3 {
				want := clean[p*3+k]
				if on {
					want = 0
				}
				if in.Data[p*3+k] != want {
					t.Fatalf("pixel %d channel %d (masked %v): %v, want %v", p, k, on, in.Data[p*3+k], want)
				}
			}
		}
	}

	t.Run("center", func(t *testing.T) {
		m := NewInpaint(EncoderConfig{Channels: 3, Widths: []int{4}}, InpaintConfig{}, rand.New(rand.NewPCG(1, 1)))
		if m.Config != (InpaintConfig{Mask: InpaintCenter, Size: 0.5}) {
			t.Errorf("resolved config %+v", m.Config)
		}
		in, mask := m.Mask(x, 1)
		check(t, in, mask)
		for i := range 5 {
			for y := range 12 {
				for xx := range 12 {
					want := y >= 3 && y < 9 && xx >= 3 && xx < 9
					if mask[(i*12+y)*12+xx] != want {
						t.Fatalf("image %d pixel (%d, %d): masked %v, want %v", i, xx, y, !want, want)
					}
				}
			}
		}
		first := slices.Clone(mask)
		if _, again := m.Mask(x, 2); !slices.Equal(again, first) {
			t.Error("the central mask depends on the seed")
		}
		// An odd margin: a 3 px square on 8 px sits at 2, as (8−3)/2.
		m = NewInpaint(EncoderConfig{Channels: 3, Widths: []int{4}}, InpaintConfig{Size: 3}, rand.New(rand.NewPCG(1, 1)))
		_, mask = m.Mask(randImages(rng, 1, 8, 3), 1)
		for p, on := range mask {
			if y, xx := p/8, p%8; on != (y >= 2 && y < 5 && xx >= 2 && xx < 5) {
				t.Fatalf("3 px on 8: pixel (%d, %d) masked %v", xx, y, on)
			}
		}
	})

	t.Run("blocks", func(t *testing.T) {
		cfg := InpaintConfig{Mask: InpaintBlocks, Size: 4, Blocks: 3}
		a := NewInpaint(EncoderConfig{Channels: 3, Widths: []int{4}}, cfg, rand.New(rand.NewPCG(1, 1)))
		b := NewInpaint(EncoderConfig{Channels: 3, Widths: []int{4}}, cfg, rand.New(rand.NewPCG(2, 2)))
		in, mask := a.Mask(x, 42)
		check(t, in, mask)
		m42, in42 := slices.Clone(mask), slices.Clone(in.Data)
		if _, m := b.Mask(x, 42); !slices.Equal(m, m42) {
			t.Error("two models mask differently for the same seed")
		}
		a.Mask(x, 43)
		if in, m := a.Mask(x, 42); !slices.Equal(m, m42) || !slices.Equal(in.Data, in42) {
			t.Error("the same seed masks differently the second time")
		}
		if _, m := a.Mask(x, 43); slices.Equal(m, m42) {
			t.Error("seeds 42 and 43 mask alike")
		}
		// Each image: between one block's pixels and three's, in squares
		// of 4 (every masked pixel has its 4×4 block inside the image),
		// and not all images alike.
		alike := true
		for i := range 5 {
			img := m42[i*144 : (i+1)*144]
			n := 0
			for _, on := range img {
				if on {
					n++
				}
			}
			if n < 16 || n > 48 {
				t.Errorf("image %d: %d masked pixels, want 16 to 48", i, n)
			}
			if !slices.Equal(img, m42[:144]) {
				alike = false
			}
		}
		if alike {
			t.Error("every image has the same blocks")
		}
		if n := testing.AllocsPerRun(5, func() { a.Mask(x, 44) }); n != 0 {
			t.Errorf("Mask allocates %v times per call", n)
		}
	})

	for _, tc := range []struct {
		name string
		cfg  InpaintConfig
		x    *nn.Tensor
	}{
		{"whole image", InpaintConfig{Size: 12}, x},
		{"rank 3", InpaintConfig{}, nn.NewTensor(2, 8, 8)},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			NewInpaint(EncoderConfig{Channels: 3, Widths: []int{4}}, tc.cfg, rand.New(rand.NewPCG(1, 1))).Mask(tc.x, 1)
		}()
	}
}

// TestMaskedMSE checks the loss against its definition and its gradient
// against central differences.
func TestMaskedMSE(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pred, target := randImages(rng, 2, 3, 2), randImages(rng, 2, 3, 2)
	mask := make([]bool, 2*3*3)
	for i := range mask {
		mask[i] = rng.IntN(3) == 0
	}
	mask[0], mask[1] = true, false
	var l maskedMSE
	loss := l.Forward(pred, target, mask)
	var s float64
	n := 0
	for p, on := range mask {
		for k := range 2 {
			if on {
				d := float64(pred.Data[p*2+k] - target.Data[p*2+k])
				s += d * d
				n++
			}
		}
	}
	if math.Abs(loss-s/float64(n)) > 1e-12 {
		t.Errorf("loss %v, want %v", loss, s/float64(n))
	}
	grad := slices.Clone(l.Backward().Data)
	const h = 1e-2
	for i := range pred.Data {
		v := pred.Data[i]
		pred.Data[i] = v + h
		lp := l.Forward(pred, target, mask)
		pred.Data[i] = v - h
		lm := l.Forward(pred, target, mask)
		pred.Data[i] = v
		fd := (lp - lm) / (2 * h)
		if math.Abs(fd-float64(grad[i])) > 1e-4*math.Max(1, math.Abs(fd)) {
			t.Errorf("value %d (masked %v): gradient %v, numeric %v", i, mask[i/2], grad[i], fd)
		}
		if !mask[i/2] && grad[i] != 0 {
			t.Errorf("unmasked value %d has gradient %v", i, grad[i])
		}
	}
	if got := l.Forward(pred, target, make([]bool, len(mask))); got != 0 {
		t.Errorf("loss %v with nothing masked", got)
	}
	if g := l.Backward(); slices.ContainsFunc(g.Data, func(v float32) bool { return v != 0 }) {
		t.Error("gradient with nothing masked")
	}
	defer func() {
		if recover() == nil {
			t.Error("a mask of the wrong length: no panic")
		}
	}()
	l.Forward(pred, target, mask[:5])
}

func TestInpaintStep(t *testing.T) {
	cfg := tinyConfig()
	b := tinyBatch("inpaint", cfg, 4, rand.New(rand.NewPCG(5, 6)))
	x := b.Views[0]
	mean := make([]float32, 8*8)
	for i := range mean {
		mean[i] = 0.3 + 0.01*float32(i%5)
	}
	m := mustNew(t, "inpaint", cfg, 1).(*Inpaint)
	m.mean = mean
	m.Step(b, true) // running statistics away from their start
	ev := m.Step(b, false)
	if ev.Values["mse"] != ev.Loss {
		t.Errorf("mse %v, loss %v", ev.Values["mse"], ev.Loss)
	}
	_, mask := m.Mask(x, b.Seed)
	want := 0.0
	n := 0
	for p, on := range mask {
		if on {
			d := float64(x.Data[p] - mean[p%64])
			want += d * d
			n++
		}
	}
	if n != 4*16 || math.Abs(ev.Values["mse_mean_patch"]-want/float64(n)) > 1e-9 {
		t.Errorf("mse_mean_patch %v over %d pixels, want %v over 64", ev.Values["mse_mean_patch"], n, want/float64(n))
	}
	if tr := m.Step(b, true); tr.Values != nil {
		t.Errorf("a training step reports %v", tr.Values)
	}
	m.mean = nil
	if _, ok := m.Step(b, false).Values["mse_mean_patch"]; ok {
		t.Error("a baseline without a mean image")
	}

	// The model cannot see the masked pixels: changing them changes the
	// loss, not the reconstruction; changing a visible one changes it.
	in, _ := m.Mask(x, b.Seed)
	before := slices.Clone(m.Reconstruct(in, false).Data)
	lossBefore := m.Step(b, false).Loss
	hidden := slices.Index(mask, true)
	x.Data[hidden] += 0.5
	in, _ = m.Mask(x, b.Seed)
	if after := m.Reconstruct(in, false).Data; !slices.Equal(after, before) {
		t.Error("a masked pixel reached the reconstruction")
	}
	if m.Step(b, false).Loss == lossBefore {
		t.Error("a masked pixel's target does not count")
	}
	x.Data[slices.Index(mask, false)] += 0.5
	in, _ = m.Mask(x, b.Seed)
	if after := m.Reconstruct(in, false).Data; slices.Equal(after, before) {
		t.Error("a visible pixel does not reach the reconstruction")
	}
}

func TestInpaintResolve(t *testing.T) {
	spec, err := Lookup("inpaint")
	if err != nil {
		t.Fatal(err)
	}
	if i, j := slices.Index(Names(), "inpaint"), slices.Index(Names(), "ae-mirrored"); i < 0 || i > j {
		t.Errorf("inpaint is not before the autoencoders: %v", Names())
	}
	if !spec.MeanImage || len(spec.Metrics) != 2 || spec.Metrics[0].Baseline != spec.Metrics[1].Key {
		t.Errorf("spec %+v", spec)
	}
	with := func(ic InpaintConfig, size int) Config {
		c := tinyConfig()
		c.Inpaint, c.Size = ic, size
		return c
	}
	for _, tc := range []struct {
		desc string
		cfg  Config
		want []string // one per problem; none: valid, resolved to wantCfg
		res  InpaintConfig
	}{
		{"defaults", with(InpaintConfig{}, 8), nil, InpaintConfig{Mask: InpaintCenter, Size: 0.5}},
		{"blocks defaults", with(InpaintConfig{Mask: InpaintBlocks}, 8), nil, InpaintConfig{Mask: InpaintBlocks, Size: 0.25, Blocks: 4}},
		{"pixels", with(InpaintConfig{Mask: InpaintBlocks, Size: 7, Blocks: 1}, 8), nil, InpaintConfig{Mask: InpaintBlocks, Size: 7, Blocks: 1}},
		{"kind", with(InpaintConfig{Mask: "ring"}, 8), []string{`mask "ring"`}, InpaintConfig{}},
		{"whole image", with(InpaintConfig{Size: 8}, 8), []string{"mask size 8 is 8 px: want 1 to 7 px on 8×8 inputs"}, InpaintConfig{}},
		{"rounds to nothing", with(InpaintConfig{Size: 0.01}, 8), []string{"is 0 px"}, InpaintConfig{}},
		{"not a number", with(InpaintConfig{Size: -1, Blocks: -2}, 8), []string{"mask size -1", "-2 blocks"}, InpaintConfig{}},
		{"side", with(InpaintConfig{}, 10), []string{"multiples of 4"}, InpaintConfig{}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := spec.Resolve(tc.cfg, tinySide, 1)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if got.Inpaint != tc.res {
					t.Errorf("resolved %+v, want %+v", got.Inpaint, tc.res)
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
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tc.want) {
				t.Errorf("%d problems reported, want %d: %v", n, len(tc.want), err)
			}
		})
	}
	// Another pretext ignores the inpainting settings.
	rel, _ := Lookup("relpos")
	if _, err := rel.Resolve(with(InpaintConfig{Mask: "ring"}, 8), tinySide, 1); err != nil {
		t.Errorf("relpos refuses inpainting settings: %v", err)
	}
}
