package kernel

import "fmt"

// MaxPool pools one channels-last image src [h, w, c] over k×k windows
// moved by stride, without padding, into dst [oh, ow, c] (oh, ow =
// ConvOut(h|w, k, stride, 0)), and sets arg [oh, ow, c] to the window
// position ky·k + kx of each maximum. The maximum is the first in
// row-major window order that no later value exceeds (for 2×2 windows
// moved by 2, computed as MAXPS(MAXPS(a, b), MAXPS(e, d)) with
// MAXPS(x, y) = x > y ? x : y, and then the first position equal to it,
// the same bits on every path). It panics if a size is inconsistent.
func MaxPool(dst []float32, arg []int32, src []float32, h, w, c, k, stride int) {
	MaxPoolPad(dst, arg, src, h, w, c, k, stride, 0)
}

// MaxPoolPad is MaxPool with pad pixels of padding on every side that
// never win (as if −∞, PyTorch's MaxPool2d padding): oh, ow =
// ConvOut(h|w, k, stride, pad), and a window position ky·k + kx counts
// from the padded window's corner. It panics if a size is inconsistent or
// pad > k/2 (a window could then hold padding alone).
func MaxPoolPad(dst []float32, arg []int32, src []float32, h, w, c, k, stride, pad int) {
	oh, ow := ConvOut(h, k, stride, pad), ConvOut(w, k, stride, pad)
	if oh < 1 || ow < 1 || pad < 0 || 2*pad > k || len(src) < h*w*c || len(dst) < oh*ow*c || len(arg) < oh*ow*c {
		panic(fmt.Sprintf("kernel: MaxPool: bad sizes h=%d w=%d c=%d k=%d stride=%d pad=%d (src %d, dst %d, arg %d)",
			h, w, c, k, stride, pad, len(src), len(dst), len(arg)))
	}
	row := ow * c
	if k == 2 && stride == 2 && pad == 0 {
		for oy := 0; oy < oh; oy++ {
			top := src[2*oy*w*c : (2*oy+1)*w*c]
			bottom := src[(2*oy+1)*w*c : (2*oy+2)*w*c]
			MaxPool2Rows(dst[oy*row:(oy+1)*row], arg[oy*row:(oy+1)*row], top, bottom, c)
		}
		return
	}
	for oy := 0; oy < oh; oy++ {
		y0 := oy*stride - pad
		ky0, ky1 := max(0, -y0), min(k, h-y0)
		for ox := 0; ox < ow; ox++ {
			x0 := ox*stride - pad
			kx0, kx1 := max(0, -x0), min(k, w-x0)
			o := (oy*ow + ox) * c
			d, a := dst[o:o+c], arg[o:o+c]
			first := ((y0+ky0)*w + x0 + kx0) * c
			copy(d, src[first:first+c])
			for j := range a {
				a[j] = int32(ky0*k + kx0)
			}
			for ky := ky0; ky < ky1; ky++ {
				for kx := kx0; kx < kx1; kx++ {
					off := ((y0+ky)*w + x0 + kx) * c
					for j, v := range src[off : off+c] {
						if v > d[j] {
							d[j], a[j] = v, int32(ky*k+kx)
						}
					}
				}
			}
		}
	}
}

// MaxPool2Rows pools one row of 2×2 windows moved by 2: for output pixel
// q < len(dst)/c and channel j, the window is pixels 2q and 2q+1 of the
// input rows top and bottom (each [w, c], w ≥ 2·len(dst)/c); dst and arg
// are as for MaxPool (arg 0, 1 in top; 2, 3 in bottom).
func MaxPool2Rows(dst []float32, arg []int32, top, bottom []float32, c int) {
	pixels := len(dst) / c
	if pixels == 0 {
		return
	}
	_, _ = top[2*pixels*c-1], bottom[2*pixels*c-1]
	arg = arg[:pixels*c]
	switch l := rowLevel(); {
	case l >= levelAVX512 && c%16 == 0:
		maxPool2AVX512(&dst[0], &arg[0], &top[0], &bottom[0], pixels, c)
		return
	case l >= levelAVX2 && c%8 == 0:
		maxPool2AVX2(&dst[0], &arg[0], &top[0], &bottom[0], pixels, c)
		return
	}
	mx := func(x, y float32) float32 {
		if x > y {
			return x
		}
		return y
	}
	for q := 0; q < pixels; q++ {
		p00, p01 := top[2*q*c:(2*q+1)*c], top[(2*q+1)*c:(2*q+2)*c]
		p10, p11 := bottom[2*q*c:(2*q+1)*c], bottom[(2*q+1)*c:(2*q+2)*c]
		d, ar := dst[q*c:(q+1)*c], arg[q*c:(q+1)*c]
		for j := range d {
			a, b, e, f := p00[j], p01[j], p10[j], p11[j]
			m := mx(mx(a, b), mx(e, f))
			code := int32(3)
			if e == m {
				code = 2
			}
			if b == m {
				code = 1
			}
			if a == m {
				code = 0
			}
			d[j], ar[j] = m, code
		}
	}
}

// MaxPoolGrad sets dx [h, w, c] to the gradient of MaxPool with respect
// to its input: each output gradient dy [oh, ow, c] goes to the input its
// arg names, summed where windows overlap, and every other input gets +0.
func MaxPoolGrad(dx, dy []float32, arg []int32, h, w, c, k, stride int) {
	MaxPoolPadGrad(dx, dy, arg, h, w, c, k, stride, 0)
}

// MaxPoolPadGrad is MaxPoolGrad for MaxPoolPad's padded windows.
func MaxPoolPadGrad(dx, dy []float32, arg []int32, h, w, c, k, stride, pad int) {
	oh, ow := ConvOut(h, k, stride, pad), ConvOut(w, k, stride, pad)
	if oh < 1 || ow < 1 || pad < 0 || 2*pad > k || len(dx) < h*w*c || len(dy) < oh*ow*c || len(arg) < oh*ow*c {
		panic(fmt.Sprintf("kernel: MaxPoolGrad: bad sizes h=%d w=%d c=%d k=%d stride=%d pad=%d", h, w, c, k, stride, pad))
	}
	row := ow * c
	if k == 2 && stride == 2 && pad == 0 {
		for oy := 0; oy < oh; oy++ {
			top := dx[2*oy*w*c : (2*oy+1)*w*c]
			bottom := dx[(2*oy+1)*w*c : (2*oy+2)*w*c]
			MaxPool2RowsGrad(top, bottom, dy[oy*row:(oy+1)*row], arg[oy*row:(oy+1)*row], c)
			// An odd last column is in no window.
			clear(top[2*ow*c:])
			clear(bottom[2*ow*c:])
		}
		clear(dx[2*oh*w*c : h*w*c]) // an odd last row
		return
	}
	dx = dx[:h*w*c]
	clear(dx)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			o := (oy*ow + ox) * c
			base := ((oy*stride-pad)*w + ox*stride - pad) * c
			for j, a := range arg[o : o+c] {
				ky, kx := int(a)/k, int(a)%k
				dx[base+(ky*w+kx)*c+j] += dy[o+j]
			}
		}
	}
}

// MaxPool2RowsGrad is the adjoint of MaxPool2Rows: it sets pixels 2q and
// 2q+1 of top and bottom (for q < len(g)/c) to g where arg names them and
// to +0 elsewhere.
func MaxPool2RowsGrad(top, bottom, g []float32, arg []int32, c int) {
	pixels := len(g) / c
	if pixels == 0 {
		return
	}
	_, _ = top[2*pixels*c-1], bottom[2*pixels*c-1]
	arg = arg[:pixels*c]
	switch l := rowLevel(); {
	case l >= levelAVX512 && c%16 == 0:
		maxPool2GradAVX512(&top[0], &bottom[0], &g[0], &arg[0], pixels, c)
		return
	case l >= levelAVX2 && c%8 == 0:
		maxPool2GradAVX2(&top[0], &bottom[0], &g[0], &arg[0], pixels, c)
		return
	}
	for q := 0; q < pixels; q++ {
		outs := [4][]float32{top[2*q*c : (2*q+1)*c], top[(2*q+1)*c : (2*q+2)*c],
			bottom[2*q*c : (2*q+1)*c], bottom[(2*q+1)*c : (2*q+2)*c]}
		for j, a := range arg[q*c : (q+1)*c] {
			for k, o := range outs {
				if int32(k) == a {
					o[j] = g[q*c+j]
				} else {
					o[j] = 0
				}
			}
		}
	}
}

// AdaptiveAvgPool averages one channels-last image src [h, w, c] over
// p×p bins into dst [p, p, c]: bin (i, j) covers rows
// [⌊i·h/p⌋, ⌈(i+1)·h/p⌉) and the like columns, so bins may overlap when
// p does not divide the side (and repeat pixels when p exceeds it). The
// sums are float64. It panics if p < 1 or a slice is short.
func AdaptiveAvgPool(dst, src []float32, h, w, c, p int) {
	if p < 1 || len(src) < h*w*c || len(dst) < p*p*c {
		panic(fmt.Sprintf("kernel: AdaptiveAvgPool: bad sizes h=%d w=%d c=%d p=%d (src %d, dst %d)", h, w, c, p, len(src), len(dst)))
	}
	sum := make([]float64, c)
	for i := 0; i < p; i++ {
		y0, y1 := i*h/p, ((i+1)*h+p-1)/p
		for j := 0; j < p; j++ {
			x0, x1 := j*w/p, ((j+1)*w+p-1)/p
			clear(sum)
			for yy := y0; yy < y1; yy++ {
				for xx := x0; xx < x1; xx++ {
					for k, v := range src[(yy*w+xx)*c : (yy*w+xx+1)*c] {
						sum[k] += float64(v)
					}
				}
			}
			inv := 1 / float64((y1-y0)*(x1-x0))
			d := dst[(i*p+j)*c : (i*p+j+1)*c]
			for k, v := range sum {
				d[k] = float32(v * inv)
			}
		}
	}
}
