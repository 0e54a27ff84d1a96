//go:build openblas && cgo

package openblas

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// BenchmarkSgemm runs OpenBLAS and kernel.Gemm alternately at each shape,
// with as many threads as GOMAXPROCS, and reports GFLOP/s.
func BenchmarkSgemm(b *testing.B) {
	SetThreads(runtime.GOMAXPROCS(0))
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(rng.NormFloat64())
		}
		return s
	}
	impls := []struct {
		name string
		fn   func(bool, bool, int, int, int, float32, []float32, int, []float32, int, float32, []float32, int)
	}{{"openblas", Sgemm}, {"patchwise", kernel.Gemm}}
	for _, s := range kernel.BenchShapes {
		a, bm, c := fill(s.M*s.K), fill(s.K*s.N), make([]float32, s.M*s.N)
		lda, ldb := s.Strides()
		for _, im := range impls {
			b.Run(s.Name+"/"+im.name, func(b *testing.B) {
				for b.Loop() {
					im.fn(s.TransA, s.TransB, s.M, s.N, s.K, 1, a, lda, bm, ldb, 0, c, s.N)
				}
				b.ReportMetric(s.Flops()*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// TestAgree checks that both give the same product, so the benchmark
// compares like with like.
func TestAgree(t *testing.T) {
	const m, n, k = 37, 53, 71
	rng := rand.New(rand.NewPCG(7, 8))
	a, bm := make([]float32, m*k), make([]float32, k*n)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
	}
	for i := range bm {
		bm[i] = float32(rng.NormFloat64())
	}
	c1, c2 := make([]float32, m*n), make([]float32, m*n)
	Sgemm(false, false, m, n, k, 1, a, k, bm, n, 0, c1, n)
	kernel.Gemm(false, false, m, n, k, 1, a, k, bm, n, 0, c2, n)
	for i := range c1 {
		if d := c1[i] - c2[i]; d > 1e-3 || d < -1e-3 {
			t.Fatalf("c[%d]: openblas %v, patchwise %v", i, c1[i], c2[i])
		}
	}
}
