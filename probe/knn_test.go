package probe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// bruteKNN classifies each query by brute force in float64 for each of
// cfgs: every cosine similarity, sorted (higher first, then lower
// reference index), the first k voting with weight exp((s − s₀)/T), the
// lowest class winning a tie. It also returns, for each config and query,
// how far the query is from a tie: the smaller of the gap between the
// k-th and the (k+1)-th similarity and the gap between the best and the
// second-best vote relative to the best.
func bruteKNN(ref, query *Features, cfgs []KNNConfig) (preds [][]int, gaps [][]float64) {
	unit := func(x []float32) []float64 {
		var s float64
		for _, v := range x {
			s += float64(v) * float64(v)
		}
		u := make([]float64, len(x))
		for i, v := range x {
			if s > 0 {
				u[i] = float64(v) / math.Sqrt(s)
			}
		}
		return u
	}
	refs := make([][]float64, ref.N)
	for r := range refs {
		refs[r] = unit(ref.X[r*ref.D : (r+1)*ref.D])
	}
	preds, gaps = make([][]int, len(cfgs)), make([][]float64, len(cfgs))
	for c := range cfgs {
		preds[c], gaps[c] = make([]int, query.N), make([]float64, query.N)
	}
	sims := make([]float64, ref.N)
	order := make([]int, ref.N)
	for q := range query.N {
		u := unit(query.X[q*query.D : (q+1)*query.D])
		for r := range refs {
			sims[r] = 0
			for j, v := range u {
				sims[r] += v * refs[r][j]
			}
			order[r] = r
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(sims[b], sims[a]) })
		for c, cfg := range cfgs {
			k := min(cfg.K, ref.N)
			gap := math.Inf(1)
			if k < ref.N {
				gap = sims[order[k-1]] - sims[order[k]]
			}
			votes := make([]float64, ref.Classes)
			for _, r := range order[:k] {
				votes[ref.Labels[r]] += math.Exp((sims[r] - sims[order[0]]) / cfg.T)
			}
			best := 0
			for c, v := range votes {
				if v > votes[best] {
					best = c
				}
			}
			sorted := slices.Clone(votes)
			slices.Sort(sorted)
			if len(sorted) > 1 {
				gap = min(gap, (sorted[len(sorted)-1]-sorted[len(sorted)-2])/sorted[len(sorted)-1])
			}
			preds[c][q], gaps[c][q] = best, gap
		}
	}
	return preds, gaps
}

// gridVectors returns n vectors of dimension d, each with exactly four
// components ±2^e (e random in [−3, 3], one per vector) and the rest 0:
// normalised, every component is 0 or ±1/2 exactly, so every cosine
// similarity is a multiple of 1/4 computed without rounding, and many tie.
func gridVectors(seed uint64, n, d, classes int) *Features {
	rng := rand.New(rand.NewPCG(seed, 5))
	f := &Features{N: n, D: d, X: make([]float32, n*d), Labels: make([]int, n), Classes: classes}
	for i := range n {
		scale := float32(math.Ldexp(1, rng.IntN(7)-3))
		for _, j := range rng.Perm(d)[:4] {
			v := scale
			if rng.IntN(2) == 0 {
				v = -v
			}
			f.X[i*d+j] = v
		}
		f.Labels[i] = rng.IntN(classes)
	}
	return f
}

// TestKNNBruteForce compares the blocked search with brute force, on data
// that spans several query and reference blocks, for several k (beyond
// the number of references too: k is then clamped to it) and T. On grid
// vectors, whose similarities are exact and tie often, every prediction
// must agree; on Gaussian data, every prediction not within 1e-5 of a tie
// (float32 similarities round differently from float64 ones).
func TestKNNBruteForce(t *testing.T) {
	cases := []struct {
		name       string
		exact      bool
		ref, query *Features
	}{
		{"grid small", true, gridVectors(1, 30, 6, 3), gridVectors(2, 17, 6, 3)},
		{"grid blocks", true, gridVectors(3, knnRefs+300, 10, 4), gridVectors(4, knnQueries+90, 10, 4)},
		{"gaussian small", false, blobs(11, 30, 5, 3, 2), blobs(12, 17, 5, 3, 2)},
		{"gaussian blocks", false, blobs(13, knnRefs+300, 8, 6, 2), blobs(14, knnQueries+90, 8, 6, 2)},
	}
	cfgs := []KNNConfig{{1, 0.07}, {5, 0.5}, {20, 0.07}, {29, 1}, {30, 0.1}, {200, 0.1}, {5000, 0.2}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			preds, kUsed, err := knnClassify(context.Background(), tc.ref, tc.query, cfgs, NoProgress{})
			if err != nil {
				t.Fatal(err)
			}
			wants, gapss := bruteKNN(tc.ref, tc.query, cfgs)
			for i, c := range cfgs {
				want, gaps := wants[i], gapss[i]
				if kUsed[i] != min(c.K, tc.ref.N) {
					t.Errorf("k %d: used %d, want %d", c.K, kUsed[i], min(c.K, tc.ref.N))
				}
				skipped := 0
				for q := range want {
					if !tc.exact && gaps[q] < 1e-5 {
						skipped++
						continue
					}
					if preds[i][q] != want[q] {
						t.Errorf("k %d, T %v: query %d predicted %d, brute force %d", c.K, c.T, q, preds[i][q], want[q])
					}
				}
				if skipped > len(want)/50 {
					t.Errorf("k %d, T %v: %d of %d queries within 1e-5 of a tie", c.K, c.T, skipped, len(want))
				}
			}
		})
	}
}

// TestKNNTies checks the tie-breaking rules with identical references:
// among equal similarities the lower reference index ranks first, and
// among equal votes the lower class wins.
func TestKNNTies(t *testing.T) {
	// References 0 and 1 are the same vector (labels 2 and 1), reference 2
	// a different one (label 0), reference 3 a multiple of reference 0
	// (the same direction, label 3).
	ref := &Features{N: 4, D: 2, Classes: 4,
		X:      []float32{1, 1, 1, 1, 1, -1, 2, 2},
		Labels: []int{2, 1, 0, 3}}
	query := &Features{N: 1, D: 2, Classes: 4, X: []float32{3, 3}, Labels: []int{0}}
	for _, tc := range []struct {
		k    int
		want int
	}{
		{1, 2}, // reference 0 beats 1 and 3 on index
		{2, 1}, // references 0 and 1 tie in votes: class 1 < 2
		{3, 1}, // references 0, 1, 3: classes 2, 1, 3 tie: class 1
		{4, 1}, // and reference 2 (class 0) has a lower weight
	} {
		t.Run(fmt.Sprintf("k%d", tc.k), func(t *testing.T) {
			preds, _, err := knnClassify(context.Background(), ref, query, []KNNConfig{{tc.k, 0.1}}, NoProgress{})
			if err != nil {
				t.Fatal(err)
			}
			if preds[0][0] != tc.want {
				t.Errorf("predicted %d, want %d", preds[0][0], tc.want)
			}
		})
	}
}

// TestKNNZeroVector checks that a zero feature vector has similarity 0 to
// everything rather than NaN.
func TestKNNZeroVector(t *testing.T) {
	ref := &Features{N: 3, D: 2, Classes: 2, X: []float32{0, 0, 1, 0, -1, 0}, Labels: []int{1, 0, 1}}
	query := &Features{N: 2, D: 2, Classes: 2, X: []float32{2, 0, 0, 0}, Labels: []int{0, 1}}
	preds, _, err := knnClassify(context.Background(), ref, query, []KNNConfig{{1, 0.1}, {2, 0.1}}, NoProgress{})
	if err != nil {
		t.Fatal(err)
	}
	// Query 0 is nearest reference 1 (s 1), then reference 0 (s 0).
	// Query 1 (zero) has s 0 with all: references 0 and 1 by index.
	if want := [][]int{{0, 1}, {0, 0}}; !slices.EqualFunc(preds, want, slices.Equal) {
		t.Errorf("predictions %v, want %v", preds, want)
	}
}

func TestKNNCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := blobs(1, 10, 2, 2, 1)
	if _, _, err := knnClassify(ctx, f, f, DefaultKNN, NoProgress{}); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestNeighboursHeap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const k = 7
	h := neighbours{}
	var all []int
	sims := make([]float32, 100)
	for i := range sims {
		sims[i] = float32(rng.IntN(10)) // many ties
		all = append(all, i)
		switch {
		case len(h.sim) < k:
			h.push(sims[i], int32(i))
		case sims[i] > h.sim[0]:
			h.replaceRoot(sims[i], int32(i))
		}
	}
	h.sortBest()
	slices.SortStableFunc(all, func(a, b int) int { return cmp.Compare(sims[b], sims[a]) })
	for j := range k {
		if int(h.idx[j]) != all[j] || h.sim[j] != sims[all[j]] {
			t.Fatalf("rank %d: reference %d (s %v), want %d (s %v)", j, h.idx[j], h.sim[j], all[j], sims[all[j]])
		}
	}
}
