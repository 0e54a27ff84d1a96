package probe

import (
	"context"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestCorrectRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 2000} {
		pred, labels := make([]int, n), make([]int, n)
		want := make([]bool, n)
		for i := range n {
			labels[i] = i % 3
			pred[i] = (i * 7 / 5) % 3
			want[i] = pred[i] == labels[i]
		}
		s := EncodeCorrect(pred, labels)
		if n == 2000 && len(s) != 336 {
			t.Errorf("2000 samples: %d characters, want 336", len(s))
		}
		got, err := DecodeCorrect(s, n)
		if err != nil {
			t.Fatalf("n %d: %v", n, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("n %d: decoded %v, want %v", n, got, want)
		}
	}
	// Sample 0 is the least significant bit of the first byte.
	if s := EncodeCorrect([]int{1, 0, 0, 0, 0, 0, 0, 0, 1}, []int{1, 1, 1, 1, 1, 1, 1, 1, 1}); s != "AQE=" {
		t.Errorf("bit order: %q, want AQE=", s)
	}
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"AQE", 9, "base64"},
		{"AQE=", 17, "2 bytes for 17 samples"},
		{"/w==", 4, "padding bits"},
	} {
		if _, err := DecodeCorrect(tc.s, tc.n); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeCorrect(%q, %d): error %v, want one mentioning %q", tc.s, tc.n, err, tc.want)
		}
	}
}

func TestSubset(t *testing.T) {
	f := blobs(3, 300, 4, 3, 1)
	f.Labels[0], f.Labels[3] = 1, 1 // class 0 has 98 samples, class 1 has 102
	sub := Subset(f, 10, 7)
	if sub.N != 30 || len(sub.X) != 30*4 {
		t.Fatalf("N %d, %d values, want 30 samples", sub.N, len(sub.X))
	}
	counts := make([]int, 3)
	for _, l := range sub.Labels {
		counts[l]++
	}
	if !slices.Equal(counts, []int{10, 10, 10}) {
		t.Errorf("per class %v, want 10 each", counts)
	}
	// Rows are f's rows, in f's order.
	keep := subsetIndices(f.Labels, f.Classes, 10, 7)
	if !slices.IsSorted(keep) {
		t.Errorf("indices %v not ascending", keep)
	}
	for r, i := range keep {
		if !slices.Equal(sub.X[r*4:(r+1)*4], f.X[i*4:(i+1)*4]) || sub.Labels[r] != f.Labels[i] {
			t.Fatalf("row %d is not sample %d", r, i)
		}
	}
	// The same seed gives the same subset, whatever the features: other
	// encoders of the same images see the same labelled images.
	g := blobs(99, 300, 6, 3, 1)
	g.Labels = slices.Clone(f.Labels)
	if other := subsetIndices(g.Labels, 3, 10, 7); !slices.Equal(other, keep) {
		t.Errorf("another encoder's features give another subset")
	}
	if other := subsetIndices(f.Labels, 3, 10, 8); slices.Equal(other, keep) {
		t.Errorf("seeds 7 and 8 give the same subset")
	}
	// A class with fewer samples than asked gives all it has.
	if all := Subset(f, 1000, 1); all.N != 300 {
		t.Errorf("per class 1000: %d samples, want all 300", all.N)
	}
}

func TestLowShot(t *testing.T) {
	train := blobs(5, 2000, 8, 4, 1.2)
	test := blobsFrom(5, 6, 400, 8, 4, 1.2)
	cfg := Config{Seed: 3, Grid: []float64{1e-3, 1e-2, 1e-1}}
	lc := LowShotConfig{Fractions: []float64{0.02, 0.2}}
	res, err := LowShot(context.Background(), train, test, lc, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("%d results, want 2", len(res))
	}
	// 2 % of 2000 over 4 classes: 10 per class, too few to carve: λ = 1/40.
	r := res[0]
	if r.PerClass != 10 || len(r.Draws) != 5 {
		t.Errorf("2 %%: %d per class, %d draws; want 10 and 5", r.PerClass, len(r.Draws))
	}
	var mean float64
	seeds := map[uint64]bool{}
	for d, dr := range r.Draws {
		if dr.N != 40 || dr.L2Chosen != "fixed" || dr.L2 != 1.0/40 {
			t.Errorf("2 %% draw %d: n %d, λ %v (%s); want 40 samples and fixed λ 0.025", d, dr.N, dr.L2, dr.L2Chosen)
		}
		if dr.Seed != LowShotSeed(3, 0.02, d) {
			t.Errorf("draw %d: seed %d, want LowShotSeed(3, 0.02, %d)", d, dr.Seed, d)
		}
		seeds[dr.Seed] = true
		c, err := DecodeCorrect(dr.Correct, test.N)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ok := range c {
			if ok {
				n++
			}
		}
		if got := float64(n) / float64(test.N); got != dr.Top1 {
			t.Errorf("draw %d: bitset says %v, top-1 %v", d, got, dr.Top1)
		}
		mean += dr.Top1
	}
	if len(seeds) != 5 {
		t.Errorf("draw seeds repeat: %v", seeds)
	}
	if math.Abs(mean/5-r.Top1) > 1e-12 {
		t.Errorf("top-1 %v is not the mean of the draws %v", r.Top1, mean/5)
	}
	// 20 %: 100 per class, carved; chosen from the grid.
	r = res[1]
	if r.PerClass != 100 || len(r.Draws) != 3 {
		t.Errorf("20 %%: %d per class, %d draws; want 100 and 3", r.PerClass, len(r.Draws))
	}
	for d, dr := range r.Draws {
		if dr.L2Chosen != "carve" || !slices.Contains(cfg.Grid, dr.L2) {
			t.Errorf("20 %% draw %d: λ %v (%s), want one of the grid, chosen on a carve", d, dr.L2, dr.L2Chosen)
		}
	}
	// More labels, better probes (the blobs overlap: 40 samples are not enough).
	if !(res[1].Top1 > res[0].Top1) {
		t.Errorf("20 %% top-1 %v not above 2 %% top-1 %v", res[1].Top1, res[0].Top1)
	}
	// Deterministic; the seed of one fraction does not depend on the others.
	again, err := LowShot(context.Background(), train, test, LowShotConfig{Fractions: []float64{0.2}}, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again[0], res[1]) {
		t.Errorf("20 %% alone differs from 20 %% after 2 %%")
	}
}

func TestLowShotConfigValidate(t *testing.T) {
	if err := (LowShotConfig{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	if err := (LowShotConfig{Draws: []int{2, 2}}).Validate(); err != nil {
		t.Errorf("draws for the default fractions: %v", err)
	}
	err := LowShotConfig{Fractions: []float64{0, 1, 0.1, 0.1}, Draws: []int{1, 0}, CarveMin: 1}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"fractions[0] = 0", "fractions[1] = 1", "fractions[3] = 0.1 repeats", "2 draws for 4 fractions", "draws[1] = 0", "carve_min = 1"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
}

func TestEvaluateLinear(t *testing.T) {
	train := blobs(41, 200, 5, 3, 1)
	test := blobsFrom(41, 42, 60, 5, 3, 1)
	full, err := Evaluate(context.Background(), train, test, Config{L2: 0.02}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lin, err := EvaluateLinear(context.Background(), train, test, Config{L2: 0.02}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lin.LinearTop1 != full.LinearTop1 || lin.Correct != full.Correct || lin.KNN != nil || lin.Protocol.KNN != nil {
		t.Errorf("EvaluateLinear: top-1 %v (Evaluate %v), k-NN %v", lin.LinearTop1, full.LinearTop1, lin.KNN)
	}
}
