package nn

import (
	"fmt"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// MaxPool2D takes the maximum over K×K windows moved by Stride, without
// padding: [N, C, H, W] → [N, C, (H−K)/Stride+1, (W−K)/Stride+1].
// Ties go to the first maximum in row-major order.
type MaxPool2D struct {
	K, Stride int

	inShape []int
	y, dx   *Tensor
	argmax  []int32 // per output: index of the chosen input within its plane
}

// NewMaxPool2D returns a max pool; it panics if k or stride is not positive.
func NewMaxPool2D(k, stride int) *MaxPool2D {
	if k < 1 || stride < 1 {
		panic(fmt.Sprintf("nn: NewMaxPool2D: bad geometry k=%d stride=%d", k, stride))
	}
	return &MaxPool2D{K: k, Stride: stride}
}

// Params returns nil.
func (l *MaxPool2D) Params() []*Param { return nil }

// Forward pools x [N, C, H, W]; it panics if the window does not fit.
func (l *MaxPool2D) Forward(x *Tensor, train bool) *Tensor {
	n, c, h, w := dims4("MaxPool2D", x)
	oh, ow := kernel.ConvOut(h, l.K, l.Stride, 0), kernel.ConvOut(w, l.K, l.Stride, 0)
	if oh < 1 || ow < 1 {
		panic(fmt.Sprintf("nn: MaxPool2D: window %d does not fit input %dx%d", l.K, h, w))
	}
	l.inShape = append(l.inShape[:0], x.Shape...)
	l.y = reuse(l.y, n, c, oh, ow)
	l.argmax = reuseSlice(l.argmax, n*c*oh*ow)
	kernel.For(n*c, 8, func(_, lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			in := x.Data[pl*h*w : (pl+1)*h*w]
			out := l.y.Data[pl*oh*ow : (pl+1)*oh*ow]
			idx := l.argmax[pl*oh*ow : (pl+1)*oh*ow]
			if l.K == 2 && l.Stride == 2 {
				maxPool2x2(out, idx, in, w, oh, ow)
				continue
			}
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					base := oy*l.Stride*w + ox*l.Stride
					best, bi := in[base], base
					for ky := 0; ky < l.K; ky++ {
						row := base + ky*w
						for kx := 0; kx < l.K; kx++ {
							if v := in[row+kx]; v > best {
								best, bi = v, row+kx
							}
						}
					}
					out[oy*ow+ox], idx[oy*ow+ox] = best, int32(bi)
				}
			}
		}
	})
	return l.y
}

// maxPool2x2 is the forward pass of the common 2×2, stride-2 pool over one
// plane of width w, without branches on the data: the maximum comes from
// max, and the first position holding it from integer selects, which the
// compiler turns into conditional moves.
func maxPool2x2(out []float32, idx []int32, in []float32, w, oh, ow int) {
	for oy := 0; oy < oh; oy++ {
		base := 2 * oy * w
		r0, r1 := in[base:base+2*ow], in[base+w:base+w+2*ow]
		o, ix := out[oy*ow:(oy+1)*ow], idx[oy*ow:(oy+1)*ow]
		for ox := range o {
			a, b, c, d := r0[2*ox], r0[2*ox+1], r1[2*ox], r1[2*ox+1]
			m := max(max(a, b), max(c, d))
			k := int32(w + 1)
			if c == m {
				k = int32(w)
			}
			if b == m {
				k = 1
			}
			if a == m {
				k = 0
			}
			o[ox], ix[ox] = m, int32(base+2*ox)+k
		}
	}
}

// Backward routes each output gradient to the input that was the maximum.
func (l *MaxPool2D) Backward(dy *Tensor) *Tensor {
	l.dx = reuse(l.dx, l.inShape...)
	hw, ohw := l.inShape[2]*l.inShape[3], l.y.Shape[2]*l.y.Shape[3]
	kernel.For(l.inShape[0]*l.inShape[1], 8, func(_, lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			dst := l.dx.Data[pl*hw : (pl+1)*hw]
			clear(dst)
			for j, i := range l.argmax[pl*ohw : (pl+1)*ohw] {
				dst[i] += dy.Data[pl*ohw+j]
			}
		}
	})
	return l.dx
}

// GlobalAvgPool averages each channel over its positions:
// [N, C, H, W] → [N, C].
type GlobalAvgPool struct {
	inShape []int
	y, dx   *Tensor
}

// NewGlobalAvgPool returns a global average pool.
func NewGlobalAvgPool() *GlobalAvgPool { return &GlobalAvgPool{} }

// Params returns nil.
func (l *GlobalAvgPool) Params() []*Param { return nil }

// Forward averages x [N, C, H, W] to [N, C].
func (l *GlobalAvgPool) Forward(x *Tensor, train bool) *Tensor {
	n, c, h, w := dims4("GlobalAvgPool", x)
	l.inShape = append(l.inShape[:0], x.Shape...)
	l.y = reuse(l.y, n, c)
	s := h * w
	for i := range l.y.Data {
		l.y.Data[i] = float32(kernel.Sum(x.Data[i*s:(i+1)*s]) / float64(s))
	}
	return l.y
}

// Backward spreads each gradient evenly over its channel's positions.
func (l *GlobalAvgPool) Backward(dy *Tensor) *Tensor {
	l.dx = reuse(l.dx, l.inShape...)
	s := l.inShape[2] * l.inShape[3]
	for i, d := range dy.Data {
		g := d / float32(s)
		dst := l.dx.Data[i*s : (i+1)*s]
		for j := range dst {
			dst[j] = g
		}
	}
	return l.dx
}

// Upsample2D repeats each pixel Scale×Scale times (nearest neighbour):
// [N, C, H, W] → [N, C, H·Scale, W·Scale].
type Upsample2D struct {
	Scale int

	inShape []int
	y, dx   *Tensor
}

// NewUpsample2D returns a nearest-neighbour upsampler; it panics if scale < 1.
func NewUpsample2D(scale int) *Upsample2D {
	if scale < 1 {
		panic(fmt.Sprintf("nn: NewUpsample2D: scale %d < 1", scale))
	}
	return &Upsample2D{Scale: scale}
}

// Params returns nil.
func (l *Upsample2D) Params() []*Param { return nil }

// Forward upsamples x [N, C, H, W].
func (l *Upsample2D) Forward(x *Tensor, train bool) *Tensor {
	n, c, h, w := dims4("Upsample2D", x)
	s := l.Scale
	l.inShape = append(l.inShape[:0], x.Shape...)
	l.y = reuse(l.y, n, c, h*s, w*s)
	kernel.For(n*c, 8, func(_, lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			in := x.Data[pl*h*w : (pl+1)*h*w]
			out := l.y.Data[pl*h*w*s*s : (pl+1)*h*w*s*s]
			for iy := 0; iy < h; iy++ {
				row := out[iy*s*w*s : (iy*s+1)*w*s]
				for ix, v := range in[iy*w : (iy+1)*w] {
					for k := 0; k < s; k++ {
						row[ix*s+k] = v
					}
				}
				for k := 1; k < s; k++ {
					copy(out[(iy*s+k)*w*s:(iy*s+k+1)*w*s], row)
				}
			}
		}
	})
	return l.y
}

// Backward sums the gradients of each pixel's Scale×Scale copies.
func (l *Upsample2D) Backward(dy *Tensor) *Tensor {
	l.dx = reuse(l.dx, l.inShape...)
	h, w, s := l.inShape[2], l.inShape[3], l.Scale
	kernel.For(l.inShape[0]*l.inShape[1], 8, func(_, lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			g := dy.Data[pl*h*w*s*s : (pl+1)*h*w*s*s]
			dst := l.dx.Data[pl*h*w : (pl+1)*h*w]
			clear(dst)
			for oy := 0; oy < h*s; oy++ {
				drow := dst[(oy/s)*w : (oy/s+1)*w]
				for ox, v := range g[oy*w*s : (oy+1)*w*s] {
					drow[ox/s] += v
				}
			}
		}
	})
	return l.dx
}
