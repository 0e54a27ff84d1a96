package probe

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	if err := (Config{}).WithDefaults().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	bad := Config{
		Grid:        []float64{1e-3, 0, math.NaN(), 1e-3, math.Inf(1)},
		L2:          -1,
		ValFraction: 1,
		MaxIter:     -5,
		Tol:         math.NaN(),
		KNN:         []KNNConfig{{K: 0, T: 0.1}, {K: 5, T: 0}, {K: 20, T: 0.07}, {K: 20, T: 0.07}},
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		"grid[1] = 0", "grid[2] = NaN", "grid[3] = 0.001 repeats grid[0]", "grid[4] = +Inf",
		"l2 = -1", "val_fraction = 1", "max_iter = -5", "tol = NaN",
		"knn[0]: k = 0", "knn[1]: t = 0", "knn[3] = {k 20, t 0.07} repeats knn[2]",
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not mention %q:\n%s", w, msg)
		}
	}
	if n := len(strings.Split(msg, "\n")); n != len(want) {
		t.Errorf("%d problems reported, want %d:\n%s", n, len(want), msg)
	}
	for _, neg := range []Config{{ValFraction: -0.1}, {ValFraction: 0.999}} {
		if err := neg.Validate(); (err == nil) != (neg.ValFraction > 0) {
			t.Errorf("val_fraction %v: error %v", neg.ValFraction, err)
		}
	}
}

// TestEvaluateBlobs runs the whole protocol on separable-ish data and
// checks the numbers against what the data allows, the protocol record and
// the JSON encoding.
func TestEvaluateBlobs(t *testing.T) {
	train := blobs(21, 600, 10, 4, 0.6)
	test := blobsFrom(21, 22, 200, 10, 4, 0.6)
	var p countingProgress
	res, err := Evaluate(context.Background(), train, test, Config{Seed: 3}, &p)
	if err != nil {
		t.Fatal(err)
	}
	if res.LinearTop1 < 0.95 || res.KNN20Top1 < 0.95 || res.KNN200Top1 < 0.9 {
		t.Errorf("linear %v, k-NN 20 %v, k-NN 200 %v: want ≥ 0.95, 0.95, 0.9", res.LinearTop1, res.KNN20Top1, res.KNN200Top1)
	}
	pr := res.Protocol
	if pr.FeatureDim != 10 || pr.TrainN != 600 || pr.TestN != 200 || pr.Classes != 4 || pr.Seed != 3 {
		t.Errorf("protocol sizes: %+v", pr)
	}
	if !slices.Equal(pr.Grid, DefaultGrid) || len(pr.GridValTop1) != len(DefaultGrid) || pr.ValN != 120 || pr.ValFraction != 0.2 {
		t.Errorf("grid %v, val top-1 %v, val n %d, fraction %v", pr.Grid, pr.GridValTop1, pr.ValN, pr.ValFraction)
	}
	if !slices.Contains(DefaultGrid, pr.L2) || !pr.Converged || pr.Standardise == "" || pr.Solver == "" || pr.KNNMetric == "" {
		t.Errorf("λ %v, converged %v (%s)", pr.L2, pr.Converged, pr.Status)
	}
	best := slices.Max(pr.GridValTop1)
	for i, v := range pr.GridValTop1 {
		if v == best && pr.Grid[i] > pr.L2 {
			t.Errorf("λ %v chosen, but the larger λ %v has the same validation top-1 %v", pr.L2, pr.Grid[i], v)
		}
	}
	if len(res.KNN) != 2 || res.KNN[0].K != 20 || res.KNN[0].Top1 != res.KNN20Top1 || res.KNN[1].KUsed != 200 {
		t.Errorf("k-NN results %+v", res.KNN)
	}
	total, right := 0, 0
	for c, row := range res.Confusion {
		total += sum(row)
		right += row[c]
		if want := float64(row[c]) / float64(sum(row)); res.PerClass[c] != want {
			t.Errorf("class %d: per-class %v, confusion gives %v", c, res.PerClass[c], want)
		}
	}
	if total != test.N || float64(right)/float64(total) != res.LinearTop1 {
		t.Errorf("confusion sums to %d (%d right), top-1 %v", total, right, res.LinearTop1)
	}
	if p.starts != 2 || p.dones != 2 || p.added != len(DefaultGrid)+1+test.N {
		t.Errorf("progress %+v", p)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"linear_top1"`, `"knn20_top1"`, `"knn200_top1"`, `"per_class"`, `"confusion"`, `"grid_val_top1"`, `"k_used"`, `"feature_dim"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

// TestEvaluateDeterministic checks that the same inputs and seed give the
// same result on one core as on several, and that the seed chooses the
// validation carve.
func TestEvaluateDeterministic(t *testing.T) {
	train := blobs(31, 700, 6, 3, 1.2)
	test := blobsFrom(31, 32, 150, 6, 3, 1.2)
	run := func(procs int, seed uint64) *Result {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		res, err := Evaluate(context.Background(), train, test, Config{Seed: seed, Grid: []float64{1e-3, 1e-2, 1e-1}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b := run(1, 5), run(3, 5)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("GOMAXPROCS 1 and 3 differ:\n%+v\n%+v", a, b)
	}
	c := run(2, 6)
	if slices.Equal(a.Protocol.GridValTop1, c.Protocol.GridValTop1) {
		t.Errorf("seeds 5 and 6 give the same validation top-1 %v: the carve ignores the seed", a.Protocol.GridValTop1)
	}
}

// TestCarve checks the stratified carve: the share of each class, the
// minimum left for training, order and seeding.
func TestCarve(t *testing.T) {
	f := &Features{N: 23, D: 1, Classes: 4, X: make([]float32, 23), Labels: make([]int, 23)}
	// class 0: 10 samples, class 1: 10, class 2: 2, class 3: 1
	for i := range f.N {
		f.X[i] = float32(i)
		switch {
		case i < 20:
			f.Labels[i] = i % 2
		case i < 22:
			f.Labels[i] = 2
		default:
			f.Labels[i] = 3
		}
	}
	tr, val := carve(f, 0.25, 1)
	counts := func(g *Features) []int {
		c := make([]int, g.Classes)
		for _, l := range g.Labels {
			c[l]++
		}
		return c
	}
	// round(2.5) = 3 of 10; round(0.5) = 1 of 2; 0 of 1 (one must stay).
	if got := counts(val); !slices.Equal(got, []int{3, 3, 1, 0}) {
		t.Errorf("validation class counts %v, want [3 3 1 0]", got)
	}
	if tr.N+val.N != f.N || !slices.IsSorted(tr.X) || !slices.IsSorted(val.X) {
		t.Errorf("parts of %d and %d samples, or out of order: %v | %v", tr.N, val.N, tr.X, val.X)
	}
	for i, x := range val.X {
		if f.Labels[int(x)] != val.Labels[i] {
			t.Errorf("validation sample %v has label %d, was %d", x, val.Labels[i], f.Labels[int(x)])
		}
	}
	_, val2 := carve(f, 0.25, 1)
	_, val3 := carve(f, 0.25, 2)
	if !slices.Equal(val.X, val2.X) || slices.Equal(val.X, val3.X) {
		t.Errorf("seed 1 twice: %v, %v; seed 2: %v", val.X, val2.X, val3.X)
	}
}

func TestEvaluateFixedL2(t *testing.T) {
	train := blobs(41, 200, 5, 3, 1)
	test := blobsFrom(41, 42, 60, 5, 3, 1)
	res, err := Evaluate(context.Background(), train, test, Config{L2: 0.02, KNN: []KNNConfig{{K: 7, T: 0.5}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pr := res.Protocol
	if pr.L2 != 0.02 || pr.Grid != nil || pr.ValN != 0 || pr.ValFraction != 0 {
		t.Errorf("fixed λ: l2 %v, grid %v, val n %d, fraction %v", pr.L2, pr.Grid, pr.ValN, pr.ValFraction)
	}
	if res.KNN20Top1 != 0 || res.KNN200Top1 != 0 || len(res.KNN) != 1 || res.KNN[0].K != 7 {
		t.Errorf("k-NN results %+v, k20 %v, k200 %v", res.KNN, res.KNN20Top1, res.KNN200Top1)
	}
	// The same λ as a one-entry grid: no search, the same result.
	res2, err := Evaluate(context.Background(), train, test, Config{Grid: []float64{0.02}, KNN: []KNNConfig{{K: 7, T: 0.5}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res, res2) {
		t.Errorf("L2 0.02 and grid [0.02] differ")
	}
}

func TestEvaluateErrors(t *testing.T) {
	train := blobs(51, 40, 3, 2, 1)
	test := blobs(52, 10, 3, 2, 1)
	wide := blobs(52, 10, 4, 2, 1)
	threeClasses := blobs(52, 10, 3, 3, 1)
	oneClass := blobs(53, 40, 3, 2, 1)
	for i := range oneClass.Labels {
		oneClass.Labels[i] = 1
	}
	nanTest := blobs(52, 10, 3, 2, 1)
	nanTest.X[29] = float32(math.NaN())
	for _, tc := range []struct {
		name        string
		train, test *Features
		cfg         Config
		want        string
		is          error
	}{
		{"dimension", train, wide, Config{}, "train features have dimension 3, test features 4", nil},
		{"classes", train, threeClasses, Config{}, "train features have 2 classes, test features 3", nil},
		{"one class", oneClass, test, Config{}, "1 class(es) present in 40 samples", nil},
		{"nan", train, nanTest, Config{}, "test features: sample 9, feature 2: NaN", ErrNonFinite},
		{"config", train, test, Config{MaxIter: -1}, "max_iter = -1", nil},
		{"empty", &Features{}, test, Config{}, "train features: 0 samples", nil},
		{"nil", train, nil, Config{}, "test features: nil features", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Evaluate(context.Background(), tc.train, tc.test, tc.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not match %v", err, tc.is)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Evaluate(ctx, train, test, Config{}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: error %v", err)
	}
	// Too few samples to carve a validation set from any class.
	tiny := &Features{N: 2, D: 1, X: []float32{-1, 1}, Labels: []int{0, 1}, Classes: 2}
	if _, err := Evaluate(context.Background(), tiny, tiny, Config{}, nil); err == nil || !strings.Contains(err.Error(), "too few to carve") {
		t.Errorf("tiny training set: error %v", err)
	}
}
