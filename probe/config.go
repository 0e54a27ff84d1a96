package probe

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// DefaultGrid is the L2 strengths λ the linear probe tries by default: a
// decade apart from 1e-5 to 1e-1. With N training samples, λ corresponds
// to scikit-learn's C = 1/(λ·N); for 50,000 samples the grid spans C from
// 2 (almost unregularised) to 2e-4 (strongly regularised).
var DefaultGrid = []float64{1e-5, 1e-4, 1e-3, 1e-2, 1e-1}

// DefaultKNN is the k-NN protocol of docs/design.md §6: k = 20 with T = 0.07,
// and k = 200 with T = 0.1.
var DefaultKNN = []KNNConfig{{K: 20, T: 0.07}, {K: 200, T: 0.1}}

// DefaultValFraction is the share of the training split carved out to
// choose λ when Config.ValFraction is 0.
const DefaultValFraction = 0.2

// Config is the probe protocol (docs/design.md §6); its zero value means the
// defaults. Load it from JSON; the field names are the JSON keys.
type Config struct {
	// Grid is the L2 strengths λ tried (each > 0, no repeats); empty means
	// DefaultGrid. The linear probe's loss is the mean cross-entropy plus
	// (λ/2)·‖W‖², the bias unpenalised.
	Grid []float64 `json:"grid,omitempty"`
	// L2 > 0 uses this λ and skips the grid search (and the carve).
	L2 float64 `json:"l2,omitempty"`
	// ValFraction is the share of the training split carved out, class by
	// class, to choose λ from Grid (0 < f < 1); 0 means
	// DefaultValFraction. In each class, round(f·count) samples, chosen
	// by a shuffle seeded with Seed, go to the validation carve, but at
	// least one sample of the class stays in the carve's training part.
	ValFraction float64 `json:"val_fraction,omitempty"`
	// MaxIter caps the L-BFGS iterations of each fit; 0 means
	// DefaultMaxIter.
	MaxIter int `json:"max_iter,omitempty"`
	// Tol is the fits' gradient tolerance (see LinearConfig.Tol); 0 means
	// DefaultTol.
	Tol float64 `json:"tol,omitempty"`
	// KNN lists the k-NN probes; empty means DefaultKNN.
	KNN []KNNConfig `json:"knn,omitempty"`
	// Seed chooses the validation carve.
	Seed uint64 `json:"seed"`
}

// KNNConfig is one k-NN probe: the K nearest training samples by cosine
// similarity s vote for their class with weight exp(s/T).
type KNNConfig struct {
	K int     `json:"k"` // neighbours, ≥ 1; more than the training samples means all of them
	T float64 `json:"t"` // temperature, > 0
}

// WithDefaults returns c with every zero field replaced by its default.
// Slices are copied.
func (c Config) WithDefaults() Config {
	if len(c.Grid) == 0 {
		c.Grid = DefaultGrid
	}
	c.Grid = slices.Clone(c.Grid)
	if c.ValFraction == 0 {
		c.ValFraction = DefaultValFraction
	}
	if c.MaxIter == 0 {
		c.MaxIter = DefaultMaxIter
	}
	if c.Tol == 0 {
		c.Tol = DefaultTol
	}
	if len(c.KNN) == 0 {
		c.KNN = DefaultKNN
	}
	c.KNN = slices.Clone(c.KNN)
	return c
}

// Validate reports every problem with c at once (errors.Join), or nil.
// Zero fields are valid: they mean the defaults.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("probe: config: "+format, args...))
	}
	for i, l := range c.Grid {
		if !(l > 0) || math.IsInf(l, 0) {
			bad("grid[%d] = %v: want a finite λ > 0", i, l)
		} else if j := slices.Index(c.Grid, l); j < i {
			bad("grid[%d] = %v repeats grid[%d]", i, l, j)
		}
	}
	if !(c.L2 >= 0) || math.IsInf(c.L2, 0) {
		bad("l2 = %v: want a finite λ > 0, or 0 to search the grid", c.L2)
	}
	if !(c.ValFraction >= 0 && c.ValFraction < 1) {
		bad("val_fraction = %v: want 0 < f < 1 (0 for %g)", c.ValFraction, DefaultValFraction)
	}
	if c.MaxIter < 0 {
		bad("max_iter = %d: want ≥ 1 (0 for %d)", c.MaxIter, DefaultMaxIter)
	}
	if !(c.Tol >= 0) || math.IsInf(c.Tol, 0) {
		bad("tol = %v: want a finite tolerance > 0 (0 for %g)", c.Tol, DefaultTol)
	}
	for i, k := range c.KNN {
		if k.K < 1 {
			bad("knn[%d]: k = %d: want ≥ 1", i, k.K)
		}
		if !(k.T > 0) || math.IsInf(k.T, 0) {
			bad("knn[%d]: t = %v: want a finite temperature > 0", i, k.T)
		}
		if j := slices.Index(c.KNN, k); j < i {
			bad("knn[%d] = {k %d, t %v} repeats knn[%d]", i, k.K, k.T, j)
		}
	}
	return errors.Join(errs...)
}
