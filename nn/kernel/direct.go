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
// at least Slack·c floats after its last pixel (it reads past the end of
// a row when the last tile of a row is partial). DirectConv panics if it
// has not, or if a size is inconsistent.
func DirectConv(out, xp []float32, n, hp, wp, c, k int, b []float32, cols int) {
	countProduct(n*(hp-k+1)*(wp-k+1), cols, k*k*c)
	directConv(convKernel(cols), out, xp, n, hp, wp, c, k, b, cols)
}

// DirectRows reports whether rows of ow output pixels suit DirectConv on
// the path in use: at least 16 pixels, or whole tiles of its
// micro-kernel (8 pixels on AVX-512), so that few tile rows are empty.
func DirectRows(ow int) bool {
	return ow >= 16 || ow%activeConv.mr == 0
}

// across reports whether the direct convolutions of n images with rows
// of ow output pixels tile across samples (8 samples at one position a
// tile, see tapConvAcross) rather than along rows: when tiles of mk.mr
// pixels along a row would compute more than a fifth more rows than
// there are pixels, and there are at least mk.mr samples.
func across(mk microKernel, n, ow int) bool {
	return n >= mk.mr && 5*roundUp(ow, mk.mr) > 6*ow
}

// Slack is the number of pixels of zeros that DirectConv and
// DirectConvWeightGrad need after their padded input: they read up to
// one micro-kernel tile (at most Slack rows) past a row's end.
const Slack = 8

func directConv(mk microKernel, out, xp []float32, n, hp, wp, c, k int, b []float32, cols int) {
	oh, ow := hp-k+1, wp-k+1
	kk := k * k * c
	if oh < 1 || ow < 1 || cap(xp) < n*hp*wp*c+Slack*c || len(b) < kk*cols || len(out) < n*oh*ow*cols {
		panic(fmt.Sprintf("kernel: DirectConv: bad sizes n=%d hp=%d wp=%d c=%d k=%d cols=%d (len xp %d cap %d, b %d, out %d)",
			n, hp, wp, c, k, cols, len(xp), cap(xp), len(b), len(out)))
	}
	xp = xp[:cap(xp)]
	if g := narrowGroup(mk, cols, ow); g > 1 {
		directConvGrouped(mk, g, out, xp, n, hp, wp, c, k, b, cols)
		return
	}
	mr, nr := mk.mr, mk.nr
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	packConv(buf, mk, b, k, c, wp, cols)
	offs := buf.offs
	if across(mk, n, ow) {
		tapConvAcross(mk, tapGrid{n: n, h: oh, w: ow, wp: wp, rs: c, c: c, inSample: hp * wp * c, inRow: wp * c,
			outSample: oh * ow * cols, outRow: ow * cols, outPix: cols}, []tapPhase{{offs: offs, b: buf.b}}, xp, out, cols)
		return
	}
	For(n*oh, max(1, 4096/(ow*cols)), func(_, lo, hi int) {
		tb := packPool.Get().(*packBuffers)
		defer packPool.Put(tb)
		tb.tile = reuseFloats(tb.tile, mr*nr)
		for r := lo; r < hi; r++ {
			i, oy := r/oh, r%oh
			convRow(mk, out[(i*oh+oy)*ow*cols:], xp[(i*hp+oy)*wp*c:], offs, c, ow, buf.b, cols, tb.tile)
		}
	})
}

// packConv sets buf.b to the weight b (k·k·c × cols) packed as mk's
// panels and buf.offs to the offsets of the k·k taps in a padded input
// with rows of wp pixels of c channels.
func packConv(buf *packBuffers, mk microKernel, b []float32, k, c, wp, cols int) {
	kk := k * k * c
	buf.b = reuseFloats(buf.b, roundUp(cols, mk.nr)*kk)
	packB(buf.b, b, cols, false, 0, kk, 0, cols, mk)
	buf.offs = reuseInts(buf.offs, k*k)
	for ki := 0; ki < k; ki++ {
		for kj := 0; kj < k; kj++ {
			buf.offs[ki*k+kj] = (ki*wp + kj) * c
		}
	}
}

// convRow computes one row of ow output pixels of a direct convolution
// into out, from the padded input rows at in (k·k taps at offs), with
// the packed weight panels bp and a scratch tile of mk.mr·mk.nr floats
// for partial tiles.
func convRow(mk microKernel, out, in []float32, offs []int, c, ow int, bp []float32, cols int, tile []float32) {
	mr, nr := mk.mr, mk.nr
	taps := len(offs)
	for jp := 0; jp*nr < cols; jp++ {
		b := &bp[jp*nr*taps*c]
		ncols := min(nr, cols-jp*nr)
		for ox := 0; ox < ow; ox += mr {
			rows := min(mr, ow-ox)
			a := &in[ox*c]
			o := ox*cols + jp*nr
			if rows == mr && ncols == nr {
				mk.conv(taps, &offs[0], c, a, c, b, &out[o], cols, false)
				continue
			}
			mk.conv(taps, &offs[0], c, a, c, b, &tile[0], nr, false)
			for q := 0; q < rows; q++ {
				copy(out[o+q*cols:o+q*cols+ncols], tile[q*nr:q*nr+ncols])
			}
		}
	}
}

// DirectConvUnpadded is DirectConv of the images x [n, h, w, c] zero-padded
// by pad pixels on every side, without a padded copy of them: each
// worker pads the input rows that a run of output rows reads into a
// scratch buffer that stays in cache. out is [n, h+2·pad−k+1,
// w+2·pad−k+1, cols]; b is as for DirectConv. The result is DirectConv's
// of the padded images, bit for bit. It panics if a size is inconsistent.
func DirectConvUnpadded(out, x []float32, n, h, w, c, k, pad int, b []float32, cols int) {
	hp, wp := h+2*pad, w+2*pad
	oh, ow := hp-k+1, wp-k+1
	kk := k * k * c
	if n < 1 || h < 1 || w < 1 || c < 1 || pad < 0 || oh < 1 || ow < 1 || cols < 1 ||
		len(x) < n*h*w*c || len(b) < kk*cols || len(out) < n*oh*ow*cols {
		panic(fmt.Sprintf("kernel: DirectConvUnpadded: bad sizes n=%d h=%d w=%d c=%d k=%d pad=%d cols=%d (len x %d, b %d, out %d)",
			n, h, w, c, k, pad, cols, len(x), len(b), len(out)))
	}
	countProduct(n*oh*ow, cols, kk)
	mk := convKernel(cols)
	if narrowGroup(mk, cols, ow) > 1 || across(mk, n, ow) {
		// These tilings read the whole padded image.
		buf := packPool.Get().(*packBuffers)
		defer packPool.Put(buf)
		buf.ct = reuseFloats(buf.ct, n*hp*wp*c+Slack*c)
		xp := buf.ct
		clear(xp)
		for i := 0; i < n; i++ {
			for y := 0; y < h; y++ {
				copy(xp[((i*hp+y+pad)*wp+pad)*c:], x[(i*h+y)*w*c:(i*h+y+1)*w*c])
			}
		}
		directConv(mk, out, xp[:n*hp*wp*c], n, hp, wp, c, k, b, cols)
		return
	}
	mr, nr := mk.mr, mk.nr
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	packConv(buf, mk, b, k, c, wp, cols)
	offs := buf.offs
	chunk := max(1, 4096/(ow*cols))
	For(n*oh, chunk, func(_, lo, hi int) {
		tb := packPool.Get().(*packBuffers)
		defer packPool.Put(tb)
		tb.tile = reuseFloats(tb.tile, mr*nr)
		// The padded rows of one run of output rows, and Slack pixels of
		// zeros after them for partial tiles.
		tb.a = reuseFloats(tb.a, (chunk+k-1)*wp*c+Slack*c)
		rows := tb.a
		for r := lo; r < hi; {
			i, oy := r/oh, r%oh
			end := min(hi, (i+1)*oh) // the run: rows of sample i
			run := end - r
			for pr := 0; pr < run+k-1; pr++ {
				dst := rows[pr*wp*c : (pr+1)*wp*c]
				y := oy + pr - pad
				if y < 0 || y >= h {
					clear(dst)
					continue
				}
				clear(dst[:pad*c])
				copy(dst[pad*c:], x[(i*h+y)*w*c:(i*h+y+1)*w*c])
				clear(dst[(pad+w)*c:])
			}
			clear(rows[(run+k-1)*wp*c : (run+k-1)*wp*c+Slack*c])
			for q := 0; q < run; q++ {
				convRow(mk, out[(i*oh+oy+q)*ow*cols:], rows[q*wp*c:], offs, c, ow, buf.b, cols, tb.tile)
			}
			r = end
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

// DirectConvWeightGrad computes the weight gradient of a stride-1
// convolution without an im2col matrix, transposed:
//
//	g[(ki·k+kj)·c + ci, j] = Σ over i, oy, ox of
//	                         xp[i, oy+ki, ox+kj, ci] · dy[i, oy, ox, j]
//
// xp is the zero-padded input [n, hp, wp, c] with Slack·c floats of
// slack after it, as for DirectConv; dy is the output gradient
// [n, hp−k+1, wp−k+1, cols]; g, k·k·c × cols, is overwritten. The
// micro-kernel reads each kernel row's window of xp in place as the
// transposed A of a GEMM over output positions (the k·c values of the
// row's taps lie side by side), so the output gradient is packed once for
// all taps. Positions are those of the padded grid, with zeros for the
// padding, which costs wp/ow − 1 more arithmetic than the positions
// themselves (only the padding columns inside each sample). With few
// output channels it computes gᵀ instead, the output gradient's channels
// being the tile rows (see narrowGradKernel); on short rows with enough
// samples it sums, for each position, across the samples (see
// directConvWeightGradAcross). The sum over positions runs in a fixed
// number of parts, summed in order, so the result does not depend on the
// number of cores. It panics if a size is inconsistent.
func DirectConvWeightGrad(g, xp []float32, n, hp, wp, c, k int, dy []float32, cols int) {
	countProduct(n*(hp-k+1)*(wp-k+1), cols, k*k*c)
	if mk, ok := narrowGradKernel(c, cols); ok {
		directConvWeightGradNarrow(mk, g, xp, n, hp, wp, c, k, dy, cols)
		return
	}
	if ow := wp - k + 1; n >= activeConv.mr && 10*(wp-ow) > ow && c >= 8 {
		// Summing along rows would sum more than a tenth as many padding
		// positions as real ones (rows of 8 or 16 under padding 1):
		// batch 128, 32→64 channels at 16×16, 3.3 ms against 3.8 ms. With
		// few channels the rows' kernel-row tiles do better (3→32 at
		// 32×32: 1.5 ms against 1.7).
		directConvWeightGradAcross(gemmKernel(cols), g, xp, n, hp, wp, c, k, dy, cols)
		return
	}
	directConvWeightGrad(convKernel(cols), g, xp, n, hp, wp, c, k, dy, cols)
}

// directConvWeightGradAcross is DirectConvWeightGrad (same arguments and
// result) for small images: for each output position, the sum runs over
// the n samples, the GEMM's depth, with xp read in place as the
// transposed A (a kernel row's k·c values a tile's rows, a sample's size a
// step) and the output gradient of the n samples at that position packed
// as B; no padding column is summed. The positions are split into a fixed
// number of parts, summed in order, so the result does not depend on the
// number of cores.
func directConvWeightGradAcross(mk microKernel, g, xp []float32, n, hp, wp, c, k int, dy []float32, cols int) {
	oh, ow := hp-k+1, wp-k+1
	kk := k * k * c
	nr, mr := mk.nr, mk.mr
	if oh < 1 || ow < 1 || cols < 1 || cap(xp) < n*hp*wp*c+Slack*c || len(dy) < n*oh*ow*cols || len(g) < kk*cols {
		panic(fmt.Sprintf("kernel: DirectConvWeightGrad: bad sizes n=%d hp=%d wp=%d c=%d k=%d cols=%d", n, hp, wp, c, k, cols))
	}
	xp = xp[:cap(xp)]
	inSample := hp * wp * c
	positions := oh * ow
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	panels := (cols + nr - 1) / nr
	sum := sumInParts(buf, positions, kk*cols, func(gp []float32, start, end int) {
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
			oy, ox := pos/ow, pos%ow
			for s0 := 0; s0 < n; s0 += blockK {
				kc := min(blockK, n-s0)
				add := pos > start || s0 > 0
				packB(bpack, dy[(s0*positions+pos)*cols:], positions*cols, false, 0, kc, 0, cols, mk)
				for ki := 0; ki < k; ki++ {
					for i0 := 0; i0 < k*c; i0 += mr {
						rows := min(mr, k*c-i0)
						a := &xp[s0*inSample+((oy+ki)*wp+ox)*c+i0]
						for jp := 0; jp < panels; jp++ {
							bp := &bpack[jp*nr*kc]
							o := (ki*k*c+i0)*cols + jp*nr
							gradTile(mk, activeShort, kc, a, inSample, bp, gp, o, cols, rows, min(nr, cols-jp*nr), tile, add)
						}
					}
				}
			}
		}
	})
	copy(g[:kk*cols], sum)
}

// narrowGradKernel returns the micro-kernel of the path in use for
// directConvWeightGradNarrow, and whether that form suits: a kernel whose
// tile is exactly c columns wide, so that the input's pixels are its
// packed panels in place, with the fewest rows that hold the cols output
// channels, and a larger share of its rows in use than the plain form's
// share of tile columns (3 of 4 rows against 3 of 16 columns for an RGB
// output on AVX-512).
func narrowGradKernel(c, cols int) (microKernel, bool) {
	gemm, conv, narrow, short := kernelFor(level)
	var best microKernel
	for _, mk := range []microKernel{short, conv, narrow, gemm} {
		if mk.nr == c && mk.mr >= cols && (best.mr == 0 || mk.mr < best.mr) {
			best = mk
		}
	}
	plain := convKernel(cols)
	return best, best.mr != 0 && best.mr < roundUp(cols, plain.nr)
}

// directConvWeightGradNarrow is DirectConvWeightGrad (same arguments and
// result) for few output channels, computed transposed: tile rows are the
// output channels, read from a copy of dy laid out on the padded grid
// (zeros in the padding columns), and tile columns the c channels of one
// tap, read in place from xp, whose pixels of c = mk.nr floats are the
// rows of a packed panel. As directConvWeightGrad, it sums a fixed number
// of parts in order. It panics unless mk.nr = c and cols ≤ mk.mr.
func directConvWeightGradNarrow(mk microKernel, g, xp []float32, n, hp, wp, c, k int, dy []float32, cols int) {
	oh, ow := hp-k+1, wp-k+1
	kk := k * k * c
	mr := mk.mr
	if mk.nr != c || cols > mr || oh < 1 || ow < 1 || cols < 1 || cap(xp) < n*hp*wp*c+Slack*c || len(dy) < n*oh*ow*cols || len(g) < kk*cols {
		panic(fmt.Sprintf("kernel: DirectConvWeightGrad (narrow, %s): bad sizes n=%d hp=%d wp=%d c=%d k=%d cols=%d", mk.name, n, hp, wp, c, k, cols))
	}
	xp = xp[:cap(xp)]
	span := (oh-1)*wp + ow
	total := n * span
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	// Each part's sum is mr rows (the last mr − cols of them unused) of
	// kk columns: gᵀ.
	sum := sumInParts(buf, total, mr*kk, func(gp []float32, q0, q1 int) {
		clear(gp)
		pb := packPool.Get().(*packBuffers)
		defer packPool.Put(pb)
		blockK := mk.kc
		// Rows past cols read on into the next positions, and past the
		// block's end into mr zeros.
		pb.b = reuseFloats(pb.b, blockK*cols+mr)
		ablk := pb.b
		for q := q0; q < q1; {
			i, off := q/span, q%span
			kc := min(blockK, q1-q, span-off)
			pc := i*hp*wp + off
			for p := 0; p < kc; p++ {
				row := ablk[p*cols : (p+1)*cols]
				y, x := (off+p)/wp, (off+p)%wp
				if x >= ow || y >= oh {
					clear(row)
					continue
				}
				copy(row, dy[((i*oh+y)*ow+x)*cols:])
			}
			clear(ablk[kc*cols : kc*cols+mr])
			for t := 0; t < k*k; t++ {
				ki, kj := t/k, t%k
				mk.fn(kc, &ablk[0], 1, cols, &xp[(pc+ki*wp+kj)*c], &gp[t*c], kk, true)
			}
			q += kc
		}
	})
	transposeInto(g, cols, sum[:cols*kk], kk, cols, true)
}

func directConvWeightGrad(mk microKernel, g, xp []float32, n, hp, wp, c, k int, dy []float32, cols int) {
	oh, ow := hp-k+1, wp-k+1
	kk := k * k * c
	nr, mr := mk.nr, mk.mr
	if oh < 1 || ow < 1 || cols < 1 || cap(xp) < n*hp*wp*c+Slack*c || len(dy) < n*oh*ow*cols || len(g) < kk*cols {
		panic(fmt.Sprintf("kernel: DirectConvWeightGrad: bad sizes n=%d hp=%d wp=%d c=%d k=%d cols=%d", n, hp, wp, c, k, cols))
	}
	xp = xp[:cap(xp)]
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	// Sum over each sample's positions from its first output pixel to its
	// last, (oh−1)·wp + ow of them: the padded rows between samples are
	// skipped, and only the wp − ow padding columns of each row are summed
	// as zeros. The sum is split into a fixed number of parts: offsets q
	// in [q0, q1) of the concatenated per-sample ranges, position
	// (q/span)·hp·wp + q%span.
	span := (oh-1)*wp + ow
	total := n * span
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
			pc := i*hp*wp + off
			packPaddedRows(bpack, dy, i, off, kc, oh, ow, wp, cols, mk)
			// The k·c rows of kernel row ki, taps (ki, kj) and channels
			// ci, are kj·c + ci floats on from its first tap's pixel.
			for ki := 0; ki < k; ki++ {
				for i0 := 0; i0 < k*c; i0 += mr {
					rows := min(mr, k*c-i0)
					a := &xp[(pc+ki*wp)*c+i0]
					for jp := 0; jp < panels; jp++ {
						bp := &bpack[jp*nr*kc]
						o := (ki*k*c+i0)*cols + jp*nr
						gradTile(mk, activeShort, kc, a, c, bp, gp, o, cols, rows, min(nr, cols-jp*nr), tile, true)
					}
				}
			}
			q += kc
		}
	})
	copy(g[:kk*cols], sum)
}

// packPaddedRows packs kc consecutive positions of sample i's padded grid
// (row-major with rows wp wide), from position off on, as the k-major
// panels of nr columns that the micro-kernel reads as B: the output
// gradient dy [n, oh, ow, cols] at real positions, zeros in the padding
// columns (x ≥ ow), and in the columns of a last, partial panel past
// cols (nr = mk.nr).
func packPaddedRows(dst, dy []float32, i, off, kc, oh, ow, wp, cols int, mk microKernel) {
	nr := mk.nr
	full, panels := cols/nr, (cols+nr-1)/nr
	for p := 0; p < kc; p++ {
		y, x := (off+p)/wp, (off+p)%wp
		if x >= ow || y >= oh {
			for q := 0; q < panels; q++ {
				clear(dst[q*nr*kc+p*nr : q*nr*kc+(p+1)*nr])
			}
			continue
		}
		src := dy[((i*oh+y)*ow+x)*cols : ((i*oh+y)*ow+x+1)*cols]
		if mk.scatter != nil && full > 0 {
			mk.scatter(&dst[p*nr], &src[0], full, kc*nr)
		} else {
			for q := 0; q < full; q++ {
				copy(dst[q*nr*kc+p*nr:q*nr*kc+(p+1)*nr], src[q*nr:(q+1)*nr])
			}
		}
		if full < panels {
			row := dst[full*nr*kc+p*nr : full*nr*kc+(p+1)*nr]
			n := copy(row, src[full*nr:])
			clear(row[n:])
		}
	}
}

// sumInParts splits count items into at most 8 consecutive parts (a
// split that depends only on count, never on the number of cores) and
// runs part(gp, lo, hi) for each, on the cores, with gp that part's own
// size floats, which part must set; a part with no items is zero. It
// returns the parts' sums added in part order, in buf.a, so the result is
// the same on any machine.
func sumInParts(buf *packBuffers, count, size int, part func(gp []float32, lo, hi int)) []float32 {
	parts := max(1, min(8, count))
	psize := (count + parts - 1) / parts
	buf.a = reuseFloats(buf.a, parts*size)
	partial := buf.a
	For(parts, 1, func(p, _, _ int) {
		gp := partial[p*size : (p+1)*size]
		lo, hi := p*psize, min(count, (p+1)*psize)
		if lo >= hi {
			clear(gp)
			return
		}
		part(gp, lo, hi)
	})
	sum := partial[:size]
	for p := 1; p < parts; p++ {
		Axpy(1, partial[p*size:(p+1)*size], sum)
	}
	return sum
}

// gradTile adds (or, when add is false, writes) one tile of a weight
// gradient, rows × ncols of C at c[o:] with row stride ldc, the sums over
// kc steps of A (rows from a, 1 float apart, ks floats a step) times a
// packed panel bp. A whole tile goes straight to C with mk; a partial one
// through tile (mk.mr·mk.nr floats), with short where it has few enough
// rows.
func gradTile(mk, short microKernel, kc int, a *float32, ks int, bp *float32, c []float32, o, ldc, rows, ncols int, tile []float32, add bool) {
	nr := mk.nr
	if rows == mk.mr && ncols == nr {
		mk.fn(kc, a, 1, ks, bp, &c[o], ldc, add)
		return
	}
	tk := mk
	if rows <= short.mr && short.mr < mk.mr && short.nr == nr {
		tk = short
	}
	tk.fn(kc, a, 1, ks, bp, &tile[0], nr, false)
	for r := 0; r < rows; r++ {
		dst := c[o+r*ldc : o+r*ldc+ncols]
		if add {
			Axpy(1, tile[r*nr:r*nr+ncols], dst)
		} else {
			copy(dst, tile[r*nr:r*nr+ncols])
		}
	}
}
