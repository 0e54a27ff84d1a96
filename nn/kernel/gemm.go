package kernel

import "fmt"

// Gemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, where
// op(X) is X or its transpose Xᵀ as transA and transB say, op(A) is m×k,
// op(B) is k×n and C is m×n. lda, ldb and ldc are the row strides of A, B
// and C as stored. With beta == 0, C need not be initialised.
// Gemm panics if a slice is too short for its dimensions.
func Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleRows(c, m, n, ldc, beta)
		return
	}
	checkGemmArgs(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	countProduct(m, n, k)
	sgemm(gemmKernel(n), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmKernel returns the micro-kernel of the path in use for products
// with n columns: the GEMM's, or the convolutions' narrower tile where
// that pads fewer columns.
func gemmKernel(n int) microKernel {
	if roundUp(n, activeConv.nr) < roundUp(n, active.nr) {
		return activeConv
	}
	return active
}

// checkGemm panics with a clear message if a slice is too short or a
// leading dimension too small for the dimensions.
func checkGemmArgs(transA, transB bool, m, n, k, la, lda, lb, ldb, lc, ldc int) {
	need := func(name string, rows, cols, ld, have int) {
		if ld < max(1, cols) {
			panic(fmt.Sprintf("kernel: Gemm: ld%s = %d < %d", name, ld, cols))
		}
		if rows > 0 && have < (rows-1)*ld+cols {
			panic(fmt.Sprintf("kernel: Gemm: %s has %d elements, want at least %d", name, have, (rows-1)*ld+cols))
		}
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	need("a", ar, ac, lda, la)
	need("b", br, bc, ldb, lb)
	need("c", m, n, ldc, lc)
}

func scaleRows(c []float32, m, n, ldc int, beta float32) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}
