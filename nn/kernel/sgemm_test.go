package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// naiveGemm is the reference: C = alpha·op(A)·op(B) + beta·C in float64.
func naiveGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			c[i*ldc+j] = float32(float64(alpha)*s + float64(beta)*float64(c[i*ldc+j]))
		}
	}
}

// TestMicroKernels checks every micro-kernel this CPU can run, through the
// blocked driver, against naiveGemm: all transpose combinations, sizes
// that leave edge tiles in both directions and span several cache blocks,
// padded leading dimensions, and the beta cases the driver treats apart.
func TestMicroKernels(t *testing.T) {
	if len(kernels) < 2 && runtime.GOARCH == "amd64" {
		t.Logf("only the portable kernel runs on this CPU")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	// n ≤ 4 takes the skinny path; {300, 3, 1100} spans several of its k chunks.
	sizes := [][3]int{{1, 1, 1}, {7, 17, 5}, {6, 16, 300}, {13, 3, 2}, {65, 290, 513}, {400, 33, 70}, {9, 3100, 40}, {300, 3, 1100}, {50, 4, 9}, {40, 5, 30}}
	// alpha = 1 reads A in place; other values pack it.
	alphaBetas := [][2]float32{{1, 0}, {1, 1}, {0.75, 0}, {0.75, -0.5}}
	for _, mk := range kernels {
		for _, sz := range sizes {
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					for _, ab := range alphaBetas {
						alpha, beta := ab[0], ab[1]
						m, n, k := sz[0], sz[1], sz[2]
						name := fmt.Sprintf("%s/m%d_n%d_k%d/tA=%v_tB=%v/alpha=%v_beta=%v", mk.name, m, n, k, ta, tb, alpha, beta)
						t.Run(name, func(t *testing.T) {
							lda, ldb, ldc := k+3, n+1, n+2
							if ta {
								lda = m + 3
							}
							if tb {
								ldb = k + 1
							}
							ar, br := m, k
							if ta {
								ar = k
							}
							if tb {
								br = n
							}
							a, b := randSlice(rng, ar*lda), randSlice(rng, br*ldb)
							c := randSlice(rng, m*ldc)
							want := slices.Clone(c)
							naiveGemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, want, ldc)
							sgemm(mk, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
							tol := 1e-5 * float64(k)
							for i := range c {
								if d := math.Abs(float64(c[i] - want[i])); d > tol+1e-5*math.Abs(float64(want[i])) || math.IsNaN(d) {
									t.Fatalf("c[%d] = %v, want %v", i, c[i], want[i])
								}
							}
						})
					}
				}
			}
		}
	}
}

// TestSgemmCoreCountInvariant checks that the result does not depend on
// how many goroutines share the work.
func TestSgemmCoreCountInvariant(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const m, n, k = 70, 900, 600
	a, b := randSlice(rng, m*k), randSlice(rng, k*n)
	for _, mk := range kernels {
		var ref []float32
		for _, procs := range []int{1, 2, 3, 8} {
			old := runtime.GOMAXPROCS(procs)
			c := make([]float32, m*n)
			sgemm(mk, false, false, m, n, k, 1, a, k, b, n, 0, c, n)
			runtime.GOMAXPROCS(old)
			if ref == nil {
				ref = c
			} else if !slices.Equal(ref, c) {
				t.Errorf("%s: GOMAXPROCS=%d gives other bits than GOMAXPROCS=1", mk.name, procs)
			}
		}
	}
}
