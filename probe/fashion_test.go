package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/patchwise-ml/patchwise/data"
)

// fashionDir is where Debian's dataset-fashion-mnist package installs the
// Fashion-MNIST IDX files.
const fashionDir = "/usr/share/datasets/fashion-mnist"

// fashionFiles returns the Fashion-MNIST IDX files, or skips the test.
func fashionFiles(t testing.TB) (train, test data.IDXFiles) {
	t.Helper()
	train, test, err := data.FindIDX(fashionDir)
	if err != nil {
		t.Skipf("Fashion-MNIST not found (%v): apt-get install dataset-fashion-mnist", err)
	}
	return train, test
}

// loadIDXFeatures reads an IDX images/labels pair as raw-pixel features:
// pixels / 255, 10 classes.
func loadIDXFeatures(t testing.TB, files data.IDXFiles) *Features {
	t.Helper()
	li, err := data.LoadIDXPair(files.Images, files.Labels)
	if err != nil {
		t.Fatal(err)
	}
	d := li.H * li.W
	f := &Features{N: li.N, D: d, X: make([]float32, li.N*d), Labels: make([]int, li.N), Classes: 10}
	for i, v := range li.Pixels {
		f.X[i] = pixelValue[v]
	}
	for i, v := range li.Labels {
		f.Labels[i] = int(v)
	}
	return f
}

// timingProgress logs how long each task took.
type timingProgress struct {
	t     testing.TB
	what  string
	start time.Time
}

func (p *timingProgress) Start(what string, _ int) { p.what, p.start = what, time.Now() }
func (p *timingProgress) Add(int)                  {}
func (p *timingProgress) Done()                    { p.t.Logf("%s: %.1f s", p.what, time.Since(p.start).Seconds()) }

// TestFashionMNISTPixels is the acceptance test of the probe protocol on
// real data: Fashion-MNIST ingested into a dataset, raw-pixel features
// extracted through Extract (the test split through Cached), and the
// default protocol. Raw pixels reach about 84–85 % with a linear probe and
// with 20-NN; the test allows a band around that. It takes about 30 s on
// two cores (most of it the grid search), minutes with -race.
func TestFashionMNISTPixels(t *testing.T) {
	if testing.Short() {
		t.Skip("ingests and probes 70,000 images; skipped with -short")
	}
	fashionFiles(t)
	ctx := context.Background()
	dir := t.TempDir()
	start := time.Now()
	out := filepath.Join(dir, "fashion")
	rep, err := data.Ingest(ctx, data.IngestConfig{Inputs: []string{fashionDir}, Out: out,
		Preprocess: data.Preprocess{Size: 28, Channels: 1}}, NoProgress{})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := data.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ingest: %.1f s", time.Since(start).Seconds())

	start = time.Now()
	train, err := Extract(ctx, ds, data.Train, Pixels{}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := CacheKey{Encoder: "pixels", Dataset: rep.ID, Split: data.Test}
	compute := func() (*Features, error) { return Extract(ctx, ds, data.Test, Pixels{}, 0, nil) }
	test, hit, err := Cached(filepath.Join(dir, "cache"), key, compute)
	if err != nil || hit {
		t.Fatalf("cache: hit %v, err %v", hit, err)
	}
	t.Logf("extract: %.1f s (%d + %d samples of %d features)", time.Since(start).Seconds(), train.N, test.N, train.D)
	if train.N != 60000 || test.N != 10000 || train.D != 784 || train.Classes != 10 {
		t.Fatalf("train %d, test %d samples of %d features, %d classes", train.N, test.N, train.D, train.Classes)
	}
	cached, hit, err := Cached(filepath.Join(dir, "cache"), key, compute)
	if err != nil || !hit || cached.N != test.N || cached.X[12345] != test.X[12345] {
		t.Fatalf("cache: hit %v, err %v", hit, err)
	}

	start = time.Now()
	res, err := Evaluate(ctx, train, test, Config{}, &timingProgress{t: t})
	if err != nil {
		t.Fatal(err)
	}
	pr := res.Protocol
	t.Logf("evaluate: %.1f s; linear top-1 %.4f (λ %g of grid %v, validation top-1 %.4f; %d iterations, %s), k-NN %+v",
		time.Since(start).Seconds(), res.LinearTop1, pr.L2, pr.Grid, pr.GridValTop1, pr.Iterations, pr.Status, res.KNN)
	t.Logf("per class: %.3f", res.PerClass)
	if res.LinearTop1 < 0.82 || res.LinearTop1 > 0.87 {
		t.Errorf("linear top-1 %.4f outside [0.82, 0.87]", res.LinearTop1)
	}
	if res.KNN20Top1 < 0.83 || res.KNN20Top1 > 0.88 {
		t.Errorf("20-NN top-1 %.4f outside [0.83, 0.88]", res.KNN20Top1)
	}
}

// TestSklearnCrossCheck fits the linear probe to Fashion-MNIST raw pixels
// at one λ and prints the test accuracy and fit time as a JSON line after
// "CROSSCHECK ", for bench/probe_sklearn.py to set beside scikit-learn's.
// It runs only with PATCHWISE_CROSSCHECK=1; PATCHWISE_CROSSCHECK_L2 sets λ
// (default 1e-2), PATCHWISE_CROSSCHECK_TOL the tolerance and
// PATCHWISE_CROSSCHECK_MAXITER the iteration cap (defaults: the package's).
func TestSklearnCrossCheck(t *testing.T) {
	if os.Getenv("PATCHWISE_CROSSCHECK") != "1" {
		t.Skip("set PATCHWISE_CROSSCHECK=1 (bench/probe_sklearn.py does)")
	}
	envFloat := func(name string, def float64) float64 {
		s := os.Getenv(name)
		if s == "" {
			return def
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	l2 := envFloat("PATCHWISE_CROSSCHECK_L2", 1e-2)
	tol := envFloat("PATCHWISE_CROSSCHECK_TOL", DefaultTol)
	maxIter := int(envFloat("PATCHWISE_CROSSCHECK_MAXITER", DefaultMaxIter))
	trf, tef := fashionFiles(t)
	train, test := loadIDXFeatures(t, trf), loadIDXFeatures(t, tef)
	start := time.Now()
	m, err := FitLinear(context.Background(), train, LinearConfig{L2: l2, Tol: tol, MaxIter: maxIter})
	if err != nil {
		t.Fatal(err)
	}
	secs := time.Since(start).Seconds()
	pred, err := m.Predict(test)
	if err != nil {
		t.Fatal(err)
	}
	line, err := json.Marshal(map[string]any{
		"impl": "patchwise", "l2": l2, "c": 1 / (l2 * float64(train.N)), "tol": tol, "max_iter": maxIter,
		"test_top1": top1(pred, test.Labels), "fit_seconds": secs, "iterations": m.Iterations,
		"evaluations": m.Evaluations, "converged": m.Converged, "status": m.Status, "loss": m.Loss, "grad_norm": m.GradNorm,
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("CROSSCHECK %s\n", line)
}

// BenchmarkFitLinear times FitLinear at λ 1e-2 from zero: on Gaussian
// blobs of encoder-feature size, and on Fashion-MNIST raw pixels when the
// files are installed. It reports the L-BFGS iterations and the time per
// evaluation of the loss and gradient.
func BenchmarkFitLinear(b *testing.B) {
	cases := []struct {
		name string
		f    func(b *testing.B) *Features
	}{
		{"N10000_D256_K10", func(*testing.B) *Features { return blobs(1, 10000, 256, 10, 3) }},
		{"N60000_D784_K10_fashion", func(b *testing.B) *Features {
			trf, _ := fashionFiles(b)
			return loadIDXFeatures(b, trf)
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			f := tc.f(b)
			b.ResetTimer()
			var m *Linear
			for range b.N {
				var err error
				if m, err = FitLinear(context.Background(), f, LinearConfig{L2: 1e-2}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(m.Iterations), "iters")
			b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N*m.Evaluations), "ms/eval")
		})
	}
}
