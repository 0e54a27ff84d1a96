package probe

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Standardisation is how the linear probe's features are standardised, as
// Protocol.Standardise records it.
const Standardisation = "per feature: (x − mean)/std with the training split's mean and population std " +
	"(during the grid search, those of the carve's training part); std < 1e-8 → 1"

// Solver describes the linear probe's fit, as Protocol.Solver records it.
const Solver = "multinomial logistic regression with bias; loss = mean cross-entropy + (λ/2)·‖W‖², bias unpenalised " +
	"(scikit-learn C = 1/(λ·N)); L-BFGS (gonum/optimize, Moré–Thuente line search) until max|gradient| ≤ tol"

// KNNMetric describes the k-NN probes, as Protocol.KNNMetric records it.
const KNNMetric = "cosine similarity s on L2-normalised raw (unstandardised) features; the k most similar training " +
	"samples vote with weight exp(s/T); ties go to the lower training index, then to the lower class index"

// Result is the outcome of one probe. The JSON field names go into
// report.json verbatim.
type Result struct {
	LinearTop1 float64     `json:"linear_top1"` // linear probe top-1 accuracy on the test features, in [0, 1]
	KNN20Top1  float64     `json:"knn20_top1"`  // top-1 of the first KNN entry with K = 20; 0 when there is none
	KNN200Top1 float64     `json:"knn200_top1"` // top-1 of the first KNN entry with K = 200; 0 when there is none
	KNN        []KNNResult `json:"knn"`         // every k-NN probe, in Config.KNN order
	PerClass   []float64   `json:"per_class"`   // [Classes]: linear probe accuracy on each class's test samples; 0 for a class with none
	Confusion  [][]int     `json:"confusion"`   // [Classes][Classes]: linear probe counts, [true class][predicted class]
	// Correct marks the test samples the linear probe classified
	// correctly, so that a report can pair test images across encoders
	// (a bootstrap over images): a bitset in the test features' order
	// (the split's record order), EncodeCorrect's format. Empty in
	// results written before it existed.
	Correct string `json:"linear_correct,omitempty"`
	// Classes are the class names in label order: the names of PerClass's
	// entries and of Confusion's rows and columns. Evaluate leaves it nil,
	// since features carry label indices only; the caller that knows the
	// dataset sets it (pipeline.Probe does).
	Classes  []string `json:"classes,omitempty"`
	Protocol Protocol `json:"protocol"`
}

// KNNResult is the outcome of one k-NN probe.
type KNNResult struct {
	K     int     `json:"k"`      // as configured
	T     float64 `json:"t"`      // temperature
	KUsed int     `json:"k_used"` // min(K, training samples)
	Top1  float64 `json:"top1"`   // top-1 accuracy on the test features, in [0, 1]
}

// Protocol records every setting behind a Result. Evaluate fills all but
// Stage, Pooled, Train, Test and Encoder, which describe where the features
// came from and are the caller's to fill.
type Protocol struct {
	FeatureDim  int    `json:"feature_dim"`
	TrainN      int    `json:"train_n"` // training samples (the k-NN reference set, and the final fit's data)
	TestN       int    `json:"test_n"`
	Classes     int    `json:"classes"`
	Standardise string `json:"standardise"` // Standardisation
	Solver      string `json:"solver"`      // Solver

	L2          float64   `json:"l2"`            // λ of the final fit
	Grid        []float64 `json:"grid"`          // λ tried; empty when Config.L2 or a one-entry grid fixed λ
	GridValTop1 []float64 `json:"grid_val_top1"` // validation top-1 of each Grid entry

	GridIterations []int  `json:"grid_iterations"` // L-BFGS iterations of each Grid entry's fit
	GridConverged  []bool `json:"grid_converged"`  // whether each Grid entry's fit reached Tol

	ValFraction float64 `json:"val_fraction"` // 0 when there was no grid search
	ValN        int     `json:"val_n"`        // samples in the validation carve
	MaxIter     int     `json:"max_iter"`
	Tol         float64 `json:"tol"`
	Iterations  int     `json:"iterations"` // L-BFGS iterations of the final fit
	Converged   bool    `json:"converged"`  // the final fit reached Tol
	Status      string  `json:"status"`     // how the final fit stopped
	Loss        float64 `json:"loss"`       // its final objective
	GradNorm    float64 `json:"grad_norm"`  // its final max |gradient component|

	KNN       []KNNConfig `json:"knn"`
	KNNMetric string      `json:"knn_metric"` // KNNMetric
	Seed      uint64      `json:"seed"`

	Stage  int    `json:"stage"`  // encoder stage the features came from
	Pooled int    `json:"pooled"` // side of the pooled feature map
	Train  string `json:"train"`  // training dataset ID
	Test   string `json:"test"`   // test dataset ID
	// TestSplit is the split of the test dataset that scored the probes:
	// "test", or "val" for a dataset without a test split.
	TestSplit string `json:"test_split"`
	Encoder   string `json:"encoder"` // content hash of the encoder's weights, or "pixels"
}

// Evaluate runs the linear probe and the k-NN probes of cfg, with train's
// features as the training (and reference) set and test's as the queries.
//
// The linear probe (see FitLinear) uses cfg.L2 when it is set, or the only
// λ of a one-entry grid; otherwise it carves a validation set from train
// (see Config.ValFraction), fits every λ of the grid on the rest — from the
// largest λ down, each fit starting from the previous one's weights —,
// chooses the λ of the best validation top-1 (the largest λ among equal
// ones), and fits train with it, starting from that λ's carve fit. The
// result is the same for the same inputs and seed, whatever the number of
// cores.
//
// Errors: an invalid cfg; malformed features (see Features.Check);
// different D or Classes in train and test; fewer than two classes
// present in train; non-finite features (wrapping ErrNonFinite); a
// training split too small to carve; ctx's error when ctx is done.
func Evaluate(ctx context.Context, train, test *Features, cfg Config, p Progress) (*Result, error) {
	if p == nil {
		p = NoProgress{}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	res, err := evaluateLinear(ctx, train, test, cfg, p)
	if err != nil {
		return nil, err
	}
	preds, kUsed, err := knnClassify(ctx, train, test, cfg.KNN, p)
	if err != nil {
		return nil, err
	}
	res.KNN = make([]KNNResult, len(cfg.KNN))
	for i, c := range cfg.KNN {
		res.KNN[i] = KNNResult{K: c.K, T: c.T, KUsed: kUsed[i], Top1: top1(preds[i], test.Labels)}
	}
	if i := slices.IndexFunc(res.KNN, func(r KNNResult) bool { return r.K == 20 }); i >= 0 {
		res.KNN20Top1 = res.KNN[i].Top1
	}
	if i := slices.IndexFunc(res.KNN, func(r KNNResult) bool { return r.K == 200 }); i >= 0 {
		res.KNN200Top1 = res.KNN[i].Top1
	}
	return res, nil
}

// EvaluateLinear is Evaluate without the k-NN probes: the result's KNN is
// empty and its k-NN top-1 fields are 0; its Protocol.KNN lists none.
func EvaluateLinear(ctx context.Context, train, test *Features, cfg Config, p Progress) (*Result, error) {
	if p == nil {
		p = NoProgress{}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	res, err := evaluateLinear(ctx, train, test, cfg, p)
	if err != nil {
		return nil, err
	}
	res.Protocol.KNN, res.Protocol.KNNMetric = nil, ""
	return res, nil
}

// evaluateLinear checks the features and runs the linear probe of the
// resolved cfg.
func evaluateLinear(ctx context.Context, train, test *Features, cfg Config, p Progress) (*Result, error) {
	if err := train.Check(); err != nil {
		return nil, fmt.Errorf("probe: train features: %w", err)
	}
	if err := test.Check(); err != nil {
		return nil, fmt.Errorf("probe: test features: %w", err)
	}
	if train.D != test.D {
		return nil, fmt.Errorf("probe: train features have dimension %d, test features %d", train.D, test.D)
	}
	if train.Classes != test.Classes {
		return nil, fmt.Errorf("probe: train features have %d classes, test features %d", train.Classes, test.Classes)
	}
	counts := make([]int, train.Classes)
	for _, l := range train.Labels {
		counts[l]++
	}
	if present := len(counts) - countZero(counts); present < 2 {
		return nil, fmt.Errorf("probe: train features: %d class(es) present in %d samples: a probe needs at least 2", present, train.N)
	}
	if err := train.CheckFinite(); err != nil {
		return nil, fmt.Errorf("probe: train features: %w", err)
	}
	if err := test.CheckFinite(); err != nil {
		return nil, fmt.Errorf("probe: test features: %w", err)
	}

	res := &Result{Protocol: Protocol{
		FeatureDim: train.D, TrainN: train.N, TestN: test.N, Classes: train.Classes,
		Standardise: Standardisation, Solver: Solver,
		MaxIter: cfg.MaxIter, Tol: cfg.Tol,
		KNN: cfg.KNN, KNNMetric: KNNMetric, Seed: cfg.Seed,
	}}
	model, err := fitProbe(ctx, train, cfg, &res.Protocol, p)
	if err != nil {
		return nil, err
	}
	pred, err := model.Predict(test)
	if err != nil {
		return nil, err
	}
	res.LinearTop1 = top1(pred, test.Labels)
	res.Confusion = make([][]int, test.Classes)
	for c := range res.Confusion {
		res.Confusion[c] = make([]int, test.Classes)
	}
	for i, l := range test.Labels {
		res.Confusion[l][pred[i]]++
	}
	res.PerClass = make([]float64, test.Classes)
	for c, row := range res.Confusion {
		if n := sum(row); n > 0 {
			res.PerClass[c] = float64(row[c]) / float64(n)
		}
	}
	res.Correct = EncodeCorrect(pred, test.Labels)
	return res, nil
}

func countZero(s []int) int {
	n := 0
	for _, v := range s {
		if v == 0 {
			n++
		}
	}
	return n
}

func sum(s []int) int {
	n := 0
	for _, v := range s {
		n += v
	}
	return n
}

// top1 returns the fraction of pred equal to labels.
func top1(pred, labels []int) float64 {
	ok := 0
	for i, l := range labels {
		if pred[i] == l {
			ok++
		}
	}
	return float64(ok) / float64(len(labels))
}

// fitProbe fits the linear probe of Evaluate on train, choosing λ as
// Evaluate describes, and records the choice in pr.
func fitProbe(ctx context.Context, train *Features, cfg Config, pr *Protocol, p Progress) (*Linear, error) {
	lin := LinearConfig{MaxIter: cfg.MaxIter, Tol: cfg.Tol}
	search := cfg.L2 == 0 && len(cfg.Grid) > 1
	fits := 1
	if search {
		fits += len(cfg.Grid)
	}
	p.Start("linear probe", fits)
	defer p.Done()
	switch {
	case cfg.L2 > 0:
		lin.L2 = cfg.L2
	case len(cfg.Grid) == 1:
		lin.L2 = cfg.Grid[0]
	case search:
		fitTrain, val := carve(train, cfg.ValFraction, cfg.Seed)
		if val.N == 0 {
			return nil, fmt.Errorf("probe: train features: %d samples are too few to carve a %g validation share from each class: set a fixed L2", train.N, cfg.ValFraction)
		}
		pr.Grid = slices.Clone(cfg.Grid)
		pr.GridValTop1 = make([]float64, len(cfg.Grid))
		pr.GridIterations = make([]int, len(cfg.Grid))
		pr.GridConverged = make([]bool, len(cfg.Grid))
		pr.ValFraction, pr.ValN = cfg.ValFraction, val.N
		st := fitStandardiser(fitTrain.X, fitTrain.N, fitTrain.D)
		xs := st.apply(fitTrain.X, fitTrain.N, fitTrain.D)
		vs := st.apply(val.X, val.N, val.D)
		order := make([]int, len(cfg.Grid))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return cmp.Compare(cfg.Grid[b], cfg.Grid[a]) })
		models := make([]*Linear, len(cfg.Grid))
		var prev *Linear
		for _, g := range order {
			c := lin
			c.L2, c.Init = cfg.Grid[g], prev
			m, err := fitStandardised(ctx, xs, fitTrain.Labels, fitTrain.N, fitTrain.D, fitTrain.Classes, c)
			if err != nil {
				return nil, fmt.Errorf("probe: grid search: %w", err)
			}
			pr.GridValTop1[g] = top1(m.predictStandardised(vs, val.N), val.Labels)
			pr.GridIterations[g], pr.GridConverged[g] = m.Iterations, m.Converged
			models[g], prev = m, m
			p.Add(1)
		}
		best := order[0]
		for _, g := range order[1:] {
			if pr.GridValTop1[g] > pr.GridValTop1[best] {
				best = g
			}
		}
		lin.L2, lin.Init = cfg.Grid[best], models[best]
	}
	m, err := FitLinear(ctx, train, lin)
	if err != nil {
		return nil, err
	}
	p.Add(1)
	pr.L2, pr.Iterations, pr.Converged, pr.Status = m.L2, m.Iterations, m.Converged, m.Status
	pr.Loss, pr.GradNorm = m.Loss, m.GradNorm
	return m, nil
}

// carve splits f class by class into a training part and a validation
// part of about frac of each class (round(frac·count), at most count − 1),
// chosen by a shuffle seeded with seed. Both parts keep f's order.
func carve(f *Features, frac float64, seed uint64) (fitTrain, val *Features) {
	byClass := make([][]int, f.Classes)
	for i, l := range f.Labels {
		byClass[l] = append(byClass[l], i)
	}
	rng := rand.New(rand.NewPCG(seed, 0x7077636172766521)) // "pwcarve!"
	inVal := make([]bool, f.N)
	for _, idx := range byClass {
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		nv := min(int(math.Round(frac*float64(len(idx)))), len(idx)-1)
		for _, i := range idx[:max(nv, 0)] {
			inVal[i] = true
		}
	}
	nv := 0
	for _, v := range inVal {
		if v {
			nv++
		}
	}
	fitTrain = &Features{N: f.N - nv, D: f.D, X: make([]float32, 0, (f.N-nv)*f.D), Labels: make([]int, 0, f.N-nv), Classes: f.Classes}
	val = &Features{N: nv, D: f.D, X: make([]float32, 0, nv*f.D), Labels: make([]int, 0, nv), Classes: f.Classes}
	for i, v := range inVal {
		dst := fitTrain
		if v {
			dst = val
		}
		dst.X = append(dst.X, f.X[i*f.D:(i+1)*f.D]...)
		dst.Labels = append(dst.Labels, f.Labels[i])
	}
	return fitTrain, val
}
