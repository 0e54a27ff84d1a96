// Package openblas calls OpenBLAS's SGEMM through cgo, to measure package
// kernel's GEMM against it side by side in one run. It builds only with
// the openblas build tag and Debian's libopenblas-dev, never in the default
// (CGO-free) build:
//
//	OPENBLAS_CORETYPE=SkylakeX go test -tags openblas -run NONE -bench . ./nn/kernel/internal/openblas
//
// (OPENBLAS_CORETYPE selects AVX-512 kernels on CPUs that OpenBLAS 0.3.21
// does not recognise; leave it unset on CPUs without AVX-512.)
package openblas
