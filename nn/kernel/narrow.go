package kernel

// A direct convolution with few output channels fills few columns of the
// micro-kernel's tile (3 of 16 for an RGB output), so the tile's other
// columns are arithmetic thrown away. With G adjacent output pixels of a
// row in one tile row, the tile has G·cols useful columns: tile row i
// reads the input window of those pixels, k kernel rows of G+k−1 pixels,
// against a banded weight whose column (g, j) holds output pixel g's taps
// shifted by g pixels and zeros elsewhere. That costs (G+k−1)/(G·k) of
// the plain convolution's sums per output pixel but fills G times as many
// columns: for 3 output channels and 3×3 kernels, G = 4 does each
// pixel's arithmetic in half the time.

// narrowGroup returns the number of adjacent output pixels G that a tile
// row of micro-kernel mk covers for a convolution with cols output
// channels and rows of ow pixels, or 1 for none: the largest G ≥ 2 with
// G·cols ≤ nr that divides ow into whole tiles of groups (so no tile
// reads past a row's window).
func narrowGroup(mk microKernel, cols, ow int) int {
	for g := mk.nr / cols; g >= 2; g-- {
		if ow%g == 0 && (ow/g)%mk.mr == 0 {
			return g
		}
	}
	return 1
}

// directConvGrouped is directConv with G output pixels per tile row (see
// narrowGroup); the arguments are directConv's, checked by it.
func directConvGrouped(mk microKernel, g int, out, xp []float32, n, hp, wp, c, k int, b []float32, cols int) {
	oh, ow := hp-k+1, wp-k+1
	win := (g + k - 1) * c // one kernel row's window of a group, in floats
	rows, gcols := k*win, g*cols
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	// The banded weight, rows (ki, px, ci) by columns (gi, j).
	buf.a = reuseFloats(buf.a, rows*gcols)
	band := buf.a
	clear(band)
	for ki := 0; ki < k; ki++ {
		for gi := 0; gi < g; gi++ {
			for kj := 0; kj < k; kj++ {
				for ci := 0; ci < c; ci++ {
					src := b[((ki*k+kj)*c+ci)*cols : ((ki*k+kj)*c+ci+1)*cols]
					copy(band[(ki*win+(gi+kj)*c+ci)*gcols+gi*cols:], src)
				}
			}
		}
	}
	buf.b = reuseFloats(buf.b, roundUp(gcols, mk.nr)*rows)
	packB(buf.b, band, gcols, false, 0, rows, 0, gcols, mk)
	buf.offs = reuseInts(buf.offs, k)
	for ki := range buf.offs {
		buf.offs[ki] = ki * wp * c
	}
	tapConv(mk, tapGrid{n: n, h: oh, w: ow / g, wp: ow / g, rs: g * c, c: win,
		inSample: hp * wp * c, inRow: wp * c, outSample: oh * ow * cols, outRow: ow * cols, outPix: g * cols},
		[]tapPhase{{offs: buf.offs, b: buf.b}}, xp, out, gcols)
}
