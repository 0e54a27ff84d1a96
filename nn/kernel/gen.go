package kernel

// The amd64 assembly (kernels_amd64.s), its Go declarations
// (kernels_amd64.go) and their stand-ins for other builds
// (kernels_other.go) are written by the avo program in internal/asmgen,
// from one description per kernel with the vector width as a parameter.
//go:generate go run ./internal/asmgen -out kernels_amd64.s -stubs kernels_amd64.go -other kernels_other.go
