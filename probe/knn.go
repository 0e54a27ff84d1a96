package probe

import (
	"context"
	"math"
	"slices"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// Block sizes of the k-NN search: the similarities of knnQueries queries
// with knnRefs references are one GEMM (4 MiB of float32), then scanned
// for each query's nearest neighbours.
const (
	knnQueries = 512
	knnRefs    = 2048
	knnScan    = 64 // queries per task of the parallel scan
)

// normalizeRows returns a copy of x ([n, d]) with every row scaled to unit
// L2 norm (computed in float64). A zero row stays zero: its cosine
// similarity with everything is 0.
func normalizeRows(x []float32, n, d int) []float32 {
	out := make([]float32, n*d)
	kernel.For(n, 1024, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			src, dst := x[i*d:(i+1)*d], out[i*d:(i+1)*d]
			var s float64
			for _, v := range src {
				s += float64(v) * float64(v)
			}
			if s == 0 {
				continue
			}
			inv := 1 / math.Sqrt(s)
			for j, v := range src {
				dst[j] = float32(float64(v) * inv)
			}
		}
	})
	return out
}

// neighbours is a bounded set of the best candidates for one query, kept as
// a binary heap whose root is the worst. Candidate a is better than b when
// its similarity is higher, or equal with a lower reference index.
type neighbours struct {
	sim []float32
	idx []int32
}

// worse reports whether entry i ranks below entry j.
func (h *neighbours) worse(i, j int) bool {
	return h.sim[i] < h.sim[j] || (h.sim[i] == h.sim[j] && h.idx[i] > h.idx[j])
}

func (h *neighbours) swap(i, j int) {
	h.sim[i], h.sim[j] = h.sim[j], h.sim[i]
	h.idx[i], h.idx[j] = h.idx[j], h.idx[i]
}

// push adds a candidate to a heap that is not full.
func (h *neighbours) push(s float32, r int32) {
	h.sim = append(h.sim, s)
	h.idx = append(h.idx, r)
	for i := len(h.sim) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.worse(i, p) {
			break
		}
		h.swap(i, p)
		i = p
	}
}

// replaceRoot replaces the worst entry of a full heap and restores the heap.
func (h *neighbours) replaceRoot(s float32, r int32) {
	h.sim[0], h.idx[0] = s, r
	n := len(h.sim)
	for i := 0; ; {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && h.worse(c+1, c) {
			c++
		}
		if !h.worse(c, i) {
			break
		}
		h.swap(i, c)
		i = c
	}
}

// sortBest orders the entries best first.
func (h *neighbours) sortBest() {
	order := make([]int, len(h.sim))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		switch {
		case h.worse(b, a):
			return -1
		case h.worse(a, b):
			return 1
		}
		return 0
	})
	sim, idx := slices.Clone(h.sim), slices.Clone(h.idx)
	for i, o := range order {
		h.sim[i], h.idx[i] = sim[o], idx[o]
	}
}

// knnClassify classifies every query sample by each of cfgs: cosine
// similarity on L2-normalised features, the K most similar reference
// samples (all of them when K exceeds ref.N; ties in similarity go to the
// lower reference index) voting for their class with weight exp(s/T),
// summed in float64 from the most similar down; a tie in votes goes to the
// lowest class index. One search for the largest K serves every config.
// It returns, per config, the predicted class of every query, and the k it
// used. ref and query must have the same D, and Classes ≥ every label.
func knnClassify(ctx context.Context, ref, query *Features, cfgs []KNNConfig, p Progress) ([][]int, []int, error) {
	d, classes := ref.D, ref.Classes
	kUsed := make([]int, len(cfgs))
	kmax := 0
	for i, c := range cfgs {
		kUsed[i] = min(c.K, ref.N)
		kmax = max(kmax, kUsed[i])
	}
	rn := normalizeRows(ref.X, ref.N, d)
	qn := normalizeRows(query.X, query.N, d)
	preds := make([][]int, len(cfgs))
	for i := range preds {
		preds[i] = make([]int, query.N)
	}
	sims := make([]float32, knnQueries*knnRefs)
	heaps := make([]neighbours, knnQueries)
	thr := make([]float32, knnQueries) // the root's similarity of each full heap
	for i := range heaps {
		heaps[i] = neighbours{sim: make([]float32, 0, kmax), idx: make([]int32, 0, kmax)}
	}
	p.Start("k-NN", query.N)
	defer p.Done()
	for q0 := 0; q0 < query.N; q0 += knnQueries {
		nq := min(knnQueries, query.N-q0)
		for i := range nq {
			heaps[i].sim, heaps[i].idx = heaps[i].sim[:0], heaps[i].idx[:0]
			thr[i] = float32(math.Inf(-1))
		}
		for r0 := 0; r0 < ref.N; r0 += knnRefs {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			nr := min(knnRefs, ref.N-r0)
			// sims[r·nq + q] = rn[r0+r] · qn[q0+q]
			kernel.Gemm(false, true, nr, nq, d, 1, rn[r0*d:(r0+nr)*d], d, qn[q0*d:(q0+nq)*d], d, 0, sims[:nr*nq], nq)
			kernel.For(nq, knnScan, func(_, lo, hi int) {
				for r := range nr {
					row := sims[r*nq : (r+1)*nq]
					idx := int32(r0 + r)
					for q := lo; q < hi; q++ {
						s := row[q]
						h := &heaps[q]
						switch {
						case len(h.sim) < kmax:
							h.push(s, idx)
							if len(h.sim) == kmax {
								thr[q] = h.sim[0]
							}
						case s > thr[q]:
							// A later reference has a higher index, so
							// it beats the root only by a higher
							// similarity.
							h.replaceRoot(s, idx)
							thr[q] = h.sim[0]
						}
					}
				}
			})
		}
		kernel.For(nq, knnScan, func(_, lo, hi int) {
			votes := make([]float64, classes)
			for q := lo; q < hi; q++ {
				h := &heaps[q]
				h.sortBest()
				for c, cfg := range cfgs {
					// exp((s − s₀)/T), s₀ the best similarity, is
					// exp(s/T) scaled by a constant, without overflow.
					clear(votes)
					s0 := float64(h.sim[0])
					for j := range kUsed[c] {
						votes[ref.Labels[h.idx[j]]] += math.Exp((float64(h.sim[j]) - s0) / cfg.T)
					}
					best := 0
					for k, v := range votes {
						if v > votes[best] {
							best = k
						}
					}
					preds[c][q0+q] = best
				}
			}
		})
		p.Add(nq)
	}
	return preds, kUsed, nil
}
