package kernel

import (
	"runtime"
	"sync"
	"unsafe"
)

// The GEMM is cache-blocked in the way of GotoBLAS and BLIS: C is computed
// in MR×NR tiles by a register-blocked micro-kernel that reads a packed
// panel of A (MR rows by kc, k-major) and a packed panel of B (kc by NR
// columns, k-major). Packed B blocks (kc×nc) stay in the last-level cache,
// packed A blocks (mc×kc) in L2, and one B micro-panel in L1 while the
// micro-kernel sweeps the A panels.
// The depth kc of a packed block is the micro-kernel's (microKernel.kc):
// one B micro-panel, kc·nr floats, is to stay in L1.
const (
	blockM = 384 // mc: rows of one packed A block
	blockN = 512 // nc: columns of one packed B block (measured: larger blocks spread one row of B over more pages when packing)
)

// microKernel computes one MR×NR tile of C from MR rows of A and a packed
// panel of B: with acc the sums over p < k of A(i, p)·b[p·NR+j], where
// A(i, p) = a[i·rs + p·ks] (rs = 1, ks = MR for a packed panel of A;
// rs = lda, ks = 1 for rows of A read in place), it sets
// C[i·ldc+j] = acc[i][j], or adds acc to C when accumulate is true.
// Strides count float32 elements.
type microKernel struct {
	name   string
	mr, nr int
	kc     int // depth of a packed block
	fn     func(k int, a *float32, rs, ks int, b, c *float32, ldc int, accumulate bool)
	// conv is the same tile for a direct convolution (see DirectConv):
	// k = taps·c, A(i, t·c+ci) = a[offs[t] + i·rs + ci].
	conv func(taps int, offs *int, c int, a *float32, rs int, b, out *float32, ldc int, accumulate bool)
	// scatter, when not nil, copies one row of a plain B into the same
	// row of each of its packed panels: src[nr·q : nr·q+nr] to
	// dst[q·stride:] for q < panels.
	scatter func(dst, src *float32, panels, stride int)
}

// active is the GEMM micro-kernel of the path in use (see cpu.go),
// activeConv the one of the direct convolutions, whose tile may differ,
// activeNarrow the one of direct convolutions with at most its nr output
// channels, and activeShort activeConv's tile with fewer rows, or
// activeConv; kernels lists every micro-kernel this CPU can run, the best
// path's first.
var (
	active, activeConv, activeNarrow, activeShort = genericKernel, genericKernel, genericKernel, genericKernel
	kernels                                       []microKernel
)

// convKernel returns the micro-kernel of a direct convolution with cols
// output channels.
func convKernel(cols int) microKernel {
	if cols <= activeNarrow.nr {
		return activeNarrow
	}
	return activeConv
}

// KernelNames returns the names of the micro-kernels this CPU can run;
// the first is the one in use.
func KernelNames() []string {
	names := []string{active.name}
	for _, k := range kernels {
		if k.name != active.name {
			names = append(names, k.name)
		}
	}
	return names
}

// sgemm computes C = alpha·op(A)·op(B) + beta·C with micro-kernel mk,
// split into parts of whole rows or columns of C that the cores take in
// turn. Every element of C is computed in the same order whatever the
// split, so results do not depend on the number of cores.
func sgemm(mk microKernel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if beta != 0 && beta != 1 {
		scaleRows(c, m, n, ldc, beta)
		beta = 1
	}
	overwrite := beta == 0
	if 4*n <= mk.nr {
		skinnyGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, overwrite, c, ldc)
		return
	}
	if n > 2*m && m >= mk.mr && 16*m <= k {
		// B is much the larger operand, and the micro-kernel packs B but
		// reads A in place; C is small next to both (a weight gradient):
		// compute Cᵀ = op(B)ᵀ·op(A)ᵀ instead, into a scratch matrix, and
		// transpose it into C.
		buf := packPool.Get().(*packBuffers)
		buf.ct = reuseFloats(buf.ct, n*m)
		sgemmParallel(mk, !transB, !transA, n, m, k, alpha, b, ldb, a, lda, true, buf.ct, m)
		transposeInto(c, ldc, buf.ct, m, n, overwrite)
		packPool.Put(buf)
		return
	}
	sgemmParallel(mk, transA, transB, m, n, k, alpha, a, lda, b, ldb, overwrite, c, ldc)
}

// transposeInto sets C (m×n, row stride ldc) to tᵀ, t being n×m and dense,
// or adds tᵀ to C when overwrite is false; in 32×32 blocks, so that both
// sides stay in cache.
func transposeInto(c []float32, ldc int, t []float32, m, n int, overwrite bool) {
	const blk = 32
	For(Chunks(m, blk), 1, func(bi, _, _ int) {
		i0, i1 := bi*blk, min(m, (bi+1)*blk)
		for j0 := 0; j0 < n; j0 += blk {
			j1 := min(n, j0+blk)
			for i := i0; i < i1; i++ {
				row := c[i*ldc+j0 : i*ldc+j1]
				for j := range row {
					v := t[(j0+j)*m+i]
					if overwrite {
						row[j] = v
					} else {
						row[j] += v
					}
				}
			}
		}
	})
}

// sgemmParallel is sgemm for beta 0 (overwrite) or 1, split into parts.
func sgemmParallel(mk microKernel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, overwrite bool, c []float32, ldc int) {
	threads := runtime.GOMAXPROCS(0)
	parts := min(threads, max(1, 2*m*n*k/(1<<21)))
	if parts <= 1 {
		sgemmSerial(mk, transA, transB, m, n, k, alpha, a, lda, b, ldb, overwrite, c, ldc)
		return
	}
	// Each part packs the other operand's blocks for itself, so parts cost
	// repeated packing; only long sides are cut finer than one part per
	// core, which keeps the cores busy when one of them is slowed down.
	byCols := n >= 2*parts*mk.nr && n/mk.nr > m/mk.mr
	long := m
	if byCols {
		long = n
	}
	if long >= 4096 {
		parts *= 4
	}
	if byCols {
		panels := (n + mk.nr - 1) / mk.nr
		For(parts, 1, func(t, _, _ int) {
			j0, j1 := min(n, panels*t/parts*mk.nr), min(n, panels*(t+1)/parts*mk.nr)
			if j0 == j1 {
				return
			}
			bOff := j0
			if transB {
				bOff = j0 * ldb
			}
			sgemmSerial(mk, transA, transB, m, j1-j0, k, alpha, a, lda, b[bOff:], ldb, overwrite, c[j0:], ldc)
		})
		return
	}
	panels := (m + mk.mr - 1) / mk.mr
	For(parts, 1, func(t, _, _ int) {
		i0, i1 := min(m, panels*t/parts*mk.mr), min(m, panels*(t+1)/parts*mk.mr)
		if i0 == i1 {
			return
		}
		aOff := i0 * lda
		if transA {
			aOff = i0
		}
		sgemmSerial(mk, transA, transB, i1-i0, n, k, alpha, a[aOff:], lda, b, ldb, overwrite, c[i0*ldc:], ldc)
	})
}

// packBuffers are one goroutine's packing buffers, recycled between calls.
type packBuffers struct {
	a, b, tile, ct []float32
	offs           []int
}

var packPool = sync.Pool{New: func() any { return new(packBuffers) }}

// sgemmSerial is sgemm on one goroutine. With overwrite, C's old contents
// are ignored (beta = 0); otherwise the product is added to C.
func sgemmSerial(mk microKernel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, overwrite bool, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		if overwrite {
			scaleRows(c, m, n, ldc, 0)
		}
		return
	}
	mr, nr := mk.mr, mk.nr
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	blockK := mk.kc
	buf.a = reuseFloats(buf.a, roundUp(min(m, blockM), mr)*min(k, blockK))
	buf.b = reuseFloats(buf.b, roundUp(min(n, blockN), nr)*min(k, blockK))
	buf.tile = reuseFloats(buf.tile, mr*nr)
	tile := &buf.tile[0]
	for pc := 0; pc < k; pc += blockK {
		kc := min(blockK, k-pc)
		accumulate := pc > 0 || !overwrite
		for jc := 0; jc < n; jc += blockN {
			nc := min(blockN, n-jc)
			packB(buf.b, b, ldb, transB, pc, kc, jc, nc, mk)
			for ic := 0; ic < m; ic += blockM {
				mc := min(blockM, m-ic)
				// The micro-kernel reads A in place, which saves a pass over
				// A; only alpha ≠ 1 or the last partial panel need packing.
				inPlace := alpha == 1
				if inPlace {
					full := mc / mr * mr
					if full < mc {
						packA(buf.a[full*kc:], a, lda, transA, ic+full, mc-full, pc, kc, 1, mr)
					}
				} else {
					packA(buf.a, a, lda, transA, ic, mc, pc, kc, alpha, mr)
				}
				for jr := 0; jr < nc; jr += nr {
					cols := min(nr, nc-jr)
					bp := &buf.b[jr*kc]
					for ir := 0; ir < mc; ir += mr {
						rows := min(mr, mc-ir)
						ap, rs, ks := &buf.a[ir*kc], 1, mr
						if inPlace && rows == mr {
							if transA {
								ap, rs, ks = &a[pc*lda+ic+ir], 1, lda
							} else {
								ap, rs, ks = &a[(ic+ir)*lda+pc], lda, 1
							}
						}
						ci := (ic+ir)*ldc + jc + jr
						if rows == mr && cols == nr {
							mk.fn(kc, ap, rs, ks, bp, &c[ci], ldc, accumulate)
							continue
						}
						// Edge tile: compute into a scratch tile, then copy the valid part.
						mk.fn(kc, ap, rs, ks, bp, tile, nr, false)
						for i := 0; i < rows; i++ {
							dst, src := c[ci+i*ldc:ci+i*ldc+cols], buf.tile[i*nr:i*nr+cols]
							if accumulate {
								for j, v := range src {
									dst[j] += v
								}
							} else {
								copy(dst, src)
							}
						}
					}
				}
			}
		}
	}
}

// packA copies alpha·op(A)[i0:i0+mc, p0:p0+kc] into dst as row panels of
// mr rows, each k-major ([kc][mr]), zero-padding the last panel.
func packA(dst, a []float32, lda int, trans bool, i0, mc, p0, kc int, alpha float32, mr int) {
	for ip := 0; ip < mc; ip += mr {
		panel := dst[ip*kc : (ip+mr)*kc]
		rows := min(mr, mc-ip)
		for i := 0; i < rows; i++ {
			r := i0 + ip + i
			if trans {
				for p := 0; p < kc; p++ {
					panel[p*mr+i] = alpha * a[(p0+p)*lda+r]
				}
				continue
			}
			for p, v := range a[r*lda+p0 : r*lda+p0+kc] {
				panel[p*mr+i] = alpha * v
			}
		}
		for i := rows; i < mr; i++ {
			for p := 0; p < kc; p++ {
				panel[p*mr+i] = 0
			}
		}
	}
}

// packB copies op(B)[p0:p0+kc, j0:j0+nc] into dst as column panels of nr
// columns (nr = mk.nr), each k-major ([kc][nr]), zero-padding the last
// panel.
func packB(dst, b []float32, ldb int, trans bool, p0, kc, j0, nc int, mk microKernel) {
	nr := mk.nr
	if !trans {
		// Row by row: each row of B is read once, contiguously, and its
		// pieces go to the same row of every panel.
		full := nc / nr
		if mk.scatter != nil && full > 0 {
			_ = b[(p0+kc-1)*ldb+j0+full*nr-1] // bounds, once for the block
			for p := 0; p < kc; p++ {
				mk.scatter(&dst[p*nr], &b[(p0+p)*ldb+j0], full, kc*nr)
			}
		} else {
			for p := 0; p < kc; p++ {
				row := b[(p0+p)*ldb+j0 : (p0+p)*ldb+j0+full*nr]
				for q := 0; q < full; q++ {
					copy(dst[q*nr*kc+p*nr:q*nr*kc+(p+1)*nr], row[q*nr:(q+1)*nr])
				}
			}
		}
		if cols := nc - full*nr; cols > 0 {
			panel := dst[full*nr*kc : (full+1)*nr*kc]
			for p := 0; p < kc; p++ {
				row := (p0+p)*ldb + j0 + full*nr
				copy(panel[p*nr:p*nr+cols], b[row:row+cols])
				clear(panel[p*nr+cols : (p+1)*nr])
			}
		}
		return
	}
	for jp := 0; jp < nc; jp += nr {
		panel := dst[jp*kc : (jp+nr)*kc]
		cols := min(nr, nc-jp)
		for j := 0; j < cols; j++ {
			col := j0 + jp + j
			for p, v := range b[col*ldb+p0 : col*ldb+p0+kc] {
				panel[p*nr+j] = v
			}
		}
		if cols < nr {
			for p := 0; p < kc; p++ {
				clear(panel[p*nr+cols : (p+1)*nr])
			}
		}
	}
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

func reuseFloats(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// genericKernel is the portable micro-kernel, in plain Go: 4×16 tiles.
var genericKernel = microKernel{name: "generic", mr: 4, nr: 16, kc: 256, fn: kernelGeneric4x16, conv: convKernelGeneric4x16}

func kernelGeneric4x16(k int, ap *float32, rs, ks int, bp, cp *float32, ldc int, accumulate bool) {
	const mr, nr = 4, 16
	a := unsafe.Slice(ap, (mr-1)*rs+(k-1)*ks+1)
	b := unsafe.Slice(bp, k*nr)
	var acc [mr][nr]float32
	for p := 0; p < k; p++ {
		bv := (*[nr]float32)(b[p*nr : (p+1)*nr])
		for i := 0; i < mr; i++ {
			ai := a[i*rs+p*ks]
			row := &acc[i]
			for j := 0; j < nr; j++ {
				row[j] += ai * bv[j]
			}
		}
	}
	c := unsafe.Slice(cp, (mr-1)*ldc+nr)
	for i := 0; i < mr; i++ {
		dst := (*[nr]float32)(c[i*ldc : i*ldc+nr])
		if accumulate {
			for j := range dst {
				dst[j] += acc[i][j]
			}
		} else {
			*dst = acc[i]
		}
	}
}

// skinnyGemm computes C = alpha·op(A)·op(B) (+ C unless overwrite) when C
// has only a few columns, too few to fill a micro-kernel tile: as dot
// products of the rows of A with the columns of op(B) for a plain A, or
// for a transposed A as sums of scaled rows of A into the rows of Cᵀ, in
// fixed chunks of k summed in order. Either way A, the large operand, is
// read once, in place.
func skinnyGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, overwrite bool, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		if overwrite {
			scaleRows(c, m, n, ldc, 0)
		}
		return
	}
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	// bt holds op(B) transposed, n rows of k: column j of op(B) contiguous.
	buf.b = reuseFloats(buf.b, n*k)
	bt := buf.b
	for j := 0; j < n; j++ {
		for p := 0; p < k; p++ {
			if transB {
				bt[j*k+p] = b[j*ldb+p]
			} else {
				bt[j*k+p] = b[p*ldb+j]
			}
		}
	}
	store := func(ci []float32, j int, v float32) {
		if overwrite {
			ci[j] = alpha * v
		} else {
			ci[j] += alpha * v
		}
	}
	if !transA {
		For(m, 256, func(_, lo, hi int) {
			for i := lo; i < hi; i++ {
				row, ci := a[i*lda:i*lda+k], c[i*ldc:i*ldc+n]
				for j := 0; j < n; j++ {
					store(ci, j, Dot(row, bt[j*k:(j+1)*k]))
				}
			}
		})
		return
	}
	// Cᵀ[j] = Σ_p op(B)[p, j]·A[p, :], a partial Cᵀ per chunk of k (at
	// most 16 chunks, a number that depends only on k).
	chunk := max(512, (k+15)/16)
	chunks := Chunks(k, chunk)
	buf.a = reuseFloats(buf.a, chunks*n*m)
	parts := buf.a
	For(k, chunk, func(ch, lo, hi int) {
		ct := parts[ch*n*m : (ch+1)*n*m]
		clear(ct)
		for p := lo; p < hi; p++ {
			row := a[p*lda : p*lda+m]
			for j := 0; j < n; j++ {
				Axpy(bt[j*k+p], row, ct[j*m:(j+1)*m])
			}
		}
	})
	for ch := 1; ch < chunks; ch++ {
		Axpy(1, parts[ch*n*m:(ch+1)*n*m], parts[:n*m])
	}
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		for j := 0; j < n; j++ {
			store(ci, j, parts[j*m+i])
		}
	}
}
