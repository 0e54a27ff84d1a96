package augment

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestLengthPixels(t *testing.T) {
	tests := []struct {
		l    Length
		side int
		want int
	}{
		{0, 64, 0}, {None, 64, 0}, {1, 64, 1}, {12, 64, 12}, {12.4, 64, 12},
		{0.25, 64, 16}, {0.22, 64, 14}, {0.5, 7, 4}, {0.999, 100, 100},
	}
	for _, tt := range tests {
		if got := tt.l.Pixels(tt.side); got != tt.want {
			t.Errorf("Length(%v).Pixels(%d) = %d, want %d", float64(tt.l), tt.side, got, tt.want)
		}
	}
}

func TestDirectionAndAngleLabel(t *testing.T) {
	seen := map[[2]int]bool{}
	for l := range NumLabels {
		dx, dy := Direction(l)
		if dx == 0 && dy == 0 || seen[[2]int{dx, dy}] {
			t.Fatalf("Direction(%d) = (%d, %d): centre or repeated", l, dx, dy)
		}
		seen[[2]int{dx, dy}] = true
		if got := AngleLabel(float64(dx), float64(dy)); got != l {
			t.Errorf("AngleLabel(Direction(%d)) = %d", l, got)
		}
		// Just inside the bin's edges.
		a := math.Atan2(float64(dy), float64(dx))
		for _, da := range []float64{-math.Pi/8 + 1e-9, math.Pi/8 - 1e-9} {
			if got := AngleLabel(math.Cos(a+da), math.Sin(a+da)); got != l {
				t.Errorf("label %d: angle %+.3f from its centre gives %d", l, da, got)
			}
		}
	}
	// The documented order: row by row, y down.
	want := [][2]int{{-1, -1}, {0, -1}, {1, -1}, {-1, 0}, {1, 0}, {-1, 1}, {0, 1}, {1, 1}}
	for l, w := range want {
		if dx, dy := Direction(l); dx != w[0] || dy != w[1] {
			t.Errorf("Direction(%d) = (%d, %d), want %v", l, dx, dy, w)
		}
	}
}

// randomConfig returns a random configuration for sampler, mixing pixels
// and fractions.
func randomConfig(rng *rand.Rand, sampler string, side int) PairConfig {
	length := func(lo, hi float64) Length {
		f := lo + rng.Float64()*(hi-lo)
		if rng.IntN(2) == 0 {
			return Length(f) // fraction
		}
		return Length(max(1, math.Round(f*float64(side)))) // pixels
	}
	c := PairConfig{Sampler: sampler}
	switch rng.IntN(4) {
	case 0: // defaults
	default:
		if sampler == SamplerGrid {
			c.Patch, c.Gap, c.Jitter = length(0.05, 0.35), length(0.0, 0.15), length(0, 0.06)
			if rng.IntN(4) == 0 {
				c.Jitter = None
			}
			if rng.IntN(4) == 0 {
				c.Gap = None
			}
		} else {
			c.Patch = length(0.05, 0.45)
			c.MinDist, c.MaxDist = length(0.05, 0.5), length(0.3, 1.2)
			if rng.IntN(2) == 0 {
				c.MinGap = length(0, 0.2)
			}
		}
	}
	return c
}

// TestSampleProperties draws pairs for many random geometries and image
// sizes and checks what Sample promises.
func TestSampleProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sampler := range []string{SamplerGrid, SamplerFree} {
		t.Run(sampler, func(t *testing.T) {
			valid := 0
			for range 400 {
				w := 12 + rng.IntN(300)
				h := w
				if rng.IntN(3) == 0 {
					h = 12 + rng.IntN(300)
				}
				c := randomConfig(rng, sampler, min(w, h))
				g, err := c.Geometry(w, h)
				if err != nil {
					continue
				}
				valid++
				for i := range 200 {
					p, err := g.Sample(NewRand(7, valid, i))
					if err != nil {
						t.Fatalf("%+v on %d×%d: %v", g, w, h, err)
					}
					checkPair(t, g, p)
					if t.Failed() {
						t.Fatalf("geometry %+v (config %+v), pair %+v", g, c, p)
					}
				}
			}
			if valid < 100 {
				t.Errorf("only %d of 400 random geometries valid", valid)
			}
		})
	}
}

func checkPair(t *testing.T, g Geometry, p Pair) {
	t.Helper()
	for _, c := range []Crop{p.A, p.B} {
		if c.Size != g.Patch || c.X < 0 || c.Y < 0 || c.X+c.Size > g.Width || c.Y+c.Size > g.Height {
			t.Errorf("crop %+v outside the %d×%d image or not of size %d", c, g.Width, g.Height, g.Patch)
		}
	}
	if p.Label < 0 || p.Label >= NumLabels {
		t.Fatalf("label %d", p.Label)
	}
	dx, dy := p.B.X-p.A.X, p.B.Y-p.A.Y
	switch g.Sampler {
	case SamplerGrid:
		ux, uy := Direction(p.Label)
		step := g.Patch + g.Gap
		if abs(dx-ux*step) > 2*g.Jitter || abs(dy-uy*step) > 2*g.Jitter {
			t.Errorf("label %d: offset (%d, %d), want (%d, %d) ± %d", p.Label, dx, dy, ux*step, uy*step, 2*g.Jitter)
		}
	case SamplerFree:
		d := math.Hypot(float64(dx), float64(dy))
		if d < float64(g.MinDist) || d > float64(g.MaxDist) {
			t.Errorf("distance %.2f outside [%d, %d]", d, g.MinDist, g.MaxDist)
		}
		ux, uy := Direction(p.Label)
		ang := math.Atan2(float64(dy), float64(dx)) - math.Atan2(float64(uy), float64(ux))
		ang = math.Remainder(ang, 2*math.Pi)
		if math.Abs(ang) > math.Pi/8+1e-9 {
			t.Errorf("label %d: offset (%d, %d) is %.1f° from the label's direction", p.Label, dx, dy, ang*180/math.Pi)
		}
		if gap := max(abs(dx), abs(dy)) - g.Patch; gap < g.MinGap {
			t.Errorf("border gap %d < min_gap %d", gap, g.MinGap)
		}
	}
}

// TestLabelsUniform checks with a chi-square test (7 degrees of freedom)
// that the labels are uniform, and that the grid's centre patch position
// does not depend on the label.
func TestLabelsUniform(t *testing.T) {
	for _, c := range []PairConfig{{}, {Sampler: SamplerFree}, {Sampler: SamplerFree, Patch: 20, MinDist: 10, MaxDist: 60, MinGap: 3}} {
		g, err := c.Geometry(64, 64)
		if err != nil {
			t.Fatal(err)
		}
		const n = 16000
		// Over the samples of one seed, and over seeds at one index.
		for _, across := range []string{"indices", "seeds"} {
			var counts [NumLabels]int
			for i := range n {
				rng := NewRand(42, 0, i)
				if across == "seeds" {
					rng = NewRand(uint64(i), 0, 3)
				}
				p, err := g.Sample(rng)
				if err != nil {
					t.Fatal(err)
				}
				counts[p.Label]++
			}
			chi2 := 0.0
			e := float64(n) / NumLabels
			for _, k := range counts {
				chi2 += (float64(k) - e) * (float64(k) - e) / e
			}
			// P(χ²₇ > 33.1) ≈ 2.6e-5.
			if chi2 > 33.1 {
				t.Errorf("%+v across %s: χ² = %.1f over counts %v: labels not uniform", c, across, chi2, counts)
			}
		}
	}
}

func TestGeometryDefaults(t *testing.T) {
	for side := 20; side <= 512; side++ {
		for _, s := range []string{SamplerGrid, SamplerFree} {
			if _, err := (PairConfig{Sampler: s}).Geometry(side, side); err != nil {
				t.Errorf("defaults on %d px: %v", side, err)
			}
		}
	}
	g, _ := PairConfig{}.Geometry(64, 64)
	if g.Patch != 14 || g.Gap != 7 || g.Jitter != 2 {
		t.Errorf("grid defaults at 64 px: %+v", g)
	}
	g, _ = PairConfig{Sampler: SamplerFree}.Geometry(64, 64)
	if g.Patch != 19 || g.MinDist != 26 || g.MaxDist != 45 || g.MinGap != 0 {
		t.Errorf("free defaults at 64 px: %+v", g)
	}
	g, _ = PairConfig{Jitter: None, Gap: None}.Geometry(64, 64)
	if g.Jitter != 0 || g.Gap != 0 {
		t.Errorf("None: %+v", g)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		c    PairConfig
		size int
		want []string // substrings of the error; nil for no error
		geom bool     // a *GeometryError is among the errors
	}{
		{name: "defaults", c: PairConfig{}, size: 64},
		{name: "grid too big", c: PairConfig{Patch: 40, Gap: 20, Jitter: 7}, size: 64, geom: true,
			want: []string{"grid of 3 patches of 40 px with gap 20 and jitter 7 needs 174 px, image is 64", "largest patch that fits with this gap and jitter is 3 px"}},
		{name: "grid gap too big", c: PairConfig{Patch: 10, Gap: 40, Jitter: 2}, size: 64, geom: true,
			want: []string{"needs 114 px", "gap and jitter alone need 87 px", "largest gap with this patch and jitter is 15 px"}},
		{name: "fractions", c: PairConfig{Patch: 0.4, Gap: 0.2}, size: 100, geom: true, want: []string{"patches of 40 px with gap 20 and jitter 3"}},
		{name: "unknown sampler", c: PairConfig{Sampler: "spiral"}, size: 64, want: []string{`unknown sampler "spiral"`}},
		{name: "bad lengths at once", c: PairConfig{Patch: -3, Gap: Length(math.NaN())}, size: 64, want: []string{"patch -3", "gap NaN"}},
		{name: "min > max", c: PairConfig{Sampler: SamplerFree, MinDist: 30, MaxDist: 20}, size: 64, geom: true, want: []string{"min_dist 30 px > max_dist 20 px"}},
		{name: "min dist too far", c: PairConfig{Sampler: SamplerFree, Patch: 20, MinDist: 50, MaxDist: 60}, size: 64, geom: true,
			want: []string{"largest min_dist is 44 px"}},
		{name: "free patch too big", c: PairConfig{Sampler: SamplerFree, Patch: 64}, size: 64, geom: true, want: []string{"largest patch is 63 px"}},
		{name: "min gap", c: PairConfig{Sampler: SamplerFree, Patch: 20, MinGap: 30}, size: 64, geom: true, want: []string{"largest min_gap is 24 px"}},
		{name: "min gap diagonal", c: PairConfig{Sampler: SamplerFree, Patch: 20, MinGap: 10, MinDist: 30, MaxDist: 40}, size: 64, geom: true,
			want: []string{"smallest max_dist is 43 px"}},
		{name: "every problem", c: PairConfig{Sampler: SamplerFree, Patch: 20, MinDist: 50, MaxDist: 40, MinGap: 30}, size: 64, geom: true,
			want: []string{"min_dist 50 px > max_dist 40 px", "largest min_dist", "largest min_gap"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate(tt.size, tt.size)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			var ge *GeometryError
			if got := errors.As(err, &ge); got != tt.geom {
				t.Errorf("errors.As(*GeometryError) = %v, want %v", got, tt.geom)
			}
		})
	}
}

func TestNewRandDeterministic(t *testing.T) {
	a, b := NewRand(1, 2, 3), NewRand(1, 2, 3)
	for range 10 {
		if a.Uint64() != b.Uint64() {
			t.Fatal("same (seed, epoch, index), different streams")
		}
	}
	seen := map[uint64]bool{}
	for _, k := range [][3]int{{1, 0, 0}, {2, 0, 0}, {1, 1, 0}, {1, 0, 1}, {1, 0, -1}, {1, -1, 0}} {
		x := NewRand(uint64(k[0]), k[1], k[2]).Uint64()
		if seen[x] {
			t.Errorf("%v repeats another stream", k)
		}
		seen[x] = true
	}
}
