package pipeline

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"
)

// StatsConfig configures the report's statistics; its zero value means
// the defaults.
type StatsConfig struct {
	// Level is the confidence level of the intervals, in (0, 1); default
	// 0.95.
	Level float64 `json:"level,omitempty"`
	// Resamples is the number of bootstrap resamples of the test images;
	// default 10,000.
	Resamples int `json:"resamples,omitempty"`
	// Seed seeds the bootstrap (each comparison draws from its own
	// stream, named by the pretexts, dataset and metric compared).
	Seed uint64 `json:"seed,omitempty"`
}

// Defaults of StatsConfig.
const (
	DefaultLevel     = 0.95
	DefaultResamples = 10000
	// MaxSeedsNeeded caps the seeds-needed estimate: a difference that
	// would need more is reported as needing more than this.
	MaxSeedsNeeded = 10000
)

func (c StatsConfig) withDefaults() StatsConfig {
	if c.Level == 0 {
		c.Level = DefaultLevel
	}
	if c.Resamples == 0 {
		c.Resamples = DefaultResamples
	}
	return c
}

// Validate reports every problem with c at once.
func (c StatsConfig) Validate() error {
	var errs []error
	if !(c.Level >= 0 && c.Level < 1) {
		errs = append(errs, fmt.Errorf("pipeline: stats: level %v: want 0 < level < 1 (0 for %g)", c.Level, DefaultLevel))
	}
	if c.Resamples < 0 || c.Resamples > 0 && c.Resamples < 100 {
		errs = append(errs, fmt.Errorf("pipeline: stats: resamples %d: want at least 100 (0 for %d)", c.Resamples, DefaultResamples))
	}
	return errors.Join(errs...)
}

// The methods as report.json states them (Report.Methods).
const (
	MethodT = "paired Student t over seeds: d_s = a_s − b_s for each seed s both rows have; " +
		"mean d̄ ± t_{(1+level)/2, n−1} · s_d/√n, s_d the sample standard deviation (n − 1); needs n ≥ 2"
	MethodBootstrap = "paired percentile bootstrap over test images: δ_i = mean over seeds (and draws) of " +
		"c_a,s(i) − c_b,s(i), c = 1 when the probe classified test image i correctly; resample the images with " +
		"replacement, take the mean of δ over each resample; the interval is the (1 − level)/2 and (1 + level)/2 " +
		"percentiles of the resampled means (linear interpolation between order statistics, as numpy.percentile)"
	MethodSeedsNeeded = "the least n ≥ 2 with t_{(1+level)/2, n−1} · s_d/√n < |d̄| at the observed d̄ and s_d, " +
		"found by counting n up; reported when the seed interval includes zero. It is the n at which the observed " +
		"difference would just be resolved, not a power calculation: a true difference of that size and spread " +
		"would then be resolved about half the time (80 % of the time needs about twice as many seeds)"
	MethodVerdict = "better (worse) when every interval there is excludes zero above (below) it; otherwise " +
		"not resolved. The seed interval measures training randomness with the test images fixed, the bootstrap " +
		"measures the finite test set with the encoders fixed; no correction for multiple comparisons"
)

// Interval is a confidence interval of a difference.
type Interval struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
	// ExcludesZero says the interval lies wholly above or below 0.
	ExcludesZero bool `json:"excludes_zero"`
}

func interval(lo, hi float64) *Interval {
	return &Interval{Lo: lo, Hi: hi, ExcludesZero: lo > 0 || hi < 0}
}

// tQuantile is the p-quantile of Student's t distribution with df
// degrees of freedom.
func tQuantile(p float64, df int) float64 {
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(df)}.Quantile(p)
}

// pairedT is the paired t interval of the per-seed differences d at the
// level: nil for fewer than two differences.
func pairedT(d []float64, level float64) *Interval {
	n := len(d)
	if n < 2 {
		return nil
	}
	m, s := meanSD(d)
	h := tQuantile((1+level)/2, n-1) * s / math.Sqrt(float64(n))
	return interval(m-h, m+h)
}

// meanSD is the mean and the sample standard deviation (n − 1; 0 for one
// value) of xs.
func meanSD(xs []float64) (mean, sd float64) {
	st := statOf(xs)
	return st.Mean, st.Std
}

// seedsNeeded is the least n ≥ 2 at which the t interval of n differences
// of mean m and standard deviation s would exclude zero, or 0 when no n up
// to MaxSeedsNeeded does (m = 0, or s large next to m).
func seedsNeeded(m, s, level float64) int {
	if m == 0 {
		return 0
	}
	if s == 0 {
		return 2
	}
	// t·s/√n < |m| ⇔ n > (t·s/m)²; the quantile falls as n grows, so
	// start at the bound for t at infinite degrees of freedom.
	z := distuv.UnitNormal.Quantile((1 + level) / 2)
	n := max(2, int(math.Floor(math.Pow(z*s/m, 2))))
	for ; n <= MaxSeedsNeeded; n++ {
		if tQuantile((1+level)/2, n-1)*s/math.Sqrt(float64(n)) < math.Abs(m) {
			return n
		}
	}
	return 0
}

// bootstrapMean is the percentile bootstrap interval at the level of the
// mean of delta over resamples of its entries, drawn from rng.
func bootstrapMean(delta []float64, level float64, resamples int, rng *rand.Rand) *Interval {
	n := len(delta)
	if n == 0 {
		return nil
	}
	means := make([]float64, resamples)
	for b := range means {
		var s float64
		for range n {
			s += delta[rng.IntN(n)]
		}
		means[b] = s / float64(n)
	}
	slices.Sort(means)
	return interval(percentile(means, (1-level)/2), percentile(means, (1+level)/2))
}

// percentile is the p-quantile of the sorted xs, interpolated linearly
// between order statistics (numpy.percentile's default).
func percentile(xs []float64, p float64) float64 {
	h := float64(len(xs)-1) * p
	i := int(math.Floor(h))
	if i+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[i] + (h-float64(i))*(xs[i+1]-xs[i])
}

// streamSeed names a comparison's bootstrap stream: the FNV-1a hash of
// its parts.
func streamSeed(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// pairedSample is one row's results on one dataset for a comparison: the
// score of each seed and, when every probe recorded it, the share of its
// probes (over low-shot draws) that got each test image right.
type pairedSample struct {
	seeds   []uint64
	score   []float64
	correct [][]float64 // [seed][test image]; nil when not recorded
}

// compare returns the paired comparison of a (the row) against b (the
// reference) over the seeds both have.
func compare(a, b pairedSample, cfg StatsConfig, stream uint64) Comparison {
	cfg = cfg.withDefaults()
	c := Comparison{}
	var ca, cb [][]float64
	for i, s := range a.seeds {
		j := slices.Index(b.seeds, s)
		if j < 0 {
			continue
		}
		c.Seeds = append(c.Seeds, s)
		c.Diffs = append(c.Diffs, a.score[i]-b.score[j])
		if a.correct != nil && b.correct != nil && a.correct[i] != nil && b.correct[j] != nil &&
			len(a.correct[i]) == len(b.correct[j]) {
			ca, cb = append(ca, a.correct[i]), append(cb, b.correct[j])
		}
	}
	n := len(c.Seeds)
	if n == 0 {
		c.Verdict = VerdictNone
		return c
	}
	c.Mean, c.SD = meanSD(c.Diffs)
	c.T = pairedT(c.Diffs, cfg.Level)
	if len(ca) == n {
		delta := make([]float64, len(ca[0]))
		for s := range ca {
			for i := range delta {
				delta[i] += (ca[s][i] - cb[s][i]) / float64(n)
			}
		}
		c.TestImages = len(delta)
		c.Bootstrap = bootstrapMean(delta, cfg.Level, cfg.Resamples, rand.New(rand.NewPCG(cfg.Seed, stream)))
	}
	ivs := []*Interval{c.T, c.Bootstrap}
	above, below, have := true, true, 0
	for _, iv := range ivs {
		if iv == nil {
			continue
		}
		have++
		above = above && iv.Lo > 0
		below = below && iv.Hi < 0
	}
	switch {
	case c.T == nil:
		c.Verdict = VerdictUnresolved // one seed: the spread over seeds is unknown
	case have > 0 && above:
		c.Verdict = VerdictBetter
	case have > 0 && below:
		c.Verdict = VerdictWorse
	default:
		c.Verdict = VerdictUnresolved
	}
	if c.T != nil && !c.T.ExcludesZero {
		need := seedsNeeded(c.Mean, c.SD, cfg.Level)
		c.SeedsNeeded = &need
	}
	return c
}

// Verdicts of a Comparison.
const (
	VerdictBetter     = "better"
	VerdictWorse      = "worse"
	VerdictUnresolved = "not resolved"
	VerdictNone       = "no common seeds"
)

// Comparison is a row's paired difference to a reference row (the
// random encoder, or the best row) on one dataset and score.
type Comparison struct {
	Pretext   string `json:"pretext"`
	Reference string `json:"reference"`
	Dataset   string `json:"dataset"`
	// Score names what is compared: "linear_top1", or
	// "low_shot_top1@F" for the low-shot probe with the fraction F of the
	// labels.
	Score string    `json:"score"`
	Seeds []uint64  `json:"seeds"` // the seeds both rows have, paired
	Diffs []float64 `json:"diffs"` // row − reference, per seed
	Mean  float64   `json:"mean"`  // mean of Diffs
	SD    float64   `json:"sd"`    // their sample standard deviation (n − 1)
	// T is the paired t interval over seeds (MethodT); null with one seed.
	T *Interval `json:"t_interval"`
	// Bootstrap is the paired bootstrap interval over test images
	// (MethodBootstrap); null when a probe did not record its correct
	// test images.
	Bootstrap  *Interval `json:"bootstrap_interval"`
	TestImages int       `json:"test_images,omitempty"` // the images resampled
	// Verdict is VerdictBetter, VerdictWorse, VerdictUnresolved or
	// VerdictNone (MethodVerdict).
	Verdict string `json:"verdict"`
	// SeedsNeeded, when the seed interval includes zero, is about how
	// many seeds would resolve a difference of this size at the observed
	// spread (MethodSeedsNeeded); 0 means more than MaxSeedsNeeded, or
	// no difference at all.
	SeedsNeeded *int `json:"seeds_needed,omitempty"`
	// Summary says all of it in words.
	Summary string `json:"summary"`
}

// describe sets c.Summary: the difference in points, its intervals at
// the level and the verdict, in words.
func (c *Comparison) describe(level float64) {
	lv := fmt.Sprintf("%g %%", 100*level)
	pts := func(x float64) string { return fmt.Sprintf("%+.1f", 100*x) }
	span := func(iv *Interval) string { return pts(iv.Lo) + " to " + pts(iv.Hi) }
	if len(c.Seeds) == 0 {
		c.Summary = fmt.Sprintf("%s and %s share no seed with results: no comparison.", c.Pretext, c.Reference)
		return
	}
	s := fmt.Sprintf("%s points against %s", pts(c.Mean), c.Reference)
	var ivs []string
	if c.T != nil {
		ivs = append(ivs, fmt.Sprintf("%s CI over %d seeds %s", lv, len(c.Seeds), span(c.T)))
	}
	if c.Bootstrap != nil {
		ivs = append(ivs, fmt.Sprintf("over %d test images %s", c.TestImages, span(c.Bootstrap)))
	}
	if len(ivs) > 0 {
		s += " (" + strings.Join(ivs, "; ") + ")"
	}
	s += ": "
	switch {
	case c.Verdict == VerdictBetter || c.Verdict == VerdictWorse:
		word := "better"
		if c.Verdict == VerdictWorse {
			word = "worse"
		}
		what := "the interval excludes zero"
		if c.T != nil && c.Bootstrap != nil {
			what = "both intervals exclude zero"
		}
		s += fmt.Sprintf("%s than %s — %s.", word, c.Reference, what)
	case c.T == nil:
		s += "not resolved — one seed gives no interval over seeds; run at least 2."
	case !c.T.ExcludesZero:
		s += "not resolved — the seed interval includes zero"
		switch need := *c.SeedsNeeded; {
		case c.Mean == 0:
			s += "; the seeds show no difference at all."
		case need == 0:
			s += fmt.Sprintf("; more than %d seeds would be needed at this spread.", MaxSeedsNeeded)
		default:
			s += fmt.Sprintf("; about %d seeds would resolve a difference this size at the observed spread.", need)
		}
	default:
		s += "not resolved — the seed interval excludes zero but the test-image interval does not: more test images, not more seeds, would resolve it."
	}
	c.Summary = s
}
