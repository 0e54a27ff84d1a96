package kernel

import (
	"math/rand/v2"
	"testing"
)

// gemmShapes are the convolution shapes of DESIGN.md §8 (the reference
// encoder's second and third layers at batch 128 on 32×32 images, as whole-
// batch GEMMs) and two square sizes.
var gemmShapes = []struct {
	name           string
	transA, transB bool
	m, n, k        int
}{
	{"fwd_M64_K288_N32768", false, false, 64, 32768, 288},
	{"fwd_M128_K576_N8192", false, false, 128, 8192, 576},
	{"dW_M64_N288_K32768", false, true, 64, 288, 32768},
	{"dX_M288_N32768_K64", true, false, 288, 32768, 64},
	{"square_256", false, false, 256, 256, 256},
	{"square_1024", false, false, 1024, 1024, 1024},
}

// BenchmarkGemm reports GFLOP/s (2·m·n·k per call) at each shape.
func BenchmarkGemm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range gemmShapes {
		b.Run(s.name, func(b *testing.B) {
			a, bm, c := randSlice(rng, s.m*s.k), randSlice(rng, s.k*s.n), make([]float32, s.m*s.n)
			lda, ldb := s.k, s.n
			if s.transA {
				lda = s.m
			}
			if s.transB {
				ldb = s.k
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				Gemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
			}
			b.ReportMetric(2*float64(s.m)*float64(s.n)*float64(s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
