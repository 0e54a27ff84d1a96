package kernel

// ConvOut returns the output side of a convolution over a side of in pixels
// with a square kernel of side k, the given stride and zero padding pad on
// both ends: (in + 2·pad − k)/stride + 1. It is 0 when the kernel does not fit.
func ConvOut(in, k, stride, pad int) int {
	if in+2*pad < k {
		return 0
	}
	return (in+2*pad-k)/stride + 1
}

// Images are channels-last: an image of h×w pixels and c channels is
// [h, w, c], pixel (y, x) holding its c values contiguously.

// Im2col unrolls one channels-last image img [h, w, c] into col, a matrix
// of oh·ow rows (one per output position, row-major over (oy, ox)) by
// k·k·c columns, where oh, ow = ConvOut(h|w, k, stride, pad): column
// (ki·k + kj)·c + ci of row (oy, ox) holds channel ci of the input pixel
// under kernel tap (ki, kj), or 0 where that falls in the padding.
// Stride-1 taps in one kernel row read adjacent pixels, so each kernel row
// is one contiguous copy of up to k·c values.
func Im2col(col, img []float32, h, w, c, k, stride, pad int) {
	oh, ow := ConvOut(h, k, stride, pad), ConvOut(w, k, stride, pad)
	kc := k * c
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			row := col[(oy*ow+ox)*k*kc:][:k*kc]
			x0 := ox*stride - pad
			lo, hi := max(0, -x0), min(k, w-x0) // taps kj in [lo, hi) read inside
			for ki := 0; ki < k; ki++ {
				seg := row[ki*kc : (ki+1)*kc]
				iy := oy*stride - pad + ki
				if iy < 0 || iy >= h || hi <= lo {
					clearSmall(seg)
					continue
				}
				clearSmall(seg[:lo*c])
				copySmall(seg[lo*c:hi*c], img[(iy*w+x0+lo)*c:(iy*w+x0+hi)*c])
				clearSmall(seg[hi*c:])
			}
		}
	}
}

// Col2im is the adjoint of Im2col: it adds each entry of col (oh·ow rows of
// k·k·c) into the channel of the pixel of img [h, w, c] that Im2col would
// have read it from; entries that fall in the padding are dropped. img is
// accumulated into, not overwritten.
func Col2im(img, col []float32, h, w, c, k, stride, pad int) {
	oh, ow := ConvOut(h, k, stride, pad), ConvOut(w, k, stride, pad)
	kc := k * c
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			row := col[(oy*ow+ox)*k*kc:][:k*kc]
			x0 := ox*stride - pad
			lo, hi := max(0, -x0), min(k, w-x0)
			if hi <= lo {
				continue
			}
			for ki := 0; ki < k; ki++ {
				iy := oy*stride - pad + ki
				if iy < 0 || iy >= h {
					continue
				}
				Axpy(1, row[ki*kc+lo*c:ki*kc+hi*c], img[(iy*w+x0+lo)*c:(iy*w+x0+hi)*c])
			}
		}
	}
}

// copySmall is copy for the short runs of im2col, where a call to memmove
// costs more than the copy.
func copySmall(dst, src []float32) {
	if len(src) >= 32 {
		copy(dst, src)
		return
	}
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = v
	}
}

// clearSmall is clear for short runs.
func clearSmall(s []float32) {
	if len(s) >= 32 {
		clear(s)
		return
	}
	for i := range s {
		s[i] = 0
	}
}
