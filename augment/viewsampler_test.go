package augment

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/data"
)

func TestRandomResizedCrop(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		w, h         int
		scale, ratio [2]float64
	}{
		{28, 28, [2]float64{0.08, 1}, DefaultViewRatio},
		{28, 28, DefaultViewScale, DefaultViewRatio},
		{40, 20, [2]float64{0.1, 0.4}, [2]float64{1, 2}},
		{5, 5, [2]float64{1, 1}, [2]float64{1, 1}},
	} {
		area := float64(tc.w * tc.h)
		for range 2000 {
			r := RandomResizedCrop(tc.w, tc.h, tc.scale, tc.ratio, rng)
			if r.X < 0 || r.Y < 0 || r.W < 1 || r.H < 1 || r.X+r.W > tc.w || r.Y+r.H > tc.h {
				t.Fatalf("%d×%d: crop %+v leaves the image", tc.w, tc.h, r)
			}
			// Sides are rounded: allow half a pixel on each.
			a := float64(r.W * r.H)
			lo := (math.Sqrt(tc.scale[0]*area) - 1) * (math.Sqrt(tc.scale[0]*area) - 1)
			hi := (math.Sqrt(tc.scale[1]*area) + 1) * (math.Sqrt(tc.scale[1]*area) + 1)
			if a < lo || a > hi {
				t.Fatalf("%d×%d scale %v: crop %+v has area %g, outside [%g, %g]", tc.w, tc.h, tc.scale, r, a, lo, hi)
			}
		}
	}
	// The defaults on 28×28: areas spread over the range, both
	// orientations.
	var small, large, wide, tall int
	for range 2000 {
		r := RandomResizedCrop(28, 28, DefaultViewScale, DefaultViewRatio, rng)
		switch f := float64(r.W*r.H) / (28 * 28); {
		case f < 0.35:
			small++
		case f > 0.85:
			large++
		}
		if r.W > r.H {
			wide++
		} else if r.H > r.W {
			tall++
		}
	}
	if small < 200 || large < 200 || wide < 400 || tall < 400 {
		t.Errorf("2000 default crops: %d small, %d large, %d wide, %d tall", small, large, wide, tall)
	}
	// Nothing fits a square image with aspect ratio 3 to 4: the central
	// crop of that ratio.
	if r := RandomResizedCrop(30, 30, [2]float64{0.9, 1}, [2]float64{3, 4}, rng); r != (Rect{X: 0, Y: 10, W: 30, H: 10}) {
		t.Errorf("fallback crop %+v, want {0 10 30 10}", r)
	}
	if r := RandomResizedCrop(30, 30, [2]float64{0.9, 1}, [2]float64{0.25, 0.5}, rng); r != (Rect{X: 7, Y: 0, W: 15, H: 30}) {
		t.Errorf("fallback crop %+v, want {7 0 15 30}", r)
	}
	defer func() {
		if recover() == nil {
			t.Error("RandomResizedCrop with scale [0, 1] did not panic")
		}
	}()
	RandomResizedCrop(10, 10, [2]float64{0, 1}, DefaultViewRatio, rng)
}

// viewByHand draws one view of img as ViewSampler documents it, from rng,
// with the exported functions.
func viewByHand(cfg ViewConfig, img Image, size int, rng *rand.Rand) []float32 {
	r := RandomResizedCrop(img.Side, img.Side, cfg.Scale, cfg.Ratio, rng)
	crop := NewPatch(r.W, r.H, img.C)
	for y := range r.H {
		for x := range r.W {
			for c := range img.C {
				crop.Pix[(y*r.W+x)*img.C+c] = float32(img.Pix[((r.Y+y)*img.Side+r.X+x)*img.C+c]) * (1.0 / 255)
			}
		}
	}
	out := NewPatch(size, size, img.C)
	Resize(out, crop)
	if cfg.Flip > 0 && rng.Float64() < cfg.Flip {
		FlipH(out)
	}
	if cfg.JitterProb > 0 && rng.Float64() < cfg.JitterProb {
		cfg.Jitter.Apply(out, rng)
	}
	if cfg.Gray > 0 && rng.Float64() < cfg.Gray {
		Grayscale(out)
	}
	return out.Pix
}

func randomImage(rng *rand.Rand, side, c int) Image {
	pix := make([]uint8, side*side*c)
	for i := range pix {
		pix[i] = uint8(rng.IntN(256))
	}
	return Image{Pix: pix, Side: side, C: c, Label: 1}
}

func TestViewSamplerDraws(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cfg        ViewConfig
		side, c, s int
	}{
		{"simclr grey 28→32", SimCLRViews(), 28, 1, 32},
		{"simclr rgb 20→16", SimCLRViews(), 20, 3, 16},
		{"paper scale", ViewConfig{Scale: [2]float64{0.08, 1}, Flip: 0.5, Jitter: SimCLRJitter(0.5), JitterProb: 0.8, Gray: 0.2}, 24, 3, 24},
		{"crops only", ViewConfig{}, 12, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewViewSampler(tc.cfg, tc.side, tc.c, tc.s)
			if err != nil {
				t.Fatal(err)
			}
			size := cmpOr(tc.s, tc.side)
			if v := s.Views(); len(v) != 1 || v[0].Count != 2 || v[0].Side != size || s.Labels() != 0 {
				t.Fatalf("views %+v, labels %d", v, s.Labels())
			}
			cfg := s.Config()
			if cfg.Scale == [2]float64{} || cfg.Ratio == [2]float64{} {
				t.Fatalf("defaults not filled in: %+v", cfg)
			}
			d := s.NewDrawer()
			rng := rand.New(rand.NewPCG(3, 3))
			per := size * size * tc.c
			differ := 0
			for i := range 30 {
				img := randomImage(rng, tc.side, tc.c)
				smp := Sample{Views: [][]float32{make([]float32, 2*per)}}
				if err := d.Draw(img, NewRand(9, 0, i), smp); err != nil {
					t.Fatal(err)
				}
				// The same draws again: the same sample.
				again := Sample{Views: [][]float32{make([]float32, 2*per)}}
				if err := s.NewDrawer().Draw(img, NewRand(9, 0, i), again); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(smp.Views[0], again.Views[0]) {
					t.Fatalf("sample %d: two draws from the same seed differ", i)
				}
				// The content: the first view, then the second, drawn by hand.
				hand := NewRand(9, 0, i)
				v0 := viewByHand(cfg, img, size, hand)
				v1 := viewByHand(cfg, img, size, hand)
				for k, v := range append(v0, v1...) {
					if v != smp.Views[0][k] {
						t.Fatalf("sample %d value %d: %g, drawn by hand %g", i, k, smp.Views[0][k], v)
					}
				}
				if !slices.Equal(v0, v1) {
					differ++
				}
			}
			if differ < 28 {
				t.Errorf("the two views differ in only %d of 30 samples", differ)
			}
		})
	}
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// TestViewSamplerWholeImage: with crops of the whole image and nothing
// else, both views are the image, resized.
func TestViewSamplerWholeImage(t *testing.T) {
	s, err := NewViewSampler(ViewConfig{Scale: [2]float64{1, 1}, Ratio: [2]float64{1, 1}}, 8, 3, 16)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	img := randomImage(rng, 8, 3)
	src := NewPatch(8, 8, 3)
	for i, v := range img.Pix {
		src.Pix[i] = float32(v) * (1.0 / 255)
	}
	want := NewPatch(16, 16, 3)
	Resize(want, src)
	smp := Sample{Views: [][]float32{make([]float32, 2*16*16*3)}}
	if err := s.NewDrawer().Draw(img, rng, smp); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(smp.Views[0][:16*16*3], want.Pix) || !slices.Equal(smp.Views[0][16*16*3:], want.Pix) {
		for i, v := range want.Pix {
			if smp.Views[0][i] != v || smp.Views[0][16*16*3+i] != v {
				t.Fatalf("value %d: views %g and %g, the image resized %g", i, smp.Views[0][i], smp.Views[0][16*16*3+i], v)
			}
		}
	}
}

func TestViewSamplerErrors(t *testing.T) {
	_, err := NewViewSampler(ViewConfig{Scale: [2]float64{0.5, 0.2}, Ratio: [2]float64{-1, 1}, Flip: 2, JitterProb: -0.1, Gray: math.NaN(),
		Jitter: Jitter{Hue: 1}}, 0, 2, -3)
	for _, want := range []string{"scale [0.5 0.2]", "ratio [-1 1]", "flip 2", "jitter_prob -0.1", "gray NaN", "hue 1", "image side 0", "2 channels", "size -3"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != 9 {
		t.Errorf("%d problems reported, want 9:\n%v", got, err)
	}
	if _, err := NewViewSampler(ViewConfig{Scale: [2]float64{0.1, 1.5}}, 8, 1, 8); err == nil {
		t.Error("scale above 1 accepted")
	}
	s, err := NewViewSampler(SimCLRViews(), 8, 1, 8)
	if err != nil {
		t.Fatal(err)
	}
	img := randomImage(rand.New(rand.NewPCG(1, 1)), 6, 1)
	smp := Sample{Views: [][]float32{make([]float32, 2*8*8)}}
	if err := s.NewDrawer().Draw(img, rand.New(rand.NewPCG(1, 1)), smp); err == nil || !strings.Contains(err.Error(), "6×6 image") {
		t.Errorf("a 6×6 image for an 8×8 sampler: %v", err)
	}
}

// TestViewSamplerLoader: through a Loader, batches hold the two views of
// each sample next to each other, and do not depend on the workers.
func TestViewSamplerLoader(t *testing.T) {
	ds := imageDataset(t, 20, 12, 3)
	s, err := NewViewSampler(SimCLRViews(), 12, 3, 16)
	if err != nil {
		t.Fatal(err)
	}
	read := func(workers int) []float32 {
		l, err := NewLoader(ds, data.Train, s, LoaderConfig{Batch: 8, Workers: workers, Seed: 5, Shuffle: true})
		if err != nil {
			t.Fatal(err)
		}
		st := l.Stream(context.Background(), 1, 1)
		defer st.Close()
		b, err := st.Next()
		if err != nil {
			t.Fatal(err)
		}
		defer b.Release()
		if len(b.Views) != 1 || len(b.Views[0]) != 8*2*16*16*3 || len(b.Labels) != 0 {
			t.Fatalf("batch of %d views, %d values, %d labels", len(b.Views), len(b.Views[0]), len(b.Labels))
		}
		// Sample 3 of batch (1, 1) is sample 11 of epoch 1.
		recs, err := ds.Load(data.Train)
		if err != nil {
			t.Fatal(err)
		}
		smp := Sample{Views: [][]float32{make([]float32, 2*16*16*3)}}
		img := recs[b.Images[3]]
		if err := s.NewDrawer().Draw(Image{Pix: img.Pixels, Side: 12, C: 3, Label: img.Label}, NewRand(5, 1, 11), smp); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(b.Views[0][3*2*16*16*3:4*2*16*16*3], smp.Views[0]) {
			t.Error("sample 3 of the batch is not the sampler's draw for its image and index")
		}
		return slices.Clone(b.Views[0])
	}
	if !slices.Equal(read(1), read(3)) {
		t.Error("batches differ between 1 and 3 workers")
	}
}
