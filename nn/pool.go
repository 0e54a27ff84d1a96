package nn

import (
	"fmt"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// MaxPool2D takes the maximum of each channel over K×K windows moved by
// Stride, on channels-last images:
// [N, H, W, C] → [N, (H+2·Pad−K)/Stride+1, (W+2·Pad−K)/Stride+1, C].
// Padding never wins (as PyTorch's MaxPool2d pads with −∞); Pad is 0
// unless made by NewPaddedMaxPool2D. Ties go to the first maximum in
// row-major window order.
type MaxPool2D struct {
	K, Stride, Pad int

	inShape []int
	y, dx   *Tensor
	argmax  []int32 // per output: the chosen input's position in its window, ky·K + kx
}

// NewMaxPool2D returns a max pool; it panics if k or stride is not positive.
func NewMaxPool2D(k, stride int) *MaxPool2D {
	if k < 1 || stride < 1 {
		panic(fmt.Sprintf("nn: NewMaxPool2D: bad geometry k=%d stride=%d", k, stride))
	}
	return &MaxPool2D{K: k, Stride: stride}
}

// NewPaddedMaxPool2D returns a max pool with pad pixels of padding on
// every side, such as ResNet's 3×3, stride 2, pad 1 after its ImageNet
// stem. It panics if k or stride is not positive, or pad is negative or
// more than k/2.
func NewPaddedMaxPool2D(k, stride, pad int) *MaxPool2D {
	if k < 1 || stride < 1 || pad < 0 || 2*pad > k {
		panic(fmt.Sprintf("nn: NewPaddedMaxPool2D: bad geometry k=%d stride=%d pad=%d", k, stride, pad))
	}
	return &MaxPool2D{K: k, Stride: stride, Pad: pad}
}

// Params returns nil.
func (l *MaxPool2D) Params() []*Param { return nil }

// Forward pools x [N, H, W, C]; it panics if the window does not fit.
func (l *MaxPool2D) Forward(x *Tensor, train bool) *Tensor {
	n, h, w, c := dims4("MaxPool2D", x)
	oh, ow := kernel.ConvOut(h, l.K, l.Stride, l.Pad), kernel.ConvOut(w, l.K, l.Stride, l.Pad)
	if oh < 1 || ow < 1 {
		panic(fmt.Sprintf("nn: MaxPool2D: window %d does not fit input %dx%d", l.K, h, w))
	}
	l.inShape = append(l.inShape[:0], x.Shape...)
	l.y = reuse(l.y, n, oh, ow, c)
	l.argmax = reuseSlice(l.argmax, n*oh*ow*c)
	in, out := h*w*c, oh*ow*c
	kernel.For(n, 1, func(_, i, _ int) {
		kernel.MaxPoolPad(l.y.Data[i*out:(i+1)*out], l.argmax[i*out:(i+1)*out], x.Data[i*in:(i+1)*in], h, w, c, l.K, l.Stride, l.Pad)
	})
	return l.y
}

// Backward routes each output gradient to the input that was the maximum.
func (l *MaxPool2D) Backward(dy *Tensor) *Tensor {
	l.dx = gradBuffer(l.dx, l.inShape...)
	n, h, w, c := l.inShape[0], l.inShape[1], l.inShape[2], l.inShape[3]
	in, out := l.dx.Len()/n, dy.Len()/n
	kernel.For(n, 1, func(_, i, _ int) {
		kernel.MaxPoolPadGrad(l.dx.Data[i*in:(i+1)*in], dy.Data[i*out:(i+1)*out], l.argmax[i*out:(i+1)*out], h, w, c, l.K, l.Stride, l.Pad)
	})
	return l.dx
}

// GlobalAvgPool averages each channel over its positions:
// [N, H, W, C] → [N, C].
type GlobalAvgPool struct {
	inShape []int
	y, dx   *Tensor
}

// NewGlobalAvgPool returns a global average pool.
func NewGlobalAvgPool() *GlobalAvgPool { return &GlobalAvgPool{} }

// Params returns nil.
func (l *GlobalAvgPool) Params() []*Param { return nil }

// Forward averages x [N, H, W, C] to [N, C].
func (l *GlobalAvgPool) Forward(x *Tensor, train bool) *Tensor {
	n, h, w, c := dims4("GlobalAvgPool", x)
	l.inShape = append(l.inShape[:0], x.Shape...)
	l.y = reuse(l.y, n, c)
	p := h * w
	inv := 1 / float32(p)
	kernel.For(n, 1, func(_, i, _ int) {
		dst := l.y.Data[i*c : (i+1)*c]
		clear(dst)
		for q := 0; q < p; q++ {
			kernel.Axpy(1, x.Data[(i*p+q)*c:(i*p+q+1)*c], dst)
		}
		kernel.Scale(dst, dst, inv)
	})
	return l.y
}

// Backward spreads each gradient evenly over its channel's positions.
func (l *GlobalAvgPool) Backward(dy *Tensor) *Tensor {
	l.dx = gradBuffer(l.dx, l.inShape...)
	n, c := l.inShape[0], l.inShape[3]
	p := l.inShape[1] * l.inShape[2]
	inv := 1 / float32(p)
	kernel.For(n, 1, func(_, i, _ int) {
		g := dy.Data[i*c : (i+1)*c]
		for q := 0; q < p; q++ {
			kernel.Scale(l.dx.Data[(i*p+q)*c:(i*p+q+1)*c], g, inv)
		}
	})
	return l.dx
}

// Upsample2D repeats each pixel Scale×Scale times (nearest neighbour):
// [N, H, W, C] → [N, H·Scale, W·Scale, C].
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

// Forward upsamples x [N, H, W, C].
func (l *Upsample2D) Forward(x *Tensor, train bool) *Tensor {
	n, h, w, c := dims4("Upsample2D", x)
	s := l.Scale
	l.inShape = append(l.inShape[:0], x.Shape...)
	l.y = reuse(l.y, n, h*s, w*s, c)
	orow := w * s * c
	kernel.For(n*h, 1, func(_, row, _ int) {
		src := x.Data[row*w*c : (row+1)*w*c]
		first := l.y.Data[row*s*orow : (row*s+1)*orow]
		for ix := 0; ix < w; ix++ {
			px := src[ix*c : (ix+1)*c]
			for k := 0; k < s; k++ {
				copy(first[(ix*s+k)*c:(ix*s+k+1)*c], px)
			}
		}
		for k := 1; k < s; k++ {
			copy(l.y.Data[(row*s+k)*orow:(row*s+k+1)*orow], first)
		}
	})
	return l.y
}

// Backward sums the gradients of each pixel's Scale×Scale copies.
func (l *Upsample2D) Backward(dy *Tensor) *Tensor {
	l.dx = gradBuffer(l.dx, l.inShape...)
	n, h, w, c := l.inShape[0], l.inShape[1], l.inShape[2], l.inShape[3]
	s := l.Scale
	orow := w * s * c
	kernel.For(n*h, 1, func(_, row, _ int) {
		dst := l.dx.Data[row*w*c : (row+1)*w*c]
		clear(dst)
		for k := 0; k < s; k++ {
			g := dy.Data[(row*s+k)*orow : (row*s+k+1)*orow]
			for ox := 0; ox < w*s; ox++ {
				kernel.Axpy(1, g[ox*c:(ox+1)*c], dst[(ox/s)*c:(ox/s+1)*c])
			}
		}
	})
	return l.dx
}

func (l *MaxPool2D) releaseGrad() { releaseGrad(l.dx) }

func (l *GlobalAvgPool) releaseGrad() { releaseGrad(l.dx) }

func (l *Upsample2D) releaseGrad() { releaseGrad(l.dx) }
