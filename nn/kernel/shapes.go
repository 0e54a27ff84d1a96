package kernel

// GemmShape is one GEMM size: C (M×N) = op(A) (M×K) · op(B) (K×N).
type GemmShape struct {
	Name           string
	TransA, TransB bool
	M, N, K        int
}

// BenchShapes are the GEMM sizes speed is measured at: the convolution
// shapes of docs/design.md §8 (the reference encoder's second and third layers
// at batch 128 on 32×32 images, as channels-first whole-batch GEMMs:
// forward, weight gradient, input gradient), their channels-last
// counterparts, which the layers actually run, and two square sizes.
var BenchShapes = []GemmShape{
	{"fwd_M64_K288_N32768", false, false, 64, 32768, 288},
	{"fwd_M128_K576_N8192", false, false, 128, 8192, 576},
	{"dW_M64_N288_K32768", false, true, 64, 288, 32768},
	{"dX_M288_N32768_K64", true, false, 288, 32768, 64},
	{"nhwc_fwd_M32768_N64_K288", false, true, 32768, 64, 288},
	{"nhwc_dW_M288_N64_K32768", true, false, 288, 64, 32768},
	{"nhwc_dX_M32768_N288_K64", false, false, 32768, 288, 64},
	{"square_256", false, false, 256, 256, 256},
	{"square_1024", false, false, 1024, 1024, 1024},
}

// Strides returns the leading dimensions of A and B stored densely.
func (s GemmShape) Strides() (lda, ldb int) {
	lda, ldb = s.K, s.N
	if s.TransA {
		lda = s.M
	}
	if s.TransB {
		ldb = s.K
	}
	return lda, ldb
}

// Flops is the number of floating-point operations of one product, 2·M·N·K.
func (s GemmShape) Flops() float64 { return 2 * float64(s.M) * float64(s.N) * float64(s.K) }
