package kernel

import (
	"fmt"
	"unsafe"
)

// DirectConv computes a stride-1 convolution of channels-last images
// without unrolling them into an im2col matrix:
//
//	out[i, oy, ox, j] = Σ over ki, kj < k and ci < c of
//	                    xp[i, oy+ki, ox+kj, ci] · b[(ki·k+kj)·c + ci, j]
//
// xp is the zero-padded input [n, hp, wp, c]: padding is the caller's, so
// the same routine serves a convolution's forward pass and its input
// gradient (a convolution of the padded output gradient with the flipped
// kernel). b is the k·k·c × cols weight matrix, row-major. out is
// [n, hp−k+1, wp−k+1, cols] and is overwritten.
//
// The micro-kernel reads each tap's window of xp in place, so xp must have
// at least 8·c floats after its last pixel (it reads past the end of a
// row when the last tile of a row is partial). DirectConv panics if it
// has not, or if a size is inconsistent.
func DirectConv(out, xp []float32, n, hp, wp, c, k int, b []float32, cols int) {
	directConv(active, out, xp, n, hp, wp, c, k, b, cols)
}

func directConv(mk microKernel, out, xp []float32, n, hp, wp, c, k int, b []float32, cols int) {
	oh, ow := hp-k+1, wp-k+1
	kk := k * k * c
	if oh < 1 || ow < 1 || cap(xp) < n*hp*wp*c+8*c || len(b) < kk*cols || len(out) < n*oh*ow*cols {
		panic(fmt.Sprintf("kernel: DirectConv: bad sizes n=%d hp=%d wp=%d c=%d k=%d cols=%d (len xp %d cap %d, b %d, out %d)",
			n, hp, wp, c, k, cols, len(xp), cap(xp), len(b), len(out)))
	}
	xp = xp[:cap(xp)]
	mr, nr := mk.mr, mk.nr
	panels := (cols + nr - 1) / nr
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	buf.b = reuseFloats(buf.b, panels*nr*kk)
	packB(buf.b, b, cols, false, 0, kk, 0, cols, nr)
	buf.offs = reuseInts(buf.offs, k*k)
	offs := buf.offs
	for ki := 0; ki < k; ki++ {
		for kj := 0; kj < k; kj++ {
			offs[ki*k+kj] = (ki*wp + kj) * c
		}
	}
	For(n*oh, max(1, 4096/(ow*cols)), func(_, lo, hi int) {
		var tile [8 * 16]float32
		for r := lo; r < hi; r++ {
			i, oy := r/oh, r%oh
			abase := (i*hp + oy) * wp * c
			obase := (i*oh + oy) * ow * cols
			for jp := 0; jp < panels; jp++ {
				bp := &buf.b[jp*nr*kk]
				ncols := min(nr, cols-jp*nr)
				for ox := 0; ox < ow; ox += mr {
					rows := min(mr, ow-ox)
					a := &xp[abase+ox*c]
					o := obase + ox*cols + jp*nr
					if rows == mr && ncols == nr {
						mk.conv(k*k, &offs[0], c, a, c, bp, &out[o], cols, false)
						continue
					}
					mk.conv(k*k, &offs[0], c, a, c, bp, &tile[0], nr, false)
					for q := 0; q < rows; q++ {
						copy(out[o+q*cols:o+q*cols+ncols], tile[q*nr:q*nr+ncols])
					}
				}
			}
		}
	})
}

// convKernelGeneric4x16 is the portable direct-convolution micro-kernel
// (see convKernelAVX2_6x16 in sgemm_amd64.s for the contract).
func convKernelGeneric4x16(taps int, offs *int, c int, ap *float32, rs int, bp, cp *float32, ldc int, accumulate bool) {
	const mr, nr = 4, 16
	offsets := unsafe.Slice(offs, taps)
	span := 0
	for _, o := range offsets {
		span = max(span, o)
	}
	a := unsafe.Slice(ap, span+(mr-1)*rs+c)
	b := unsafe.Slice(bp, taps*c*nr)
	var acc [mr][nr]float32
	for t, off := range offsets {
		for ci := 0; ci < c; ci++ {
			bv := (*[nr]float32)(b[(t*c+ci)*nr:])
			for i := 0; i < mr; i++ {
				ai := a[off+i*rs+ci]
				row := &acc[i]
				for j := 0; j < nr; j++ {
					row[j] += ai * bv[j]
				}
			}
		}
	}
	out := unsafe.Slice(cp, (mr-1)*ldc+nr)
	for i := 0; i < mr; i++ {
		dst := (*[nr]float32)(out[i*ldc : i*ldc+nr])
		if accumulate {
			for j := range dst {
				dst[j] += acc[i][j]
			}
		} else {
			*dst = acc[i]
		}
	}
}

func reuseInts(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}
