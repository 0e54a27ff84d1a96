package probe

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// EncodeCorrect returns the set of samples i with pred[i] == labels[i] as
// a bitset: sample i is bit i%8 (least significant first) of byte i/8,
// the last byte padded with zero bits, in standard base64 with padding
// (RFC 4648 §4). 2,000 samples take 336 characters. It panics if the
// lengths differ.
func EncodeCorrect(pred, labels []int) string {
	if len(pred) != len(labels) {
		panic(fmt.Sprintf("probe: EncodeCorrect: %d predictions for %d labels", len(pred), len(labels)))
	}
	b := make([]byte, (len(pred)+7)/8)
	for i, l := range labels {
		if pred[i] == l {
			b[i/8] |= 1 << (i % 8)
		}
	}
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeCorrect reads an EncodeCorrect bitset of n samples. It returns an
// error for invalid base64, a length other than ⌈n/8⌉ bytes, or a set
// padding bit.
func DecodeCorrect(s string, n int) ([]bool, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("probe: correct-set bitset: %w", err)
	}
	if n < 0 || len(b) != (n+7)/8 {
		return nil, fmt.Errorf("probe: correct-set bitset: %d bytes for %d samples, want %d", len(b), n, (n+7)/8)
	}
	if n%8 != 0 && b[len(b)-1]>>(n%8) != 0 {
		return nil, fmt.Errorf("probe: correct-set bitset: padding bits after sample %d are set", n-1)
	}
	out := make([]bool, n)
	for i := range out {
		out[i] = b[i/8]>>(i%8)&1 == 1
	}
	return out, nil
}

// Subset returns a class-balanced subset of f: perClass samples of each
// class (every sample of a class that has fewer), chosen by a shuffle of
// each class's samples seeded with seed, in f's order. The choice depends
// only on f's labels, perClass and seed: features of other encoders of the
// same images give the same subset. It panics if perClass < 1.
func Subset(f *Features, perClass int, seed uint64) *Features {
	if perClass < 1 {
		panic(fmt.Sprintf("probe: Subset: %d samples per class", perClass))
	}
	keep := subsetIndices(f.Labels, f.Classes, perClass, seed)
	out := &Features{N: len(keep), D: f.D, X: make([]float32, 0, len(keep)*f.D), Labels: make([]int, 0, len(keep)), Classes: f.Classes}
	for _, i := range keep {
		out.X = append(out.X, f.X[i*f.D:(i+1)*f.D]...)
		out.Labels = append(out.Labels, f.Labels[i])
	}
	return out
}

// subsetIndices are the indices Subset keeps, ascending.
func subsetIndices(labels []int, classes, perClass int, seed uint64) []int {
	byClass := make([][]int, classes)
	for i, l := range labels {
		byClass[l] = append(byClass[l], i)
	}
	rng := rand.New(rand.NewPCG(seed, 0x7077737562736574)) // "pwsubset"
	var keep []int
	for _, idx := range byClass {
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		keep = append(keep, idx[:min(perClass, len(idx))]...)
	}
	slices.Sort(keep)
	return keep
}

// Defaults of LowShotConfig.
var (
	// DefaultLowShotFractions are 1 % and 10 % of the labels; 100 % is
	// the full probe (Evaluate).
	DefaultLowShotFractions = []float64{0.01, 0.1}
)

// DefaultCarveMin is LowShotConfig.CarveMin's default.
const DefaultCarveMin = 20

// LowShotConfig configures LowShot; its zero value means the defaults.
type LowShotConfig struct {
	// Fractions are the shares f of the training split whose labels the
	// probe may use, each in (0, 1), no repeats; default 0.01 and 0.1.
	Fractions []float64 `json:"fractions,omitempty"`
	// Draws are the number of subsets drawn for each fraction (≥ 1), in
	// Fractions' order; default (empty) DefaultDraws(f) for each.
	Draws []int `json:"draws,omitempty"`
	// CarveMin: a subset with at least CarveMin samples of every class
	// chooses λ from the probe's grid on a carve of itself, as Evaluate
	// does; a smaller one, too small to carve, uses λ = 1/n for its n
	// samples (scikit-learn's default C = 1). Default 20.
	CarveMin int `json:"carve_min,omitempty"`
}

// DefaultDraws is the number of subsets drawn for the fraction f when
// LowShotConfig.Draws is empty: 5 below 5 % (the smallest subsets vary
// most), else 3.
func DefaultDraws(f float64) int {
	if f < 0.05 {
		return 5
	}
	return 3
}

// WithDefaults returns c with its zero fields replaced by the defaults.
// Slices are copied.
func (c LowShotConfig) WithDefaults() LowShotConfig {
	if len(c.Fractions) == 0 {
		c.Fractions = DefaultLowShotFractions
	}
	c.Fractions = slices.Clone(c.Fractions)
	if len(c.Draws) == 0 {
		c.Draws = nil
		for _, f := range c.Fractions {
			c.Draws = append(c.Draws, DefaultDraws(f))
		}
	}
	c.Draws = slices.Clone(c.Draws)
	if c.CarveMin == 0 {
		c.CarveMin = DefaultCarveMin
	}
	return c
}

// Validate reports every problem with c at once, or nil.
func (c LowShotConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("probe: low-shot: "+format, args...))
	}
	for i, f := range c.Fractions {
		if !(f > 0 && f < 1) {
			bad("fractions[%d] = %v: want 0 < f < 1 (the full probe is 100 %%)", i, f)
		} else if j := slices.Index(c.Fractions, f); j < i {
			bad("fractions[%d] = %v repeats fractions[%d]", i, f, j)
		}
	}
	fractions := len(c.Fractions)
	if fractions == 0 {
		fractions = len(DefaultLowShotFractions)
	}
	if len(c.Draws) > 0 && len(c.Draws) != fractions {
		bad("%d draws for %d fractions: give one per fraction, or none", len(c.Draws), fractions)
	}
	for i, d := range c.Draws {
		if d < 1 {
			bad("draws[%d] = %d: want ≥ 1", i, d)
		}
	}
	if c.CarveMin < 0 {
		bad("carve_min = %d: want ≥ 2 (0 for %d)", c.CarveMin, DefaultCarveMin)
	} else if c.CarveMin == 1 {
		bad("carve_min = 1: a carve needs at least 2 samples of a class (0 for %d)", DefaultCarveMin)
	}
	return errors.Join(errs...)
}

// LowShotResult is the linear probe fitted on subsets of the training
// split with a share of its labels.
type LowShotResult struct {
	Fraction float64 `json:"fraction"`
	// PerClass is the samples of each class in a subset:
	// max(1, round(Fraction·N/K)) for N training samples of K classes
	// (fewer for a class that has fewer).
	PerClass int           `json:"per_class"`
	Top1     float64       `json:"top1"` // mean over the draws
	Draws    []LowShotDraw `json:"draws"`
}

// LowShotDraw is one subset's probe.
type LowShotDraw struct {
	Seed uint64  `json:"seed"` // the subset's seed (Subset), also its carve's
	N    int     `json:"n"`    // samples in the subset
	L2   float64 `json:"l2"`
	// L2Chosen says how λ was set: "carve" (chosen from the grid on a
	// carve of the subset) or "fixed" (1/N: the subset is too small to
	// carve).
	L2Chosen  string  `json:"l2_chosen"`
	Top1      float64 `json:"top1"`
	Converged bool    `json:"converged"`
	// Correct is the test samples classified correctly (EncodeCorrect).
	Correct string `json:"linear_correct"`
}

// LowShotSeed is the seed of draw d (from 0) of the subsets of fraction f
// for probe seed seed. Draws depend on the seed, the fraction and the
// draw, not on the other fractions, so every encoder probed with the same
// seed is fitted on the same images.
func LowShotSeed(seed uint64, f float64, d int) uint64 {
	return splitmix(splitmix(splitmix(seed)^math.Float64bits(f)) ^ uint64(d))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// LowShot fits the linear probe of cfg on class-balanced subsets of train
// (Subset; LowShotSeed seeds them from cfg.Seed) and scores it on test:
// for each fraction f of lc, lc's draws of max(1, round(f·N/K)) samples of
// each of the K classes present. λ is chosen from cfg's grid on a carve of
// the subset (as Evaluate does) when every class has at least CarveMin
// samples in it, else fixed at 1/n. Standardisation and the solver are
// Evaluate's. The errors are Evaluate's and lc's.
func LowShot(ctx context.Context, train, test *Features, lc LowShotConfig, cfg Config, p Progress) ([]LowShotResult, error) {
	if p == nil {
		p = NoProgress{}
	}
	if err := errors.Join(cfg.Validate(), lc.Validate()); err != nil {
		return nil, err
	}
	cfg, lc = cfg.WithDefaults(), lc.WithDefaults()
	if err := train.Check(); err != nil {
		return nil, fmt.Errorf("probe: train features: %w", err)
	}
	counts := make([]int, train.Classes)
	for _, l := range train.Labels {
		counts[l]++
	}
	present := len(counts) - countZero(counts)
	var out []LowShotResult
	for i, f := range lc.Fractions {
		per := max(1, int(math.Round(f*float64(train.N)/float64(max(present, 1)))))
		r := LowShotResult{Fraction: f, PerClass: per}
		for d := range lc.Draws[i] {
			seed := LowShotSeed(cfg.Seed, f, d)
			sub := Subset(train, per, seed)
			c := cfg
			c.Seed = seed
			chosen := "carve"
			if least(counts, per) < lc.CarveMin {
				c.L2, chosen = 1/float64(sub.N), "fixed"
			}
			res, err := evaluateLinear(ctx, sub, test, c, p)
			if err != nil {
				return nil, fmt.Errorf("probe: low-shot %g, draw %d: %w", f, d+1, err)
			}
			r.Draws = append(r.Draws, LowShotDraw{Seed: seed, N: sub.N, L2: res.Protocol.L2, L2Chosen: chosen,
				Top1: res.LinearTop1, Converged: res.Protocol.Converged, Correct: res.Correct})
			r.Top1 += res.LinearTop1
		}
		r.Top1 /= float64(len(r.Draws))
		out = append(out, r)
	}
	return out, nil
}

// least is the fewest samples of a present class in a subset of perClass
// samples of each class, for the class counts counts.
func least(counts []int, perClass int) int {
	m := math.MaxInt
	for _, n := range counts {
		if n > 0 {
			m = min(m, n, perClass)
		}
	}
	return m
}
