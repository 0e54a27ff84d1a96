package nn

// Reducer sums values over the processes of a data-parallel training, each
// of which holds a slice of the global batch. Batch norm uses it to compute
// its training statistics over the global batch (synchronised batch norm,
// see SyncBatchNorm).
type Reducer interface {
	// Sum replaces every value of v by its sum over the processes. Every
	// process calls it the same number of times, in the same order, with
	// as many values.
	Sum(v []float64)
	// First reports whether this process holds the first samples of the
	// global batch.
	First() bool
}

// SyncBatchNorm makes the batch norms whose running statistics are among
// buffers (a model's Buffers) synchronised: in training they normalise
// with the mean and variance of the global batch, summed with r over the
// processes, and their Backward differentiates through those statistics,
// so that every process computes what one process would on the whole batch
// (up to the order of the sums). The gradients of γ and β stay each
// process's own share, to be summed or averaged with the other parameters'
// gradients. Evaluation is unchanged. A nil r makes them local again.
func SyncBatchNorm(buffers []*Param, r Reducer) {
	for _, b := range buffers {
		b.reducer = r
	}
}

// syncScratch holds a synchronised batch norm's buffers.
type syncScratch struct {
	shift []float32
	buf   []float64
}

// sharedShift returns the first row of the global batch, x0 (the first c
// values of x on the first process), the shift of every process's sums,
// as one process on the whole batch would take it.
func (s *syncScratch) sharedShift(r Reducer, x0 []float32) []float32 {
	c := len(x0)
	s.buf = reuseSlice(s.buf, c)
	clear(s.buf)
	if r.First() {
		for j, v := range x0 {
			s.buf[j] = float64(v)
		}
	}
	r.Sum(s.buf)
	s.shift = reuseSlice(s.shift, c)
	for j, v := range s.buf {
		s.shift[j] = float32(v)
	}
	return s.shift
}

// sum returns the sums over the processes of a and b (each c values) and
// of the count m, in the scratch buffer; a and b are left as they are.
func (s *syncScratch) sum(r Reducer, a, b []float64, m int) (ga, gb []float64, gm int) {
	c := len(a)
	s.buf = reuseSlice(s.buf, 2*c+1)
	copy(s.buf, a)
	copy(s.buf[c:], b)
	s.buf[2*c] = float64(m)
	r.Sum(s.buf)
	return s.buf[:c], s.buf[c : 2*c], int(s.buf[2*c])
}
