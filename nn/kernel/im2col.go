package kernel

// ConvOut returns the output side of a convolution over a side of in pixels
// with a square kernel of side k, the given stride and zero padding pad on
// both ends: (in + 2·pad − k)/stride + 1. It is ≤ 0 when the kernel does not fit.
func ConvOut(in, k, stride, pad int) int {
	if in+2*pad < k {
		return 0
	}
	return (in+2*pad-k)/stride + 1
}

// Im2col unrolls one image img of shape [c, h, w] into the matrix col of
// c·k·k rows by oh·ow columns, where oh, ow = ConvOut(h|w, k, stride, pad)
// and rows lie ld ≥ oh·ow elements apart (so several images can fill
// side-by-side column blocks of one matrix): row (ci·k + ki)·k + kj holds,
// for each output position, the input pixel under kernel tap (ki, kj) of
// channel ci, or 0 where that falls in the padding.
func Im2col(col, img []float32, ld, c, h, w, k, stride, pad int) {
	oh, ow := ConvOut(h, k, stride, pad), ConvOut(w, k, stride, pad)
	p := oh * ow
	for ci := 0; ci < c; ci++ {
		plane := img[ci*h*w : (ci+1)*h*w]
		for ki := 0; ki < k; ki++ {
			for kj := 0; kj < k; kj++ {
				row := col[((ci*k+ki)*k+kj)*ld:][:p]
				if stride == 1 && ow == w {
					shiftPlane(row, plane, h, w, ki-pad, kj-pad)
					continue
				}
				for oy := 0; oy < oh; oy++ {
					out := row[oy*ow : (oy+1)*ow]
					iy := oy*stride - pad + ki
					if iy < 0 || iy >= h {
						clear(out)
						continue
					}
					src := plane[iy*w : (iy+1)*w]
					ix := kj - pad
					if stride == 1 {
						// Contiguous run: zeros left, a copy, zeros right.
						lo, hi := max(0, -ix), min(ow, w-ix)
						if hi <= lo {
							// This tap reads padding for every output
							// column (k − 1 > w + pad, e.g. 5×5 pad 2 on a
							// one-pixel-wide map).
							clear(out)
							continue
						}
						clear(out[:lo])
						copy(out[lo:hi], src[ix+lo:ix+hi])
						clear(out[hi:])
						continue
					}
					for ox := range out {
						if x := ix + ox*stride; x >= 0 && x < w {
							out[ox] = src[x]
						} else {
							out[ox] = 0
						}
					}
				}
			}
		}
	}
}

// Col2im is the adjoint of Im2col: it adds each entry of col (c·k·k rows
// of oh·ow columns, ld apart) into the pixel of img, of shape [c, h, w],
// that Im2col would have read it from. Entries that fall in the padding are
// dropped, and set to zero in col: Col2im uses col as scratch. img is
// accumulated into, not overwritten.
func Col2im(img, col []float32, ld, c, h, w, k, stride, pad int) {
	oh, ow := ConvOut(h, k, stride, pad), ConvOut(w, k, stride, pad)
	p := oh * ow
	for ci := 0; ci < c; ci++ {
		plane := img[ci*h*w : (ci+1)*h*w]
		for ki := 0; ki < k; ki++ {
			for kj := 0; kj < k; kj++ {
				row := col[((ci*k+ki)*k+kj)*ld:][:p]
				if stride == 1 && ow == w {
					unshiftPlane(plane, row, h, w, ki-pad, kj-pad)
					continue
				}
				for oy := 0; oy < oh; oy++ {
					in := row[oy*ow : (oy+1)*ow]
					iy := oy*stride - pad + ki
					if iy < 0 || iy >= h {
						continue
					}
					dst := plane[iy*w : (iy+1)*w]
					ix := kj - pad
					if stride == 1 {
						lo, hi := max(0, -ix), min(ow, w-ix)
						for ox := lo; ox < hi; ox++ {
							dst[ix+ox] += in[ox]
						}
						continue
					}
					for ox, v := range in {
						if x := ix + ox*stride; x >= 0 && x < w {
							dst[x] += v
						}
					}
				}
			}
		}
	}
}

// With stride 1 and an output as wide as the input (the usual "same"
// convolution), one im2col row is the input plane shifted by (dy, dx)
// with zeros shifted in: a single long copy, then the columns that wrapped
// around from the neighbouring row are zeroed.

// shiftPlane sets out[y·w + x] = plane[(y+dy)·w + x+dx], or 0 where that
// falls outside the h×w plane, for the oh = len(out)/w output rows.
func shiftPlane(out, plane []float32, h, w, dy, dx int) {
	oh := len(out) / w
	y0, y1 := max(0, -dy), min(oh, h-dy) // rows that read inside the plane
	if y1 <= y0 || dx <= -w || dx >= w {
		clear(out)
		return
	}
	d := dy*w + dx
	lo, hi := y0*w, y1*w
	a0, a1 := max(lo, -d), min(hi, h*w-d)
	clear(out[:a0])
	copy(out[a0:a1], plane[a0+d:a1+d])
	clear(out[a1:])
	zeroWrapped(out[lo:hi], w, dx)
}

// zeroWrapped zeroes, in each w-wide row of rows, the columns x for which
// x+dx falls outside [0, w).
func zeroWrapped(rows []float32, w, dx int) {
	if dx == 0 {
		return
	}
	c0, c1 := 0, -dx // columns to zero: [c0, c1) when dx < 0
	if dx > 0 {
		c0, c1 = w-dx, w
	}
	for r := 0; r+w <= len(rows); r += w {
		for x := r + c0; x < r+c1; x++ {
			rows[x] = 0
		}
	}
}

// unshiftPlane is the adjoint of shiftPlane: it adds out[y·w + x] into
// plane[(y+dy)·w + x+dx] wherever that lies inside the plane. It zeroes the
// entries of out that fall outside, so the rest can be added in one pass.
func unshiftPlane(plane, out []float32, h, w, dy, dx int) {
	oh := len(out) / w
	y0, y1 := max(0, -dy), min(oh, h-dy)
	if y1 <= y0 || dx <= -w || dx >= w {
		return
	}
	d := dy*w + dx
	lo, hi := y0*w, y1*w
	zeroWrapped(out[lo:hi], w, dx)
	a0, a1 := max(lo, -d), min(hi, h*w-d)
	Axpy(1, out[a0:a1], plane[a0+d:a1+d])
}
