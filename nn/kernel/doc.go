// Package kernel holds the compute kernels behind package nn: matrix
// multiplication (GEMM), direct convolutions and im2col/col2im, the
// convolutions of 2× upsampled images by output phase (UpConv), the row
// kernels of batch normalisation, pooling, the elementwise loops and
// reductions, the optimiser updates and the losses, and the parallel loop
// that spreads work over the cores.
//
// All matrices are row-major float32 slices with an explicit leading
// dimension (the stride between rows); images are channels-last.
//
// # Paths
//
// Most kernels have vector paths in amd64 assembly, generated with avo
// from one description per kernel with the vector width as a parameter
// (internal/asmgen; go generate ./nn/kernel rewrites kernels_amd64.s):
//
//	avx512  AVX-512F: 6×64 GEMM tiles, 8×32, 8×16 and 4×32 convolution tiles, 16-wide rows
//	avx2    AVX2 and FMA: 6×16 tiles, 8-wide rows
//	purego  portable Go: every CPU, and every build with -tags purego
//
// The best path the CPU has is chosen at start-up (golang.org/x/sys/cpu).
// PATCHWISE_CPU=avx2 or PATCHWISE_CPU=purego forces a lower one, so every
// path can be tested and compared on one machine; auto or empty means the
// best. A name that is unknown, or a path the CPU or build cannot run, is
// not honoured: the best path stays, and EnvError says why (a program
// should warn; the package's tests fail). SetPath switches paths inside a
// process, between kernel calls.
//
// # What holds
//
// On a given path every result is bitwise the same for any number of
// cores: work is split by shape only, and partial sums are combined in a
// fixed order. Relu, ReluGrad, Scale, Add and AddRelu (for inputs without
// NaNs), the max pools and the optimiser updates give the same bits on
// every path; the batch-norm row kernels fuse each multiply-add on the
// vector paths (the Go loops may not), and the GEMM, the convolutions,
// Dot, Axpy-based sums and SquaredDiff add in a path-dependent order, so
// paths differ in the last bits.
//
// Every function works on Go slices in host memory and has finished when
// it returns. That makes this package the one place where nn's arithmetic
// on tensor data lives, but not yet a device seam: a GPU backend needs
// tensors that stay on the device between calls and asynchronous
// launches, which these signatures cannot express.
package kernel
