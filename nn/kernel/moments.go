package kernel

// Moments sums the columns of row-major matrices in parallel (see Sums),
// in row chunks whose size depends only on the shape, so the sums do not
// depend on the number of cores. It keeps its buffers between calls; the
// zero value is ready to use. A Moments is not safe for concurrent use.
type Moments struct {
	parts  []float32 // per chunk: c sums of u, then c sums of u·v
	s1, s2 []float64
}

// Sums returns, over the rows of the matrix u with len(shift) columns,
// s1[j] = Σ (u'[r][j] − shift[j]) and s2[j] = Σ (u'[r][j] − shift[j])·w[r][j],
// where u' is u, or u where gate lets v through and 0 elsewhere when gate
// is not nil, and w = v − vShift, or u' − shift when v is nil (see
// ColSums). Within a chunk of rows the sums are float32, across chunks
// float64, in chunk order. The results are valid until the next call.
func (s *Moments) Sums(u, v, shift, vShift []float32, gate Gate) (s1, s2 []float64) {
	c := len(shift)
	rows := len(u) / c
	per := max(1, 8192/c)
	chunks := Chunks(rows, per)
	s.parts = reuseFloats(s.parts, chunks*2*c)
	For(rows, per, func(ch, lo, hi int) {
		p1, p2 := s.parts[ch*2*c:ch*2*c+c], s.parts[ch*2*c+c:(ch+1)*2*c]
		clear(p1)
		clear(p2)
		var vs []float32
		if v != nil {
			vs = v[lo*c : hi*c]
		}
		ColSums(p1, p2, u[lo*c:hi*c], vs, gate, shift, vShift)
	})
	if cap(s.s1) < c {
		s.s1, s.s2 = make([]float64, c), make([]float64, c)
	}
	s.s1, s.s2 = s.s1[:c], s.s2[:c]
	clear(s.s1)
	clear(s.s2)
	for ch := 0; ch < chunks; ch++ {
		for j := 0; j < c; j++ {
			s.s1[j] += float64(s.parts[ch*2*c+j])
			s.s2[j] += float64(s.parts[ch*2*c+c+j])
		}
	}
	return s.s1, s.s2
}

// AddColumnSums adds the column sums of the matrix x with len(g) columns
// into g (a bias gradient), summed as Moments.Sums does.
func AddColumnSums(g, x []float32) {
	var s Moments
	shift := make([]float32, len(g))
	s1, _ := s.Sums(x, nil, shift, nil, nil)
	for j, v := range s1 {
		g[j] += float32(v)
	}
}

// AddTransposed adds the transpose of t, a rows×cols matrix, into g, a
// cols×rows matrix.
func AddTransposed(g, t []float32, rows, cols int) {
	For(cols, 1, func(_, j, _ int) {
		dst := g[j*rows : (j+1)*rows]
		for i := range dst {
			dst[i] += t[i*cols+j]
		}
	})
}
