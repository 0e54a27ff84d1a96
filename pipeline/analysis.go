package pipeline

import (
	"fmt"
	"math"
	"slices"

	"github.com/patchwise-ml/patchwise/pretext"
	"github.com/patchwise-ml/patchwise/probe"
)

// Scores a Comparison compares.
const (
	ScoreLinear = "linear_top1"
	// ScoreLowShot is the prefix of the low-shot scores:
	// "low_shot_top1@0.01" for 1 % of the labels.
	ScoreLowShot = "low_shot_top1@"
)

// The methods report.json states besides the statistics' (Methods).
const (
	MethodBest = "the row with the highest mean linear top-1 on the dataset among the rows that pretrain " +
		"without labels (the random encoder and the raw pixels included, the supervised upper bound not)"
	MethodPairing = "seed s gives every row the same initial encoder weights (the encoder is drawn first " +
		"from the seed, by pretraining as by the random baseline; the tied autoencoders scale each kernel by " +
		"a constant for their decoder, which the batch norm after it undoes, so their encoder computes the " +
		"same function) and the same order of training images " +
		"(the loader's permutation depends on the seed and the dataset only), and the probe of seed s carves " +
		"the same validation images and draws the same low-shot subsets for every row; a comparison pairs " +
		"the seeds both rows have, and for the bootstrap the same test images"
	MethodFLOPs = "the products (GEMMs and convolutions) of one training step, forward and backward, counted " +
		"as the kernels run them (nn/kernel.CountFLOPs: 2·M·N·K per GEMM, 2·N·Ho·Wo·K²·Cin·Cout per " +
		"convolution pass, with 4 taps for K² where a decoder's 3×3 convolution of a 2× upsampled map runs " +
		"as four 2×2 ones) on the first batch, times the steps; elementwise work, batch norm and pooling " +
		"are not counted"
	MethodLayers = "every block of each encoder, its map average-pooled to p×p bins (PyTorch's " +
		"AdaptiveAvgPool2d) with p the integer nearest √(F/width), at least 1 and at most the map's side, so " +
		"that every block gives about F features; the linear probe of the run's protocol on each, no k-NN"
	MethodLowShot = "the linear probe fitted on class-balanced subsets of the training split: max(1, " +
		"round(f·N/K)) images of each of the K classes, several draws per fraction seeded by the probe seed, " +
		"the fraction and the draw; λ chosen on a carve of the subset as the full probe does when every class " +
		"has at least carve_min images in it, else λ = 1/n (scikit-learn's C = 1); the score of a seed is the " +
		"mean over its draws"
)

// Methods states how report.json's statistics were computed.
type Methods struct {
	Level       float64 `json:"level"`     // confidence level of every interval
	Resamples   int     `json:"resamples"` // bootstrap resamples
	Seed        uint64  `json:"seed"`      // the bootstrap's seed
	T           string  `json:"t_interval"`
	Bootstrap   string  `json:"bootstrap_interval"`
	SeedsNeeded string  `json:"seeds_needed"`
	Verdict     string  `json:"verdict"`
	Best        string  `json:"best"`
	Pairing     string  `json:"pairing"`
	FLOPs       string  `json:"flops"`
	Layers      string  `json:"layers,omitempty"`
	LowShot     string  `json:"low_shot,omitempty"`
}

// LayerRow is the layer-wise probe of one row on one dataset over seeds.
type LayerRow struct {
	Pretext  string      `json:"pretext"`
	Dataset  string      `json:"dataset"`
	Features int         `json:"features"`
	Stages   []LayerStat `json:"stages"`
	// Best is the block of the highest mean top-1.
	Best int `json:"best_stage"`
}

// LayerStat is one block's linear probe over seeds.
type LayerStat struct {
	Stage      int  `json:"stage"`
	Pooled     int  `json:"pooled"`
	FeatureDim int  `json:"feature_dim"`
	Top1       Stat `json:"linear_top1"`
}

// LowShotRow is the low-shot probe of one row on one dataset over seeds,
// with the full probe as the fraction 1.
type LowShotRow struct {
	Pretext string        `json:"pretext"`
	Dataset string        `json:"dataset"`
	Points  []LowShotStat `json:"points"`
}

// LowShotStat is the linear probe with a share of the labels over seeds
// (each seed's score the mean over its draws).
type LowShotStat struct {
	Fraction float64 `json:"fraction"`
	PerClass int     `json:"per_class"` // images of each class; 0 for the whole split (fraction 1)
	Draws    int     `json:"draws"`     // subsets per seed
	Top1     Stat    `json:"top1"`
}

// Budget is what the pretraining of one pretext cost, per seed.
type Budget struct {
	Pretext   string  `json:"pretext"`
	Optimizer string  `json:"optimizer"`
	LR        float64 `json:"lr"`
	Batch     int     `json:"batch"`
	Steps     int     `json:"steps"`
	// Images is the samples drawn, steps × batch: source images, with
	// repeats across epochs.
	Images int64 `json:"images"`
	// Views is the images the sampler made from them (crops, tiles,
	// rotations), Images × ViewsPerSample.
	Views          int64 `json:"views"`
	ViewsPerSample int   `json:"views_per_sample"`
	// FLOPsPerStep and FLOPs are the counted products of a step and of
	// the whole pretraining (Methods.FLOPs).
	FLOPsPerStep float64 `json:"flops_per_step"`
	FLOPs        float64 `json:"flops"`
	// Seconds is the wall time of the pretraining over seeds, in
	// report.md and report.html; report.json holds no wall times.
	Seconds Stat `json:"-"`
	// SweepFLOPs and SweepSeconds are the sweep's extra cost: its
	// pretrainings that are not the first seed's own.
	SweepFLOPs   float64 `json:"sweep_flops,omitempty"`
	SweepSeconds float64 `json:"-"`
}

// analyse computes the report's comparisons, layer-wise and low-shot
// rows and methods from its rows and entries.
func (rep *Report) analyse() {
	sc := rep.Config.Stats.withDefaults()
	rep.Methods = Methods{Level: sc.Level, Resamples: sc.Resamples, Seed: sc.Seed,
		T: MethodT, Bootstrap: MethodBootstrap, SeedsNeeded: MethodSeedsNeeded, Verdict: MethodVerdict,
		Best: MethodBest, Pairing: MethodPairing, FLOPs: MethodFLOPs}
	if rep.Config.Layers != nil {
		rep.Methods.Layers = MethodLayers
	}
	if rep.Config.LowShot != nil {
		rep.Methods.LowShot = MethodLowShot
	}
	rep.Comparisons = []Comparison{}
	rep.Budgets = []Budget{}
	for _, d := range rep.probed() {
		lin := func(name string) pairedSample { return rep.sample(name, d.Name, ScoreLinear) }
		add := func(name, ref, score string, a, b pairedSample) {
			c := compare(a, b, sc, streamSeed(d.Name, score, name, ref))
			c.Pretext, c.Reference, c.Dataset, c.Score = name, ref, d.Name, score
			c.describe(sc.Level)
			rep.Comparisons = append(rep.Comparisons, c)
		}
		if slices.Contains(rep.Config.Pretexts, BaselineRandom) {
			ref := lin(BaselineRandom)
			for _, name := range rep.Config.Pretexts {
				if name != BaselineRandom {
					add(name, BaselineRandom, ScoreLinear, lin(name), ref)
				}
			}
		}
		if best := rep.best(d.Name); best != "" && best != BaselineRandom {
			ref := lin(best)
			for _, name := range rep.Config.Pretexts {
				if name != best {
					add(name, best, ScoreLinear, lin(name), ref)
				}
			}
		}
		if slices.Contains(rep.Config.Pretexts, BaselineRandom) {
			for _, f := range rep.fractions(d.Name) {
				score := fmt.Sprintf("%s%g", ScoreLowShot, f)
				ref := rep.sample(BaselineRandom, d.Name, score)
				for _, name := range rep.Config.Pretexts {
					if name != BaselineRandom {
						add(name, BaselineRandom, score, rep.sample(name, d.Name, score), ref)
					}
				}
			}
		}
		for _, name := range rep.Config.Pretexts {
			if lr := rep.layerRow(name, d.Name); lr != nil {
				rep.Layers = append(rep.Layers, *lr)
			}
			if ls := rep.lowShotRow(name, d.Name); ls != nil {
				rep.LowShot = append(rep.LowShot, *ls)
			}
		}
	}
}

// probesOf returns the probes of pretext name on dataset ds, one per seed
// with results, and their seeds.
func (rep *Report) probesOf(name, ds string) (seeds []uint64, probes []ReportProbe) {
	for _, e := range rep.Entries {
		if e.Pretext != name || e.Error != "" {
			continue
		}
		for _, p := range e.Probes {
			if p.Dataset == ds && p.Result != nil {
				seeds, probes = append(seeds, e.Seed), append(probes, p)
			}
		}
	}
	return seeds, probes
}

// sample gathers the score of pretext name on dataset ds by seed, with
// its test images' correctness where every probe recorded it.
func (rep *Report) sample(name, ds, score string) pairedSample {
	var s pairedSample
	seeds, probes := rep.probesOf(name, ds)
	complete := true
	for i, p := range probes {
		n := p.Result.Protocol.TestN
		switch score {
		case ScoreLinear:
			s.seeds = append(s.seeds, seeds[i])
			s.score = append(s.score, p.Result.LinearTop1)
			c, err := probe.DecodeCorrect(p.Result.Correct, n)
			if err != nil || p.Result.Correct == "" {
				complete = false
			}
			s.correct = append(s.correct, boolsToFloats(c))
		default:
			var f float64
			if _, err := fmt.Sscanf(score, ScoreLowShot+"%g", &f); err != nil {
				return pairedSample{}
			}
			j := slices.IndexFunc(p.LowShot, func(r probe.LowShotResult) bool { return r.Fraction == f })
			if j < 0 {
				continue
			}
			r := p.LowShot[j]
			s.seeds = append(s.seeds, seeds[i])
			s.score = append(s.score, r.Top1)
			mean := make([]float64, n)
			for _, d := range r.Draws {
				c, err := probe.DecodeCorrect(d.Correct, n)
				if err != nil {
					complete = false
					break
				}
				for k, ok := range c {
					if ok {
						mean[k] += 1 / float64(len(r.Draws))
					}
				}
			}
			s.correct = append(s.correct, mean)
		}
	}
	if !complete {
		s.correct = nil
	}
	return s
}

func boolsToFloats(b []bool) []float64 {
	out := make([]float64, len(b))
	for i, v := range b {
		if v {
			out[i] = 1
		}
	}
	return out
}

// best is the row with the highest mean linear top-1 on dataset ds among
// the rows that pretrain without labels (MethodBest); "" when none has a
// result.
func (rep *Report) best(ds string) string {
	best, top := "", math.Inf(-1)
	for _, r := range rep.Rows {
		if r.Dataset != ds || r.Seeds == 0 {
			continue
		}
		if spec, err := pretext.Lookup(r.Pretext); err == nil && spec.Labels {
			continue
		}
		if r.Linear.Mean > top {
			best, top = r.Pretext, r.Linear.Mean
		}
	}
	return best
}

// fractions lists the low-shot fractions probed on dataset ds, in order.
func (rep *Report) fractions(ds string) []float64 {
	var fs []float64
	for _, e := range rep.Entries {
		for _, p := range e.Probes {
			if p.Dataset != ds {
				continue
			}
			for _, r := range p.LowShot {
				if !slices.Contains(fs, r.Fraction) {
					fs = append(fs, r.Fraction)
				}
			}
		}
	}
	slices.Sort(fs)
	return fs
}

// layerRow summarises the layer-wise probes of name on ds over seeds; nil
// when there are none.
func (rep *Report) layerRow(name, ds string) *LayerRow {
	_, probes := rep.probesOf(name, ds)
	var row *LayerRow
	var tops [][]float64
	for _, p := range probes {
		if p.Layers == nil {
			continue
		}
		if row == nil {
			row = &LayerRow{Pretext: name, Dataset: ds, Features: p.Layers.Features}
			for _, s := range p.Layers.Stages {
				row.Stages = append(row.Stages, LayerStat{Stage: s.Stage, Pooled: s.Pooled, FeatureDim: s.FeatureDim})
			}
			tops = make([][]float64, len(p.Layers.Stages))
		}
		for k, s := range p.Layers.Stages {
			if k < len(tops) {
				tops[k] = append(tops[k], s.Top1)
			}
		}
	}
	if row == nil {
		return nil
	}
	top := math.Inf(-1)
	for k := range row.Stages {
		row.Stages[k].Top1 = statOf(tops[k])
		if m := row.Stages[k].Top1.Mean; m > top {
			top, row.Best = m, row.Stages[k].Stage
		}
	}
	return row
}

// lowShotRow summarises the low-shot probes of name on ds over seeds,
// with the full probe as the fraction 1; nil when there are none.
func (rep *Report) lowShotRow(name, ds string) *LowShotRow {
	fs := rep.fractions(ds)
	if len(fs) == 0 {
		return nil
	}
	_, probes := rep.probesOf(name, ds)
	row := &LowShotRow{Pretext: name, Dataset: ds}
	for _, f := range fs {
		st := LowShotStat{Fraction: f}
		var xs []float64
		for _, p := range probes {
			for _, r := range p.LowShot {
				if r.Fraction == f {
					xs = append(xs, r.Top1)
					st.PerClass, st.Draws = r.PerClass, len(r.Draws)
				}
			}
		}
		st.Top1 = statOf(xs)
		row.Points = append(row.Points, st)
	}
	var full []float64
	for _, p := range probes {
		full = append(full, p.Result.LinearTop1)
	}
	row.Points = append(row.Points, LowShotStat{Fraction: 1, Draws: 1, Top1: statOf(full)})
	return row
}

// addBudgets fills the report's budgets from the step costs of the
// trained pretexts, their trainings and their sweeps.
func (rep *Report) addBudgets(costs map[string]*StepCost, sweeps []SweepRecord) {
	rep.Sweeps = sweeps
	rep.Budgets = []Budget{}
	for _, name := range rep.Config.Pretexts {
		c := costs[name]
		if c == nil {
			continue
		}
		b := Budget{Pretext: name, ViewsPerSample: c.Views, FLOPsPerStep: c.FLOPs}
		var secs []float64
		for _, e := range rep.Entries {
			if t := e.Training; e.Pretext == name && t != nil {
				b.Optimizer, b.LR, b.Batch, b.Steps = t.Optimizer, t.LR, t.Batch, t.Steps
				secs = append(secs, t.Seconds)
			}
		}
		b.Seconds = statOf(secs)
		b.Images = int64(b.Steps) * int64(b.Batch)
		b.Views = b.Images * int64(c.Views)
		b.FLOPs = float64(b.Steps) * c.FLOPs
		for _, s := range sweeps {
			if s.Pretext != name {
				continue
			}
			for _, tr := range s.Trials {
				if !tr.Reused || tr.LR != s.Chosen {
					b.SweepFLOPs += float64(tr.Steps) * c.FLOPs
					b.SweepSeconds += tr.Seconds
				}
			}
		}
		rep.Budgets = append(rep.Budgets, b)
	}
}
