package augment

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestBrightness(t *testing.T) {
	p := Patch{Pix: []float32{0, 0.25, 0.5, 0.8}, W: 4, H: 1, C: 1}
	Brightness(p, 1.5)
	if want := []float32{0, 0.375, 0.75, 1}; !slices.Equal(p.Pix, want) {
		t.Errorf("brightness 1.5: %v, want %v (clipped at 1)", p.Pix, want)
	}
	Brightness(p, 0)
	if want := []float32{0, 0, 0, 0}; !slices.Equal(p.Pix, want) {
		t.Errorf("brightness 0: %v, want black", p.Pix)
	}
}

func TestContrast(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 3))
	for _, c := range []int{1, 3} {
		src := randomPatch(rng, 6, 5, c)
		for i := range src.Pix { // in [0.4, 0.6]: no clipping at f ≤ 2
			src.Pix[i] = 0.4 + 0.2*src.Pix[i]
		}
		var sum float64
		for i := 0; i < len(src.Pix); i += c {
			if c == 3 {
				sum += lumaR*float64(src.Pix[i]) + lumaG*float64(src.Pix[i+1]) + lumaB*float64(src.Pix[i+2])
			} else {
				sum += float64(src.Pix[i])
			}
		}
		mean := sum / 30
		for _, f := range []float64{0, 0.5, 1, 2} {
			p := clonePatch(src)
			Contrast(p, f)
			for i, v := range p.Pix {
				want := f*float64(src.Pix[i]) + (1-f)*mean
				if !near(float64(v), want, 1e-6) {
					t.Fatalf("C %d, f %g: value %d is %g, want %g", c, f, i, v, want)
				}
			}
		}
	}
	// Clipped to [0, 1].
	p := Patch{Pix: []float32{0, 1, 1, 1}, W: 2, H: 2, C: 1}
	Contrast(p, 3) // mean 0.75: 3x − 1.5
	if want := []float32{0, 1, 1, 1}; !slices.Equal(p.Pix, want) {
		t.Errorf("contrast 3: %v, want %v", p.Pix, want)
	}
}

func TestSaturation(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 3))
	src := randomPatch(rng, 5, 4, 3)
	p := clonePatch(src)
	Saturation(p, 0)
	for i := 0; i < len(p.Pix); i += 3 {
		y := lumaR*src.Pix[i] + lumaG*src.Pix[i+1] + lumaB*src.Pix[i+2]
		for k := range 3 {
			if !near(float64(p.Pix[i+k]), float64(y), 1e-6) {
				t.Fatalf("saturation 0: pixel %d channel %d is %g, want the luma %g", i/3, k, p.Pix[i+k], y)
			}
		}
	}
	p = clonePatch(src)
	Saturation(p, 1)
	for i := range p.Pix {
		if !near(float64(p.Pix[i]), float64(src.Pix[i]), 1e-6) {
			t.Fatalf("saturation 1 changed value %d: %g → %g", i, src.Pix[i], p.Pix[i])
		}
	}
	// f = 2 pushes away from the luma: (0.8, 0.4, 0.2) has luma 0.4968,
	// so 2x − y = (1.1032 → 1, 0.3032, −0.0968 → 0).
	p = Patch{Pix: []float32{0.8, 0.4, 0.2}, W: 1, H: 1, C: 3}
	Saturation(p, 2)
	if !near(float64(p.Pix[0]), 1, 0) || !near(float64(p.Pix[1]), 0.3032, 1e-6) || p.Pix[2] != 0 {
		t.Errorf("saturation 2: %v, want [1 0.3032 0]", p.Pix)
	}
	g := Patch{Pix: []float32{0.1, 0.7}, W: 2, H: 1, C: 1}
	Saturation(g, 0)
	Hue(g, 0.3)
	if !slices.Equal(g.Pix, []float32{0.1, 0.7}) {
		t.Errorf("saturation and hue changed a grey patch: %v", g.Pix)
	}
}

func TestHue(t *testing.T) {
	// Expected values from Python's colorsys (rgb_to_hsv, hue moved
	// modulo 1, hsv_to_rgb).
	for _, tc := range []struct {
		rgb   [3]float32
		shift float64
		want  [3]float64
	}{
		{[3]float32{0.9, 0.2, 0.1}, 0.25, [3]float64{0.4, 0.9, 0.1}},
		{[3]float32{0.3, 0.6, 0.8}, -0.4, [3]float64{0.8, 0.8, 0.3}},
		{[3]float32{0.5, 0.5, 0.2}, 0.1, [3]float64{0.32, 0.5, 0.2}},
		{[3]float32{0.05, 0.7, 0.3}, 0.5, [3]float64{0.7, 0.05, 0.45}},
		{[3]float32{1, 0, 0}, 1.0 / 3, [3]float64{0, 1, 0}},
		{[3]float32{0.4, 0.4, 0.4}, 0.3, [3]float64{0.4, 0.4, 0.4}}, // grey: no hue
	} {
		p := Patch{Pix: tc.rgb[:], W: 1, H: 1, C: 3}
		p.Pix = slices.Clone(p.Pix)
		Hue(p, tc.shift)
		for k := range 3 {
			if !near(float64(p.Pix[k]), tc.want[k], 1e-6) {
				t.Errorf("hue %v by %g: %v, want %v", tc.rgb, tc.shift, p.Pix, tc.want)
				break
			}
		}
	}
	// A shift and its opposite give the patch back; a whole turn does
	// nothing.
	rng := rand.New(rand.NewPCG(4, 4))
	src := randomPatch(rng, 8, 8, 3)
	p := clonePatch(src)
	Hue(p, 0.37)
	Hue(p, -0.37)
	q := clonePatch(src)
	Hue(q, 1)
	for i := range src.Pix {
		if !near(float64(p.Pix[i]), float64(src.Pix[i]), 1e-5) || !near(float64(q.Pix[i]), float64(src.Pix[i]), 1e-5) {
			t.Fatalf("value %d: %g after ±0.37, %g after a whole turn, was %g", i, p.Pix[i], q.Pix[i], src.Pix[i])
		}
	}
}

func TestHSVRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for range 1000 {
		r, g, b := rng.Float64(), rng.Float64(), rng.Float64()
		h, s, v := rgbToHSV(r, g, b)
		if h < 0 || h >= 1 || s < 0 || s > 1 || v != max(r, g, b) {
			t.Fatalf("rgbToHSV(%g, %g, %g) = %g, %g, %g", r, g, b, h, s, v)
		}
		r2, g2, b2 := hsvToRGB(h, s, v)
		if !near(r, r2, 1e-9) || !near(g, g2, 1e-9) || !near(b, b2, 1e-9) {
			t.Fatalf("(%g, %g, %g) → HSV → (%g, %g, %g)", r, g, b, r2, g2, b2)
		}
	}
}

// jitterByHand applies j to p as Apply documents its draws, from rng.
func jitterByHand(j Jitter, p Patch, rng *rand.Rand) {
	f := func(s float64) float64 { return max(0, 1-s) + (1+s-max(0, 1-s))*rng.Float64() }
	for _, k := range rng.Perm(4) {
		switch k {
		case 0:
			if j.Brightness > 0 {
				Brightness(p, f(j.Brightness))
			}
		case 1:
			if j.Contrast > 0 {
				Contrast(p, f(j.Contrast))
			}
		case 2:
			if j.Saturation > 0 && p.C == 3 {
				Saturation(p, f(j.Saturation))
			}
		case 3:
			if j.Hue > 0 && p.C == 3 {
				Hue(p, j.Hue*(2*rng.Float64()-1))
			}
		}
	}
}

func TestJitterApply(t *testing.T) {
	for _, tc := range []struct {
		name string
		j    Jitter
		c    int
	}{
		{"simclr rgb", SimCLRJitter(1), 3},
		{"simclr grey", SimCLRJitter(1), 1},
		{"half rgb", SimCLRJitter(0.5), 3},
		{"hue only", Jitter{Hue: 0.5}, 3},
		{"strong contrast", Jitter{Contrast: 3}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := randomPatch(rand.New(rand.NewPCG(6, 6)), 7, 7, tc.c)
			changed := 0
			for seed := range uint64(20) {
				p := clonePatch(src)
				tc.j.Apply(p, rand.New(rand.NewPCG(seed, 1)))
				q := clonePatch(src)
				jitterByHand(tc.j, q, rand.New(rand.NewPCG(seed, 1)))
				if !slices.Equal(p.Pix, q.Pix) {
					t.Fatalf("seed %d: Apply differs from its documented draws", seed)
				}
				for _, v := range p.Pix {
					if v < 0 || v > 1 {
						t.Fatalf("seed %d: value %g outside [0, 1]", seed, v)
					}
				}
				if !slices.Equal(p.Pix, src.Pix) {
					changed++
				}
			}
			if changed < 19 {
				t.Errorf("only %d of 20 draws changed the patch", changed)
			}
		})
	}
	// Nothing to do: the patch is untouched.
	src := randomPatch(rand.New(rand.NewPCG(7, 7)), 4, 4, 1)
	for _, j := range []Jitter{{}, {Saturation: 0.8, Hue: 0.2}} {
		p := clonePatch(src)
		j.Apply(p, rand.New(rand.NewPCG(1, 1)))
		if !slices.Equal(p.Pix, src.Pix) {
			t.Errorf("%+v changed a grey patch", j)
		}
	}
}

func TestJitterValidate(t *testing.T) {
	if err := SimCLRJitter(1).Validate(); err != nil {
		t.Errorf("SimCLRJitter(1): %v", err)
	}
	err := Jitter{Brightness: -1, Contrast: math.Inf(1), Saturation: math.NaN(), Hue: 0.6}.Validate()
	for _, want := range []string{"brightness -1", "contrast +Inf", "saturation NaN", "hue 0.6"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
