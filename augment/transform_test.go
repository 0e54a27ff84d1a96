package augment

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// randomPatch returns a w×h patch of c channels with values in [0, 1].
func randomPatch(rng *rand.Rand, w, h, c int) Patch {
	p := NewPatch(w, h, c)
	for i := range p.Pix {
		p.Pix[i] = rng.Float32()
	}
	return p
}

func clonePatch(p Patch) Patch {
	p.Pix = slices.Clone(p.Pix)
	return p
}

func TestProject(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	src := randomPatch(rng, 9, 7, 3)
	p := clonePatch(src)
	Project(p)
	for i := 0; i < len(p.Pix); i += 3 {
		r, g, b := p.Pix[i], p.Pix[i+1], p.Pix[i+2]
		if a := -r + 2*g - b; math.Abs(float64(a)) > 1e-6 {
			t.Fatalf("pixel %d: green–magenta component %g after projection", i/3, a)
		}
		// What is orthogonal to a is kept: R−B and R+G+B.
		r0, g0, b0 := src.Pix[i], src.Pix[i+1], src.Pix[i+2]
		if math.Abs(float64((r-b)-(r0-b0))) > 1e-6 || math.Abs(float64((r+g+b)-(r0+g0+b0))) > 1e-5 {
			t.Fatalf("pixel %d: projection changed components orthogonal to a", i/3)
		}
	}
	// Idempotent.
	q := clonePatch(p)
	Project(q)
	for i := range q.Pix {
		if math.Abs(float64(q.Pix[i]-p.Pix[i])) > 1e-6 {
			t.Fatal("projection not idempotent")
		}
	}
}

func TestDropColor(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	src := randomPatch(rng, 16, 16, 3)
	for keep := range 3 {
		p := clonePatch(src)
		DropColor(p, keep, 0.01, rng)
		for c := range 3 {
			same := true
			var sum, ss float64
			for i := c; i < len(p.Pix); i += 3 {
				same = same && p.Pix[i] == src.Pix[i]
				sum += float64(p.Pix[i])
				ss += float64(p.Pix[i]) * float64(p.Pix[i])
			}
			if c == keep {
				if !same {
					t.Errorf("keep %d: the kept channel changed", keep)
				}
				continue
			}
			n := float64(p.W * p.H)
			mean := sum / n
			std := math.Sqrt(ss/n - mean*mean)
			if same || math.Abs(mean-0.5) > 0.005 || std < 0.005 || std > 0.02 {
				t.Errorf("keep %d: dropped channel %d has mean %.4f std %.4f, want noise around 0.5 with std 0.01", keep, c, mean, std)
			}
		}
	}
}

func TestGrayscale(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	src := randomPatch(rng, 5, 4, 3)
	p := clonePatch(src)
	Grayscale(p)
	for i := 0; i < len(p.Pix); i += 3 {
		y := 0.299*src.Pix[i] + 0.587*src.Pix[i+1] + 0.114*src.Pix[i+2]
		if p.Pix[i] != p.Pix[i+1] || p.Pix[i] != p.Pix[i+2] || math.Abs(float64(p.Pix[i]-y)) > 1e-6 {
			t.Fatalf("pixel %d: %v, want all %v", i/3, p.Pix[i:i+3], y)
		}
	}
	g := randomPatch(rng, 5, 4, 1)
	h := clonePatch(g)
	Grayscale(h)
	Project(h)
	DropColor(h, 0, 0.1, rng)
	if !slices.Equal(g.Pix, h.Pix) {
		t.Error("colour transforms changed a grey patch")
	}
}

func TestPixelate(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, tt := range []struct{ w, h, c, sw, sh int }{{16, 16, 3, 4, 4}, {14, 14, 1, 3, 3}, {10, 7, 3, 3, 2}, {9, 9, 3, 9, 9}, {8, 8, 1, 1, 1}} {
		src := randomPatch(rng, tt.w, tt.h, tt.c)
		p := clonePatch(src)
		Pixelate(p, tt.sw, tt.sh)
		block := map[[3]int]float32{}
		var sumSrc, sumDst float64
		for y := range tt.h {
			for x := range tt.w {
				for c := range tt.c {
					k := [3]int{x * tt.sw / tt.w, y * tt.sh / tt.h, c}
					v := p.Pix[(y*tt.w+x)*tt.c+c]
					if b, ok := block[k]; ok && b != v {
						t.Fatalf("%+v: not constant over block %v", tt, k)
					}
					block[k] = v
					sumSrc += float64(src.Pix[(y*tt.w+x)*tt.c+c])
					sumDst += float64(v)
				}
			}
		}
		if len(block) != tt.sw*tt.sh*tt.c {
			t.Errorf("%+v: %d blocks, want %d", tt, len(block), tt.sw*tt.sh*tt.c)
		}
		// Divisible sizes keep the mean exactly.
		if tt.w%tt.sw == 0 && tt.h%tt.sh == 0 && math.Abs(sumSrc-sumDst) > 1e-3 {
			t.Errorf("%+v: mean changed from %g to %g", tt, sumSrc, sumDst)
		}
		if tt.sw == tt.w && !slices.Equal(p.Pix, src.Pix) {
			t.Errorf("%+v: pixelation to the same size changed the patch", tt)
		}
	}
}

func TestResize(t *testing.T) {
	// Shrinking by 2 averages 2×2 blocks.
	src := NewPatch(4, 2, 1)
	copy(src.Pix, []float32{0, 2, 4, 6, 2, 4, 6, 8})
	dst := NewPatch(2, 1, 1)
	Resize(dst, src)
	if want := []float32{2, 6}; !slices.Equal(dst.Pix, want) {
		t.Errorf("shrink: %v, want %v", dst.Pix, want)
	}
	// Enlarging a constant patch keeps it constant, and by a whole factor
	// repeats pixels.
	big := NewPatch(4, 4, 1)
	Resize(big, dst)
	if want := []float32{2, 2, 6, 6}; !slices.Equal(big.Pix[:4], want) || !slices.Equal(big.Pix[12:], want) {
		t.Errorf("enlarge: %v", big.Pix)
	}
	// Any size: the mean is kept.
	rng := rand.New(rand.NewPCG(5, 5))
	s := randomPatch(rng, 13, 11, 3)
	d := NewPatch(5, 7, 3)
	Resize(d, s)
	if m1, m2 := meanOf(s), meanOf(d); math.Abs(m1-m2) > 0.01 {
		t.Errorf("13×11 → 5×7: mean %g → %g", m1, m2)
	}
}

func meanOf(p Patch) float64 {
	var s float64
	for _, v := range p.Pix {
		s += float64(v)
	}
	return s / float64(len(p.Pix))
}

func TestNormalize(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	for _, std := range []bool{false, true} {
		src := randomPatch(rng, 12, 10, 3)
		p := clonePatch(src)
		if std {
			Standardize(p)
		} else {
			SubtractMean(p)
		}
		for c := range 3 {
			var sum, ss float64
			n := 0
			for i := c; i < len(p.Pix); i += 3 {
				sum += float64(p.Pix[i])
				ss += float64(p.Pix[i]) * float64(p.Pix[i])
				n++
			}
			mean := sum / float64(n)
			sd := math.Sqrt(ss/float64(n) - mean*mean)
			if math.Abs(mean) > 1e-5 {
				t.Errorf("std=%v channel %d: mean %g", std, c, mean)
			}
			if std && math.Abs(sd-1) > 1e-4 {
				t.Errorf("channel %d: std %g, want 1", c, sd)
			}
			if !std && math.Abs(float64(p.Pix[c]-src.Pix[c])-(0-meanChan(src, c))) > 1e-5 {
				t.Errorf("channel %d: not a shift by the mean", c)
			}
		}
	}
	// A constant patch becomes 0, not NaN.
	p := NewPatch(3, 3, 1)
	for i := range p.Pix {
		p.Pix[i] = 0.7
	}
	Standardize(p)
	for _, v := range p.Pix {
		if v != 0 {
			t.Fatalf("constant patch standardised to %v", p.Pix)
		}
	}
}

func meanChan(p Patch, c int) float64 {
	var s float64
	for i := c; i < len(p.Pix); i += p.C {
		s += float64(p.Pix[i])
	}
	return s / float64(p.W*p.H)
}

func TestFlipH(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, w := range []int{1, 4, 7} {
		src := randomPatch(rng, w, 3, 3)
		p := clonePatch(src)
		FlipH(p)
		for y := range 3 {
			for x := range w {
				for c := range 3 {
					if p.Pix[(y*w+x)*3+c] != src.Pix[(y*w+w-1-x)*3+c] {
						t.Fatalf("w=%d: (%d,%d,%d) not mirrored", w, x, y, c)
					}
				}
			}
		}
		FlipH(p)
		if !slices.Equal(p.Pix, src.Pix) {
			t.Errorf("w=%d: flip is not its own inverse", w)
		}
	}
}

func TestMask(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	src := randomPatch(rng, 10, 8, 3)
	for i := range src.Pix {
		src.Pix[i] += 0.01 // no zeros before masking
	}
	for _, r := range []Crop{{2, 3, 4}, {0, 0, 1}, {8, 6, 5}, {-2, -2, 3}} {
		p := clonePatch(src)
		Mask(p, r)
		for y := range p.H {
			for x := range p.W {
				in := x >= r.X && x < r.X+r.Size && y >= r.Y && y < r.Y+r.Size
				for c := range 3 {
					v := p.Pix[(y*p.W+x)*3+c]
					if in && v != 0 || !in && v != src.Pix[(y*p.W+x)*3+c] {
						t.Fatalf("mask %+v: pixel (%d,%d) = %v, inside %v", r, x, y, v, in)
					}
				}
			}
		}
	}
}

func TestAddNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	p := NewPatch(64, 64, 3)
	AddNoise(p, 0.1, rng)
	if m, s := meanOf(p), math.Sqrt(meanSq(p)); math.Abs(m) > 0.01 || math.Abs(s-0.1) > 0.01 {
		t.Errorf("noise mean %g rms %g, want 0 and 0.1", m, s)
	}
}

func meanSq(p Patch) float64 {
	var s float64
	for _, v := range p.Pix {
		s += float64(v) * float64(v)
	}
	return s / float64(len(p.Pix))
}

func TestTransformApply(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	// The zero Transform changes nothing.
	src := randomPatch(rng, 8, 8, 3)
	p := clonePatch(src)
	Transform{}.Apply(p, rng)
	if !slices.Equal(p.Pix, src.Pix) {
		t.Error("zero Transform changed the patch")
	}
	// Presets are valid and do what they say.
	for _, tr := range []Transform{DoerschDefaults(), ModernDefaults()} {
		if err := tr.Validate(); err != nil {
			t.Errorf("%+v: %v", tr, err)
		}
	}
	grays := 0
	for i := range 1000 {
		p := clonePatch(src)
		ModernDefaults().Apply(p, NewRand(1, 0, i))
		if p.Pix[0] == p.Pix[1] && p.Pix[1] == p.Pix[2] {
			grays++
		}
		if math.Abs(meanChan(p, 0)) > 1e-5 {
			t.Fatal("modern: not standardised")
		}
	}
	if grays < 600 || grays > 720 {
		t.Errorf("gray in %d of 1000, want about 660", grays)
	}
	// Masking comes last: masked values are exactly 0 after normalisation.
	p = clonePatch(src)
	Transform{Normalize: NormStandardize, Masks: 1, MaskSize: 4, Noise: 0.1}.Apply(p, rng)
	zeros := 0
	for _, v := range p.Pix {
		if v == 0 {
			zeros++
		}
	}
	if zeros != 4*4*3 {
		t.Errorf("%d zeros after one 4×4 mask, want 48", zeros)
	}
	// Same rng stream, same result.
	a, b := clonePatch(src), clonePatch(src)
	tr := Transform{Color: ColorDrop, Pixelate: 0.5, Flip: 0.5, Noise: 0.05, Masks: 2}
	tr.Apply(a, NewRand(3, 1, 4))
	tr.Apply(b, NewRand(3, 1, 4))
	if !slices.Equal(a.Pix, b.Pix) {
		t.Error("Apply not deterministic")
	}
}

func TestTransformValidate(t *testing.T) {
	err := Transform{Color: "sepia", Normalize: "z", ColorProb: 2, Pixelate: -1, Flip: math.NaN(), Noise: -1, Masks: -1, PixelMin: 0.5, PixelMax: 0.2}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{`color "sepia"`, `normalize "z"`, "color_prob 2", "pixelate -1", "flip NaN", "noise -1", "masks -1", "pixel_min 0.5 > pixel_max 0.2"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}
