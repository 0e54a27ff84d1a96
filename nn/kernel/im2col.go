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

// Im2col unrolls one image img of shape [c, h, w] into col of shape
// [c·k·k, oh·ow], where oh, ow = ConvOut(h|w, k, stride, pad): row
// (ci·k + ki)·k + kj holds, for each output position, the input pixel under
// kernel tap (ki, kj) of channel ci, or 0 where that falls in the padding.
func Im2col(col, img []float32, c, h, w, k, stride, pad int) {
	oh, ow := ConvOut(h, k, stride, pad), ConvOut(w, k, stride, pad)
	p := oh * ow
	for ci := 0; ci < c; ci++ {
		plane := img[ci*h*w : (ci+1)*h*w]
		for ki := 0; ki < k; ki++ {
			for kj := 0; kj < k; kj++ {
				row := col[((ci*k+ki)*k+kj)*p:][:p]
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

// Col2im is the adjoint of Im2col: it adds each entry of col, of shape
// [c·k·k, oh·ow], into the pixel of img, of shape [c, h, w], that Im2col
// would have read it from. Entries that fall in the padding are dropped.
// img is accumulated into, not overwritten.
func Col2im(img, col []float32, c, h, w, k, stride, pad int) {
	oh, ow := ConvOut(h, k, stride, pad), ConvOut(w, k, stride, pad)
	p := oh * ow
	for ci := 0; ci < c; ci++ {
		plane := img[ci*h*w : (ci+1)*h*w]
		for ki := 0; ki < k; ki++ {
			for kj := 0; kj < k; kj++ {
				row := col[((ci*k+ki)*k+kj)*p:][:p]
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
