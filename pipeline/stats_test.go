package pipeline

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// The reference values below were computed with SciPy 1.10
// (scipy.stats.t.ppf, scipy.stats.ttest_1samp(d, 0).confidence_interval,
// scipy.stats.bootstrap with method="percentile"); bench/stats_scipy.py
// recomputes them live (TestStatsSciPyCrossCheck).

func TestTQuantile(t *testing.T) {
	for _, tc := range []struct {
		p    float64
		df   int
		want float64
	}{
		{0.975, 1, 12.706204736432095},
		{0.975, 2, 4.302652729911275},
		{0.975, 4, 2.7764451051977987},
		{0.95, 9, 1.8331129326536335},
	} {
		if got := tQuantile(tc.p, tc.df); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("t quantile %v, df %d: %v, want %v (SciPy)", tc.p, tc.df, got, tc.want)
		}
	}
}

func TestPairedT(t *testing.T) {
	for _, tc := range []struct {
		d      []float64
		lo, hi float64
	}{
		{[]float64{0.012, 0.021, 0.0095}, -0.0008584310458455962, 0.029191764379178933},
		{[]float64{0.004, -0.006, 0.011, 0.002, -0.001}, -0.00580373722233116, 0.009803737222331159},
	} {
		iv := pairedT(tc.d, 0.95)
		if math.Abs(iv.Lo-tc.lo) > 1e-12 || math.Abs(iv.Hi-tc.hi) > 1e-12 {
			t.Errorf("%v: [%v, %v], want [%v, %v] (SciPy)", tc.d, iv.Lo, iv.Hi, tc.lo, tc.hi)
		}
		if iv.ExcludesZero {
			t.Errorf("%v: interval [%v, %v] said to exclude zero", tc.d, iv.Lo, iv.Hi)
		}
	}
	if pairedT([]float64{0.1}, 0.95) != nil {
		t.Error("one difference gave an interval")
	}
}

// bootstrapData is the test data of the bootstrap's reference interval.
func bootstrapData() []float64 {
	delta := make([]float64, 1000)
	for i := range delta {
		delta[i] = float64((i*37)%7-3) / 3 * 0.5
		if i%5 == 0 {
			delta[i] += 0.02
		}
	}
	return delta
}

func TestBootstrapMean(t *testing.T) {
	// SciPy, 100,000 resamples: [-0.01702666666666666, 0.024126666666666668],
	// standard error 0.0105. The endpoints of 10,000 resamples scatter by
	// about 0.0003 around those.
	iv := bootstrapMean(bootstrapData(), 0.95, 10000, rand.New(rand.NewPCG(1, 2)))
	const tol = 0.0015
	if math.Abs(iv.Lo+0.01702666666666666) > tol || math.Abs(iv.Hi-0.024126666666666668) > tol {
		t.Errorf("bootstrap interval [%v, %v], want about [-0.0170, 0.0241] (SciPy)", iv.Lo, iv.Hi)
	}
	// Deterministic for a stream.
	again := bootstrapMean(bootstrapData(), 0.95, 10000, rand.New(rand.NewPCG(1, 2)))
	if *again != *iv {
		t.Errorf("the same stream gave [%v, %v] and [%v, %v]", iv.Lo, iv.Hi, again.Lo, again.Hi)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5}
	for _, tc := range []struct{ p, want float64 }{{0, 1}, {1, 5}, {0.5, 3}, {0.025, 1.1}, {0.975, 4.9}} {
		if got := percentile(xs, tc.p); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("percentile %v: %v, want %v (numpy.percentile)", tc.p, got, tc.want)
		}
	}
}

func TestSeedsNeeded(t *testing.T) {
	// Mean 0.01, sd 0.01: t_{0.975,n−1}/√n < 1 first at n = 7
	// (2.4469/√7 = 0.925; at n = 6, 2.5706/√6 = 1.049).
	if n := seedsNeeded(0.01, 0.01, 0.95); n != 7 {
		t.Errorf("d̄ = s = 0.01: %d seeds, want 7", n)
	}
	if n := seedsNeeded(-0.01, 0.01, 0.95); n != 7 {
		t.Errorf("d̄ = −0.01: %d seeds, want 7", n)
	}
	if n := seedsNeeded(0, 0.01, 0.95); n != 0 {
		t.Errorf("no difference: %d seeds, want 0", n)
	}
	if n := seedsNeeded(1e-6, 1, 0.95); n != 0 {
		t.Errorf("a tiny difference: %d seeds, want 0 (more than the cap)", n)
	}
	// The answer resolves: the interval at n excludes zero, at n − 1 not.
	for _, tc := range []struct{ m, s float64 }{{0.003, 0.01}, {0.02, 0.011}, {0.5, 0.2}} {
		n := seedsNeeded(tc.m, tc.s, 0.95)
		half := func(n int) float64 { return tQuantile(0.975, n-1) * tc.s / math.Sqrt(float64(n)) }
		if !(half(n) < tc.m) || n > 2 && half(n-1) < tc.m {
			t.Errorf("d̄ %v, s %v: %d seeds is not the least that resolves", tc.m, tc.s, n)
		}
	}
}

func TestCompare(t *testing.T) {
	ones := func(n int, v float64) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = v
		}
		return x
	}
	// a beats b on every seed and on many images: better.
	a := pairedSample{seeds: []uint64{1, 2, 3}, score: []float64{0.80, 0.82, 0.81}}
	b := pairedSample{seeds: []uint64{3, 2, 1}, score: []float64{0.70, 0.71, 0.72}}
	for range 3 {
		c := ones(500, 0)
		for i := range 400 {
			c[i] = 1
		}
		a.correct = append(a.correct, c)
		d := ones(500, 0)
		for i := range 355 {
			d[i] = 1
		}
		b.correct = append(b.correct, d)
	}
	c := compare(a, b, StatsConfig{}, 1)
	c.Pretext, c.Reference = "a", "b"
	c.describe(0.95)
	if c.Verdict != VerdictBetter || len(c.Seeds) != 3 || math.Abs(c.Diffs[0]-0.08) > 1e-12 || math.Abs(c.Diffs[2]-0.11) > 1e-12 {
		t.Errorf("verdict %q, seeds %v, diffs %v", c.Verdict, c.Seeds, c.Diffs)
	}
	if c.SeedsNeeded != nil || c.TestImages != 500 || c.Bootstrap == nil || !c.Bootstrap.ExcludesZero {
		t.Errorf("seeds needed %v, test images %d, bootstrap %+v", c.SeedsNeeded, c.TestImages, c.Bootstrap)
	}
	if !strings.Contains(c.Summary, "better than b — both intervals exclude zero") || !strings.Contains(c.Summary, "+10.0 points against b") {
		t.Errorf("summary %q", c.Summary)
	}
	// Reversed: worse.
	r := compare(b, a, StatsConfig{}, 1)
	if r.Verdict != VerdictWorse {
		t.Errorf("reversed: verdict %q", r.Verdict)
	}
	// Noisy seeds: not resolved, with a seeds-needed estimate.
	n := pairedSample{seeds: []uint64{1, 2, 3}, score: []float64{0.72, 0.69, 0.75}}
	u := compare(n, b, StatsConfig{}, 1)
	u.Pretext, u.Reference = "n", "b"
	u.describe(0.95)
	if u.Verdict != VerdictUnresolved || u.SeedsNeeded == nil || *u.SeedsNeeded <= 3 || u.Bootstrap != nil {
		t.Errorf("noisy: verdict %q, seeds needed %v, bootstrap %v", u.Verdict, u.SeedsNeeded, u.Bootstrap)
	}
	if !strings.Contains(u.Summary, "seeds would resolve") {
		t.Errorf("noisy summary %q", u.Summary)
	}
	// One common seed: no interval over seeds, not resolved.
	one := compare(pairedSample{seeds: []uint64{2}, score: []float64{0.9}}, b, StatsConfig{}, 1)
	if one.Verdict != VerdictUnresolved || one.T != nil || len(one.Seeds) != 1 {
		t.Errorf("one seed: %+v", one)
	}
	none := compare(pairedSample{seeds: []uint64{9}, score: []float64{0.9}}, b, StatsConfig{}, 1)
	if none.Verdict != VerdictNone {
		t.Errorf("no common seed: verdict %q", none.Verdict)
	}
}
