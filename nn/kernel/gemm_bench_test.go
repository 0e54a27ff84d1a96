package kernel

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkGemm reports GFLOP/s at each of BenchShapes on each vector
// path this CPU runs (the portable one only where it is the only one),
// side by side.
func BenchmarkGemm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	paths := Paths()
	if len(paths) > 1 {
		paths = paths[:len(paths)-1]
	}
	for _, s := range BenchShapes {
		a, bm, c := randSlice(rng, s.M*s.K), randSlice(rng, s.K*s.N), make([]float32, s.M*s.N)
		lda, ldb := s.Strides()
		for _, p := range paths {
			b.Run(s.Name+"/"+p, func(b *testing.B) {
				usePath(b, p)
				for b.Loop() {
					Gemm(s.TransA, s.TransB, s.M, s.N, s.K, 1, a, lda, bm, ldb, 0, c, s.N)
				}
				b.ReportMetric(s.Flops()*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
