// Package kernel holds the compute kernels behind package nn: matrix
// multiplication (GEMM), im2col/col2im for convolutions, the elementwise
// loops, and the parallel loop that spreads work over the cores.
//
// It is the narrow seam of the engine: layers call only these functions for
// their heavy work, so a faster CPU kernel or a GPU backend can replace them
// without touching the layers. All matrices are row-major float32 slices
// with an explicit leading dimension (the stride between rows).
package kernel
