//go:build !linux

package pipeline

func resetPeakRSS() bool { return false }

func peakRSSMB() float64 { return 0 }
