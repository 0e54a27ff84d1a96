package kernel

import "fmt"

// Upsampled convolutions. A 3×3 convolution with zero padding 1 of an
// image upsampled 2× by nearest neighbour is, for each of the four output
// phases (py, px) ∈ {0,1}² (output pixel (2y+py, 2x+px)), a 2×2
// convolution of the low-resolution image whose taps are sums of the 3×3
// taps that land on the same input pixel: kernel row ky of phase row py
// reads input row y − 1 + py + upTap[py][ky], and likewise for columns.
// Each phase costs 4 taps instead of 9, and the upsampled image is never
// made. The functions below run the forward pass, the input gradient and
// the weight gradient this way, on channels-last images; the 3×3 weight
// is [cols, 3, 3, c] (cols output channels, c input channels), as Conv2D
// stores it. Phase p is 2·py + px; tap t of a phase is 2·a + b for its
// 2×2 kernel's row a and column b.

// upTap[py][ky] is the row (or column) of phase py's 2×2 kernel that row
// (or column) ky of the 3×3 kernel folds into.
var upTap = [2][3]int{{0, 1, 1}, {0, 0, 1}}

// UpConvWeights sets wk to the four phase kernels of the 3×3 weight w
// [cols, 3, 3, c]: phase p's kernel is wk[p·cols·4c : (p+1)·cols·4c],
// [cols, 2, 2, c] as a Conv2D weight, whose tap t of filter o is the sum
// of the taps w[o, ky, kx] that phase p folds into t. It panics if a slice
// is too short.
func UpConvWeights(wk, w []float32, cols, c int) {
	if len(wk) < 16*c*cols || len(w) < 9*c*cols {
		panic(fmt.Sprintf("kernel: UpConvWeights: %d and %d floats for %d×3×3×%d", len(wk), len(w), cols, c))
	}
	For(4*cols, max(1, 4096/(16*c)), func(_, lo, hi int) {
		for r := lo; r < hi; r++ { // r = p·cols + o
			p, o := r/cols, r%cols
			dst := wk[r*4*c : (r+1)*4*c]
			clear(dst)
			for ky := 0; ky < 3; ky++ {
				for kx := 0; kx < 3; kx++ {
					t := 2*upTap[p>>1][ky] + upTap[p&1][kx]
					Axpy(1, w[((o*3+ky)*3+kx)*c:((o*3+ky)*3+kx+1)*c], dst[t*c:(t+1)*c])
				}
			}
		}
	})
}

// AddUpConvWeightGrad adds the gradient of the phase kernels gk (laid out
// as UpConvWeights writes them) into the gradient of the 3×3 weight they
// were made from, gw [cols, 3, 3, c]: the adjoint of UpConvWeights. It
// panics if a slice is too short.
func AddUpConvWeightGrad(gw, gk []float32, cols, c int) {
	if len(gk) < 16*c*cols || len(gw) < 9*c*cols {
		panic(fmt.Sprintf("kernel: AddUpConvWeightGrad: %d and %d floats for %d×3×3×%d", len(gk), len(gw), cols, c))
	}
	For(cols, max(1, 4096/(36*c)), func(_, lo, hi int) {
		for o := lo; o < hi; o++ {
			for ky := 0; ky < 3; ky++ {
				for kx := 0; kx < 3; kx++ {
					dst := gw[((o*3+ky)*3+kx)*c : ((o*3+ky)*3+kx+1)*c]
					for p := 0; p < 4; p++ {
						t := 2*upTap[p>>1][ky] + upTap[p&1][kx]
						Axpy(1, gk[((p*cols+o)*4+t)*c:((p*cols+o)*4+t+1)*c], dst)
					}
				}
			}
		}
	})
}

// The input gradient reads the output gradient in a 4×4 window of
// full-resolution pixels (2y−1+r, 2x−1+s), r, s < 4, around input pixel
// (y, x); window row r is phase row upPhase[r] and tap row upRow[r], which
// lies in row y − 1 + upShift[r] of the low-resolution grid.
var (
	upPhase = [4]int{1, 0, 1, 0}
	upRow   = [4]int{1, 1, 0, 0}
	upShift = [4]int{0, 1, 1, 2}
)

// UpConvInputWeights sets bx, 16·cols × c, to the weight matrix of the
// input gradient (see UpConvInputGrad) from the phase kernels wk that
// UpConvWeights made: row (4·r + s)·cols + o holds the phase kernel's
// taps that take the c input channels to output channel o at window
// pixel (r, s). It panics if a slice is too short.
func UpConvInputWeights(bx, wk []float32, cols, c int) {
	if len(wk) < 16*c*cols || len(bx) < 16*c*cols {
		panic(fmt.Sprintf("kernel: UpConvInputWeights: %d and %d floats for %d×3×3×%d", len(bx), len(wk), cols, c))
	}
	for r := 0; r < 4; r++ {
		for s := 0; s < 4; s++ {
			p, t := 2*upPhase[r]+upPhase[s], 2*upRow[r]+upRow[s]
			for o := 0; o < cols; o++ {
				copy(bx[((4*r+s)*cols+o)*c:((4*r+s)*cols+o+1)*c], wk[((p*cols+o)*4+t)*c:((p*cols+o)*4+t+1)*c])
			}
		}
	}
}

// UpConv computes the 3×3, zero-padding-1 convolution of the 2× nearest
// upsampled images:
//
//	out[i, 2y+py, 2x+px, o] = Σ over a, b < 2 and ci < c of
//	    xp[i, y+py+a, x+px+b, ci] · wk[((p·cols + o)·4 + 2a+b)·c + ci]
//
// with p = 2·py + px. xp is the low-resolution input [n, h, w, c]
// zero-padded by one pixel on every side, [n, h+2, w+2, c], with Slack·c
// floats of zeros after it (as for DirectConv); wk is the phase kernels
// from UpConvWeights (4 × [cols, 2, 2, c]); out is [n, 2h, 2w, cols] and is overwritten. It panics if a size
// is inconsistent.
func UpConv(out, xp []float32, n, h, w, c int, wk []float32, cols int) {
	mk := convKernel(cols)
	if upPacked(mk, w) && n < mk.mr {
		upConvPacked(out, xp, n, h, w, c, wk, cols)
		return
	}
	countProduct(4*n*h*w, cols, 4*c)
	upConv(mk, out, xp, n, h, w, c, wk, cols)
}

// upPacked reports whether tiles of mk.mr positions along rows of w
// positions, or running on across their padding, would compute more than
// a fifth more rows than there are positions (rows of 2 or 4 pixels under
// 8-row tiles). The passes then tile across samples instead (see
// tapConvAcross), or, with fewer samples than a tile's rows, gather their
// taps into packed rows and multiply them with Gemm.
func upPacked(mk microKernel, w int) bool {
	return 5*min(roundUp(w, mk.mr), w+2) > 6*w
}

// gatherTaps copies the taps of every position of an h×w grid of n
// samples into dst, one row of len(offs)·c floats per position, in
// sample, row, column order: row (i·h + y)·w + x holds, for each tap t,
// the c floats of src from ((i·hp + y)·wp + x)·rs + offs[t] on.
func gatherTaps(dst, src []float32, n, h, w, hp, wp, rs int, offs []int, c int) {
	k := len(offs) * c
	For(n*h, max(1, 8192/(w*k)), func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			i, y := r/h, r%h
			for x := 0; x < w; x++ {
				row := dst[(r*w+x)*k : (r*w+x+1)*k]
				base := ((i*hp+y)*wp + x) * rs
				for t, off := range offs {
					copy(row[t*c:(t+1)*c], src[base+off:base+off+c])
				}
			}
		}
	})
}

// upOffsets sets offs[4·p + t] to the offset of phase p's tap t from a
// position of the padded input, rows wp pixels of c floats.
func upOffsets(offs []int, wp, c int) {
	for p := 0; p < 4; p++ {
		py, px := p>>1, p&1
		for t := 0; t < 4; t++ {
			offs[4*p+t] = ((py+t>>1)*wp + px + t&1) * c
		}
	}
}

// upConvPacked is UpConv by Gemm: per phase, the taps of every position
// gathered into rows of 4·c, times the phase kernel, into a buffer of the
// four phases side by side that is then spread over the output's pixels.
func upConvPacked(out, xp []float32, n, h, w, c int, wk []float32, cols int) {
	hp, wp := h+2, w+2
	if n < 1 || h < 1 || w < 1 || c < 1 || cols < 1 || cap(xp) < n*hp*wp*c+Slack*c || len(wk) < 16*c*cols || len(out) < n*4*h*w*cols {
		panic(fmt.Sprintf("kernel: UpConv: bad sizes n=%d h=%d w=%d c=%d cols=%d (len xp %d cap %d, w %d, out %d)",
			n, h, w, c, cols, len(xp), cap(xp), len(wk), len(out)))
	}
	m := n * h * w
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	buf.a = reuseFloats(buf.a, m*4*c)
	buf.ct = reuseFloats(buf.ct, m*4*cols)
	buf.offs = reuseInts(buf.offs, 16)
	upOffsets(buf.offs, wp, c)
	for p := 0; p < 4; p++ {
		gatherTaps(buf.a, xp, n, h, w, hp, wp, c, buf.offs[4*p:4*p+4], c)
		Gemm(false, true, m, cols, 4*c, 1, buf.a, 4*c, wk[4*p*c*cols:], 4*c, 0, buf.ct[p*cols:], 4*cols)
	}
	ct := buf.ct
	For(n*h, max(1, 8192/(4*w*cols)), func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			i, y := r/h, r%h
			for py := 0; py < 2; py++ {
				dst := out[((i*2*h+2*y+py)*2*w)*cols : ((i*2*h+2*y+py+1)*2*w)*cols]
				for x := 0; x < w; x++ {
					copy(dst[2*x*cols:(2*x+2)*cols], ct[(r*w+x)*4*cols+2*py*cols:(r*w+x)*4*cols+(2*py+2)*cols])
				}
			}
		}
	})
}

func upConv(mk microKernel, out, xp []float32, n, h, w, c int, wk []float32, cols int) {
	hp, wp := h+2, w+2
	if n < 1 || h < 1 || w < 1 || c < 1 || cols < 1 || cap(xp) < n*hp*wp*c+Slack*c || len(wk) < 16*c*cols || len(out) < n*4*h*w*cols {
		panic(fmt.Sprintf("kernel: UpConv: bad sizes n=%d h=%d w=%d c=%d cols=%d (len xp %d cap %d, w %d, out %d)",
			n, h, w, c, cols, len(xp), cap(xp), len(wk), len(out)))
	}
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	k := 4 * c
	panelSize := roundUp(cols, mk.nr) * k
	buf.b = reuseFloats(buf.b, 4*panelSize)
	buf.offs = reuseInts(buf.offs, 16)
	upOffsets(buf.offs, wp, c)
	for p := 0; p < 4; p++ {
		packB(buf.b[p*panelSize:], wk[p*k*cols:], k, true, 0, k, 0, cols, mk)
	}
	phases := make([]tapPhase, 4)
	for p := range phases {
		py, px := p>>1, p&1
		phases[p] = tapPhase{offs: buf.offs[4*p : 4*p+4], b: buf.b[p*panelSize : (p+1)*panelSize], out: (py*2*w + px) * cols}
	}
	g := tapGrid{n: n, h: h, w: w, wp: wp, rs: c, c: c, inSample: hp * wp * c, inRow: wp * c,
		outSample: 4 * h * w * cols, outRow: 4 * w * cols, outPix: 2 * cols}
	if upPacked(mk, w) && n >= mk.mr {
		tapConvAcross(mk, g, phases, xp[:cap(xp)], out, cols)
		return
	}
	tapConv(mk, g, phases, xp[:cap(xp)], out, cols)
}

// PadSpaceToDepth rearranges an output gradient dy [n, 2h, 2w, cols] by
// phase, zero-padded, for UpConvInputGrad and UpConvWeightGrad:
// dst [n, h+2, w+2, 4·cols] with dst[i, y+1, x+1, (2py+px)·cols + o] =
// dy[i, 2y+py, 2x+px, o], zeros on the one-pixel border, and Slack·4·cols
// floats of zeros after it. With border false it writes only the
// interior, leaving the border and the slack as an earlier call with the
// same sizes wrote them. It panics if a slice is too short.
func PadSpaceToDepth(dst, dy []float32, n, h, w, cols int, border bool) {
	hp, wp, c4 := h+2, w+2, 4*cols
	size := n * hp * wp * c4
	if len(dst) < size+Slack*c4 || len(dy) < n*4*h*w*cols {
		panic(fmt.Sprintf("kernel: PadSpaceToDepth: %d and %d floats for n=%d h=%d w=%d cols=%d", len(dst), len(dy), n, h, w, cols))
	}
	For(n*hp, 8, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			i, y := r/hp, r%hp-1
			row := dst[r*wp*c4 : (r+1)*wp*c4]
			if y < 0 || y >= h {
				if border {
					clear(row)
				}
				continue
			}
			if border {
				clear(row[:c4])
				clear(row[(w+1)*c4:])
			}
			for py := 0; py < 2; py++ {
				src := dy[((i*2*h+2*y+py)*2*w)*cols : ((i*2*h+2*y+py+1)*2*w)*cols]
				for x := 0; x < w; x++ {
					copy(row[(x+1)*c4+2*py*cols:(x+1)*c4+(2*py+2)*cols], src[2*x*cols:(2*x+2)*cols])
				}
			}
		}
	})
	if border {
		clear(dst[size : size+Slack*c4])
	}
}

// UpConvInputGrad computes the gradient of UpConv's input, dx [n, h, w, c]
// (overwritten), from dys, the output gradient rearranged by
// PadSpaceToDepth, and bx, the weight matrix from UpConvInputWeights: a
// direct convolution over the 4×4 window of full-resolution pixels of the
// output gradient around each input pixel. It panics if a size is
// inconsistent.
func UpConvInputGrad(dx, dys []float32, n, h, w, cols int, bx []float32, c int) {
	mk := convKernel(c)
	if upPacked(mk, w) && n < mk.mr {
		upConvInputGradPacked(dx, dys, n, h, w, cols, bx, c)
		return
	}
	countProduct(n*h*w, c, 16*cols)
	upConvInputGrad(mk, dx, dys, n, h, w, cols, bx, c)
}

// upInputOffsets sets offs[4·r + s] to the offset of the input
// gradient's window pixel (r, s) in the rearranged output gradient, rows
// wp pixels of 4·cols floats.
func upInputOffsets(offs []int, wp, cols int) {
	for r := 0; r < 4; r++ {
		for s := 0; s < 4; s++ {
			offs[4*r+s] = (upShift[r]*wp+upShift[s])*4*cols + (2*upPhase[r]+upPhase[s])*cols
		}
	}
}

// upConvInputGradPacked is UpConvInputGrad by Gemm: the 16 window pixels
// of every input pixel gathered into rows of 16·cols, times bx.
func upConvInputGradPacked(dx, dys []float32, n, h, w, cols int, bx []float32, c int) {
	hp, wp, c4 := h+2, w+2, 4*cols
	if n < 1 || h < 1 || w < 1 || c < 1 || cols < 1 || len(dys) < n*hp*wp*c4+Slack*c4 || len(bx) < 16*cols*c || len(dx) < n*h*w*c {
		panic(fmt.Sprintf("kernel: UpConvInputGrad: bad sizes n=%d h=%d w=%d cols=%d c=%d (len dys %d, w %d, dx %d)",
			n, h, w, cols, c, len(dys), len(bx), len(dx)))
	}
	m := n * h * w
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	buf.a = reuseFloats(buf.a, m*16*cols)
	buf.offs = reuseInts(buf.offs, 16)
	upInputOffsets(buf.offs, wp, cols)
	gatherTaps(buf.a, dys, n, h, w, hp, wp, c4, buf.offs, cols)
	Gemm(false, false, m, c, 16*cols, 1, buf.a, 16*cols, bx, c, 0, dx, c)
}

func upConvInputGrad(mk microKernel, dx, dys []float32, n, h, w, cols int, bx []float32, c int) {
	hp, wp, c4 := h+2, w+2, 4*cols
	if n < 1 || h < 1 || w < 1 || c < 1 || cols < 1 || len(dys) < n*hp*wp*c4+Slack*c4 || len(bx) < 16*cols*c || len(dx) < n*h*w*c {
		panic(fmt.Sprintf("kernel: UpConvInputGrad: bad sizes n=%d h=%d w=%d cols=%d c=%d (len dys %d, w %d, dx %d)",
			n, h, w, cols, c, len(dys), len(bx), len(dx)))
	}
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	k := 16 * cols
	buf.b = reuseFloats(buf.b, roundUp(c, mk.nr)*k)
	packB(buf.b, bx, c, false, 0, k, 0, c, mk)
	buf.offs = reuseInts(buf.offs, 16)
	upInputOffsets(buf.offs, wp, cols)
	g := tapGrid{n: n, h: h, w: w, wp: wp, rs: c4, c: cols, inSample: hp * wp * c4, inRow: wp * c4,
		outSample: h * w * c, outRow: w * c, outPix: c}
	phases := []tapPhase{{offs: buf.offs, b: buf.b}}
	if upPacked(mk, w) && n >= mk.mr {
		tapConvAcross(mk, g, phases, dys, dx, c)
		return
	}
	tapConv(mk, g, phases, dys, dx, c)
}

// tapGrid is the geometry of a convolution that tapConv runs: n samples
// of h×w output positions; the input position (i, y, x) starts at
// i·inSample + y·inRow + x·rs of the input, and each tap reads c values
// from there on, at the tap's offset; output position (i, y, x) is at
// i·outSample + y·outRow + x·outPix (plus the phase's offset). When
// inRow = wp·rs, tiles may run on from a row's end into its padding
// (wp − w positions) and the next row; otherwise wp must be w.
type tapGrid struct {
	n, h, w, wp, rs, c        int
	inSample, inRow           int
	outSample, outRow, outPix int
}

// tapPhase is one convolution of a tapConv: its taps' offsets in the
// input, its packed weights, and the offset of its output.
type tapPhase struct {
	offs []int
	b    []float32
	out  int
}

// tapConv runs the convolutions phases over the grid g with
// micro-kernel mk, writing cols output channels per position. Tiles of
// mk.mr positions lie along an input row, or, when rows are short, run on
// across the row's padding into the next row (the positions in the
// padding are computed into a scratch tile and dropped). Every output is
// written once by one micro-kernel call, so the result does not depend on
// the number of cores.
func tapConv(mk microKernel, g tapGrid, phases []tapPhase, in, out []float32, cols int) {
	mr, nr := mk.mr, mk.nr
	panels := (cols + nr - 1) / nr
	// Along rows unless that leaves more partial tiles than running on.
	alongRows := roundUp(g.w, mr) <= g.wp
	span := (g.h-1)*g.wp + g.w // positions of one sample, from the first to the last
	units := len(phases) * g.n
	For(units, max(1, 4096/(g.h*g.w*cols)), func(_, lo, hi int) {
		tb := packPool.Get().(*packBuffers)
		defer packPool.Put(tb)
		tb.tile = reuseFloats(tb.tile, mr*nr)
		tile := tb.tile
		for u := lo; u < hi; u++ {
			ph, i := phases[u%len(phases)], u/len(phases)
			taps := len(ph.offs)
			abase := i * g.inSample
			obase := i*g.outSample + ph.out
			for jp := 0; jp < panels; jp++ {
				bp := &ph.b[jp*nr*taps*g.c]
				ncols := min(nr, cols-jp*nr)
				for q := 0; q < span; {
					y, x := q/g.wp, q%g.wp
					if x >= g.w {
						q = (y + 1) * g.wp // a tile would start in the padding
						continue
					}
					rows := mr
					if alongRows {
						rows = min(mr, g.w-x)
					}
					a := &in[abase+y*g.inRow+x*g.rs]
					o := obase + y*g.outRow + x*g.outPix + jp*nr
					if x+rows <= g.w && rows == mr && ncols == nr {
						mk.conv(taps, &ph.offs[0], g.c, a, g.rs, bp, &out[o], g.outPix, false)
						q += mr
						continue
					}
					mk.conv(taps, &ph.offs[0], g.c, a, g.rs, bp, &tile[0], nr, false)
					for r := 0; r < rows && q+r < span; r++ {
						yr, xr := (q+r)/g.wp, (q+r)%g.wp
						if xr >= g.w {
							continue
						}
						o := obase + yr*g.outRow + xr*g.outPix + jp*nr
						copy(out[o:o+ncols], tile[r*nr:r*nr+ncols])
					}
					q += rows
				}
			}
		}
	})
}

// tapConvAcross is tapConv with tiles of mk.mr samples at one position
// instead of mk.mr positions of one sample: the rows of a tile are
// g.inSample floats apart in the input and g.outSample apart in the
// output, so on small images no tile runs into a row's padding and no
// taps are gathered. It needs g.n ≥ mk.mr: the last, partial group of
// samples is computed as the last mk.mr samples into a scratch tile, of
// which only the group's rows are kept. Every output is written once by
// one micro-kernel call, so the result does not depend on the number of
// cores.
func tapConvAcross(mk microKernel, g tapGrid, phases []tapPhase, in, out []float32, cols int) {
	mr, nr := mk.mr, mk.nr
	if g.n < mr {
		panic(fmt.Sprintf("kernel: tapConvAcross: %d samples for tiles of %d", g.n, mr))
	}
	panels := (cols + nr - 1) / nr
	units := len(phases) * g.h * g.w
	For(units, 1, func(_, u, _ int) {
		tb := packPool.Get().(*packBuffers)
		defer packPool.Put(tb)
		tb.tile = reuseFloats(tb.tile, mr*nr)
		tile := tb.tile
		ph, pos := phases[u%len(phases)], u/len(phases)
		y, x := pos/g.w, pos%g.w
		taps := len(ph.offs)
		at := y*g.inRow + x*g.rs
		ot := ph.out + y*g.outRow + x*g.outPix
		for jp := 0; jp < panels; jp++ {
			bp := &ph.b[jp*nr*taps*g.c]
			ncols := min(nr, cols-jp*nr)
			for s0 := 0; s0 < g.n; s0 += mr {
				o := s0*g.outSample + ot + jp*nr
				if s0+mr <= g.n && ncols == nr {
					mk.conv(taps, &ph.offs[0], g.c, &in[s0*g.inSample+at], g.inSample, bp, &out[o], g.outSample, false)
					continue
				}
				first := min(s0, g.n-mr) // the tile's first sample
				mk.conv(taps, &ph.offs[0], g.c, &in[first*g.inSample+at], g.inSample, bp, &tile[0], nr, false)
				for s := s0; s < min(s0+mr, g.n); s++ {
					o := s*g.outSample + ot + jp*nr
					copy(out[o:o+ncols], tile[(s-first)*nr:(s-first)*nr+ncols])
				}
			}
		}
	})
}

// UpConvWeightGrad computes the gradient of UpConv's phase kernels,
// g (laid out as UpConvWeights writes them; overwritten):
//
//	g[((p·cols + o)·4 + 2a+b)·c + ci] = Σ over i, y, x of
//	    xp[i, y+py+a, x+px+b, ci] · dy[i, 2y+py, 2x+px, o]
//
// with p = 2·py + px
// from the padded input xp as for UpConv and dys, the output gradient
// rearranged by PadSpaceToDepth. Add it to the 3×3 weight's gradient with
// AddUpConvWeightGrad. As DirectConvWeightGrad, it reads xp in place as
// the transposed A of a GEMM over positions, sums the padding columns of
// each row as zeros, and sums a fixed number of parts in order (then
// transposes the sum into g), so the result does not depend on the number
// of cores. It panics if a size is
// inconsistent.
func UpConvWeightGrad(g, xp []float32, n, h, w, c int, dys []float32, cols int) {
	mk := convKernel(cols)
	if upPacked(mk, w) && n < mk.mr {
		upConvWeightGradPacked(g, xp, n, h, w, c, dys, cols)
		return
	}
	countProduct(4*c, cols, 4*n*h*w)
	if upPacked(mk, w) {
		upConvWeightGradAcross(gemmKernel(cols), g, xp, n, h, w, c, dys, cols)
		return
	}
	upConvWeightGrad(mk, g, xp, n, h, w, c, dys, cols)
}

// upConvWeightGradAcross is UpConvWeightGrad for small images: the sum
// over positions runs, for each position of the h×w grid, over the n
// samples, which are the GEMM's depth (xp read in place as the
// transposed A, g.inSample floats a step; the phase's output gradient of
// the n samples packed as B), so no row's padding is summed and no taps
// are gathered. The positions are split into a fixed number of parts,
// summed in order, so the result does not depend on the number of cores.
func upConvWeightGradAcross(mk microKernel, g, xp []float32, n, h, w, c int, dys []float32, cols int) {
	hp, wp, c4 := h+2, w+2, 4*cols
	kk := 16 * c
	if n < 1 || h < 1 || w < 1 || c < 1 || cols < 1 || cap(xp) < n*hp*wp*c+Slack*c || len(dys) < n*hp*wp*c4+Slack*c4 || len(g) < kk*cols {
		panic(fmt.Sprintf("kernel: UpConvWeightGrad: bad sizes n=%d h=%d w=%d c=%d cols=%d", n, h, w, c, cols))
	}
	xp = xp[:cap(xp)]
	nr, mr := mk.nr, mk.mr
	inSample, dSample := hp*wp*c, hp*wp*c4
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	panels := (cols + nr - 1) / nr
	sum := sumInParts(buf, h*w, kk*cols, func(gp []float32, start, end int) {
		pb := packPool.Get().(*packBuffers)
		defer packPool.Put(pb)
		blockK := mk.kc
		pb.b = reuseFloats(pb.b, blockK*panels*nr)
		bpack := pb.b
		pb.tile = reuseFloats(pb.tile, mr*nr)
		tile := pb.tile
		// The part's first block of samples at its first position sets gp,
		// the others add to it.
		for pos := start; pos < end; pos++ {
			y, x := pos/w, pos%w
			for s0 := 0; s0 < n; s0 += blockK {
				kc := min(blockK, n-s0)
				add := pos > start || s0 > 0
				for p := 0; p < 4; p++ {
					py, px := p>>1, p&1
					// dy of phase p at (y, x) is dys pixel (y+1, x+1).
					packB(bpack, dys[s0*dSample+((y+1)*wp+x+1)*c4+p*cols:], dSample, false, 0, kc, 0, cols, mk)
					for t := 0; t < 4; t++ {
						toff := ((y+py+t>>1)*wp + x + px + t&1) * c
						for i0 := 0; i0 < c; i0 += mr {
							rows := min(mr, c-i0)
							a := &xp[s0*inSample+toff+i0]
							for jp := 0; jp < panels; jp++ {
								bp := &bpack[jp*nr*kc]
								o := ((4*p+t)*c+i0)*cols + jp*nr
								gradTile(mk, activeShort, kc, a, inSample, bp, gp, o, cols, rows, min(nr, cols-jp*nr), tile, add)
							}
						}
					}
				}
			}
		}
	})
	// sum holds phase p's [4c, cols] at p·4c·cols.
	for p := 0; p < 4; p++ {
		transposeInto(g[p*4*c*cols:], 4*c, sum[p*4*c*cols:], cols, 4*c, true)
	}
}

// upConvWeightGradPacked is UpConvWeightGrad by Gemm: per phase, the
// transposed rows of gathered taps (as upConvPacked makes them) times the
// phase's output gradient, gathered once for all phases.
func upConvWeightGradPacked(g, xp []float32, n, h, w, c int, dys []float32, cols int) {
	hp, wp, c4 := h+2, w+2, 4*cols
	if n < 1 || h < 1 || w < 1 || c < 1 || cols < 1 || cap(xp) < n*hp*wp*c+Slack*c || len(dys) < n*hp*wp*c4+Slack*c4 || len(g) < 16*c*cols {
		panic(fmt.Sprintf("kernel: UpConvWeightGrad: bad sizes n=%d h=%d w=%d c=%d cols=%d", n, h, w, c, cols))
	}
	m := n * h * w
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	buf.a = reuseFloats(buf.a, m*4*c)
	buf.ct = reuseFloats(buf.ct, m*c4)
	buf.offs = reuseInts(buf.offs, 17)
	// The output gradient of position (y, x) is dys pixel (y+1, x+1).
	buf.offs[16] = (wp + 1) * c4
	gatherTaps(buf.ct, dys, n, h, w, hp, wp, c4, buf.offs[16:], c4)
	upOffsets(buf.offs, wp, c)
	for p := 0; p < 4; p++ {
		gatherTaps(buf.a, xp, n, h, w, hp, wp, c, buf.offs[4*p:4*p+4], c)
		Gemm(true, false, cols, 4*c, m, 1, buf.ct[p*cols:], c4, buf.a, 4*c, 0, g[4*p*c*cols:], 4*c)
	}
}

func upConvWeightGrad(mk microKernel, g, xp []float32, n, h, w, c int, dys []float32, cols int) {
	hp, wp, c4 := h+2, w+2, 4*cols
	kk := 16 * c
	if n < 1 || h < 1 || w < 1 || c < 1 || cols < 1 || cap(xp) < n*hp*wp*c+Slack*c || len(dys) < n*hp*wp*c4+Slack*c4 || len(g) < kk*cols {
		panic(fmt.Sprintf("kernel: UpConvWeightGrad: bad sizes n=%d h=%d w=%d c=%d cols=%d", n, h, w, c, cols))
	}
	xp = xp[:cap(xp)]
	nr, mr := mk.nr, mk.mr
	span := (h-1)*wp + w
	total := n * span
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	panels := (cols + nr - 1) / nr
	sum := sumInParts(buf, total, kk*cols, func(gp []float32, q0, q1 int) {
		clear(gp)
		pb := packPool.Get().(*packBuffers)
		defer packPool.Put(pb)
		blockK := mk.kc
		pb.b = reuseFloats(pb.b, blockK*panels*nr)
		bpack := pb.b
		pb.tile = reuseFloats(pb.tile, mr*nr)
		tile := pb.tile
		for q := q0; q < q1; {
			i, off := q/span, q%span
			kc := min(blockK, q1-q, span-off)
			pc := i*hp*wp + off // the position in the padded grid
			for p := 0; p < 4; p++ {
				py, px := p>>1, p&1
				// dy of phase p at position pc is dys pixel pc+wp+1, with
				// zeros where pc is in the padding columns.
				packB(bpack, dys[(pc+wp+1)*c4+p*cols:], c4, false, 0, kc, 0, cols, mk)
				for t := 0; t < 4; t++ {
					toff := ((py+t>>1)*wp + px + t&1) * c
					for i0 := 0; i0 < c; i0 += mr {
						rows := min(mr, c-i0)
						a := &xp[pc*c+toff+i0]
						for jp := 0; jp < panels; jp++ {
							bp := &bpack[jp*nr*kc]
							o := ((4*p+t)*c+i0)*cols + jp*nr
							gradTile(mk, activeShort, kc, a, c, bp, gp, o, cols, rows, min(nr, cols-jp*nr), tile, true)
						}
					}
				}
			}
			q += kc
		}
	})
	// sum holds phase p's [4c, cols] at p·4c·cols.
	for p := 0; p < 4; p++ {
		transposeInto(g[p*4*c*cols:], 4*c, sum[p*4*c*cols:], cols, 4*c, true)
	}
}
