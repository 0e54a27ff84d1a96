//go:build !amd64 || purego

package kernel

// cpuLevel is purego: this build has no assembly.
func cpuLevel() int { return levelPurego }
