package kernel

import (
	"fmt"
	"math"
)

// The row kernels below work on row-major matrices whose rows are one
// pixel's or one sample's channels, and apply per-column (per-channel)
// coefficients: the memory-bound half of batch normalisation. On the
// vector paths they run 16 channels an instruction (AVX-512) when the row
// width is a multiple of 16, 8 (AVX2) when it is a multiple of 8, and Go
// loops otherwise. The vector paths fuse each multiply-add into one
// rounding, the Go loops may not, so paths can differ in the last bit;
// on one path the results do not depend on the number of cores.

// A Gate selects the elements of a matrix of c columns that a ReLU after
// ScaleShiftRows(dst, x, scales, shifts, true) lets through, from x: it
// holds 2c floats, the scales then the shifts, and lets x[r][j] through
// where x[r][j]·scales[j] + shifts[j] > 0, computed as ScaleShiftRows
// computes it (so with the same bits on the same path). A backward pass
// rebuilds a fused ReLU's mask this way from the input it reads anyway,
// instead of reading the output as well.
type Gate []float32

// passes reports whether the gate lets x through in column j of c.
func (g Gate) passes(x float32, j, c int) bool { return x*g[j]+g[c+j] > 0 }

// ScaleShiftRows sets dst[r][j] = x[r][j]·s[j] + b[j] for every row r of the
// matrices dst and x, which have len(s) columns; with relu it then takes
// max(·, 0) (a zero result is +0). dst may alias x.
func ScaleShiftRows(dst, x, s, b []float32, relu bool) {
	c := len(s)
	if c == 0 {
		return
	}
	if len(x) > 0 {
		switch l := rowLevel(); {
		case l >= levelAVX512 && c%16 == 0:
			scaleShiftRowsAVX512(&dst[0], &x[0], &s[0], &b[0], len(x)/c, c, relu)
			return
		case l >= levelAVX2 && c%8 == 0:
			scaleShiftRowsAVX2(&dst[0], &x[0], &s[0], &b[0], len(x)/c, c, relu)
			return
		}
	}
	for r := 0; r+c <= len(x); r += c {
		d, xr := dst[r:r+c], x[r:r+c]
		for j, sj := range s[:len(xr)] {
			v := xr[j]*sj + b[j]
			if relu {
				v = relu32(v)
			}
			d[j] = v
		}
	}
}

// AffineGradRows sets dst[r][j] = g[r][j]·a[j] + x[r][j]·k[j] + b[j] for
// every row r of the matrices dst, dy and x, which have len(a) columns,
// where g is dy, or dy where gate lets x through and 0 elsewhere when
// gate is not nil. It panics if gate is neither nil nor 2·len(a) long.
func AffineGradRows(dst, dy []float32, gate Gate, x, a, k, b []float32) {
	c := len(a)
	if c == 0 {
		return
	}
	var gp *float32
	if gate != nil {
		if len(gate) != 2*c {
			panic(fmt.Sprintf("kernel: AffineGradRows: gate of %d floats for %d columns", len(gate), c))
		}
		gp = &gate[0]
	}
	if len(dy) > 0 {
		switch l := rowLevel(); {
		case l >= levelAVX512 && c%16 == 0:
			affineGradRowsAVX512(&dst[0], &dy[0], gp, &x[0], &a[0], &k[0], &b[0], len(dy)/c, c)
			return
		case l >= levelAVX2 && c%8 == 0:
			affineGradRowsAVX2(&dst[0], &dy[0], gp, &x[0], &a[0], &k[0], &b[0], len(dy)/c, c)
			return
		}
	}
	for r := 0; r+c <= len(dy); r += c {
		d, g, xr := dst[r:r+c], dy[r:r+c], x[r:r+c]
		for j, aj := range a[:len(g)] {
			gj := g[j]
			if gate != nil && !gate.passes(xr[j], j, c) {
				gj = 0
			}
			d[j] = gj*aj + xr[j]*k[j] + b[j]
		}
	}
}

// ColSums adds, over the rows of the matrix u with len(su) columns,
// Σ (u'[r][j] − su[j]) to p1[j] and Σ (u'[r][j] − su[j])·w[r][j] to p2[j],
// where u' is u, or u where gate lets v through and 0 elsewhere when gate
// is not nil, and w is v − sv, or u' − su when v is nil (sv is then
// unused). The shifts keep the sums exact when the values sit far from
// zero. The sums are float32: callers sum long columns in chunks. It
// panics if gate is not nil and v is, or gate is not 2·len(su) long.
func ColSums(p1, p2, u, v []float32, gate Gate, su, sv []float32) {
	c := len(su)
	if c == 0 {
		return
	}
	if gate != nil && (v == nil || len(gate) != 2*c) {
		panic(fmt.Sprintf("kernel: ColSums: gate of %d floats for %d columns (v nil: %v)", len(gate), c, v == nil))
	}
	if len(u) > 0 {
		var vp, gp, svp *float32
		if v != nil {
			vp, svp = &v[0], &sv[0]
		}
		if gate != nil {
			gp = &gate[0]
		}
		switch l := rowLevel(); {
		case l >= levelAVX512 && c%16 == 0:
			colSumsAVX512(&p1[0], &p2[0], &u[0], vp, gp, &su[0], svp, len(u)/c, c)
			return
		case l >= levelAVX2 && c%8 == 0:
			colSumsAVX2(&p1[0], &p2[0], &u[0], vp, gp, &su[0], svp, len(u)/c, c)
			return
		}
	}
	p1, p2 = p1[:c], p2[:c]
	for r := 0; r+c <= len(u); r += c {
		for j, sh := range su {
			d := u[r+j]
			if gate != nil && !gate.passes(v[r+j], j, c) {
				d = 0
			}
			d -= sh
			w := d
			if v != nil {
				w = v[r+j] - sv[j]
			}
			p1[j] += d
			p2[j] += d * w
		}
	}
}

// relu32 is max(v, 0) without a branch, +0 for zeros and negatives.
func relu32(v float32) float32 {
	bits := math.Float32bits(v)
	return math.Float32frombits(bits &^ uint32(int32(bits)>>31))
}
