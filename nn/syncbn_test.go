package nn

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// group sums values over n goroutines, in member order, as an
// all-reduce over n processes would.
type group struct {
	n       int
	mu      sync.Mutex
	cond    *sync.Cond
	parts   [][]float64
	arrived int
	gen     int
	result  []float64
	calls   int
}

func newGroup(n int) *group {
	g := &group{n: n, parts: make([][]float64, n)}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// member is the Reducer of one goroutine of a group.
type member struct {
	g    *group
	rank int
}

func (m member) First() bool { return m.rank == 0 }

func (m member) Sum(v []float64) {
	g := m.g
	g.mu.Lock()
	defer g.mu.Unlock()
	gen := g.gen
	g.parts[m.rank] = append([]float64(nil), v...)
	g.arrived++
	if g.arrived == g.n {
		res := make([]float64, len(v))
		for _, p := range g.parts {
			if len(p) != len(v) {
				panic("group: members summed different lengths")
			}
			for i, x := range p {
				res[i] += x
			}
		}
		g.result, g.arrived = res, 0
		g.gen++
		g.calls++
		g.cond.Broadcast()
	} else {
		for gen == g.gen {
			g.cond.Wait()
		}
	}
	copy(v, g.result)
}

// syncedBN is a Layer that runs a synchronised batch norm as parts
// processes would: the batch split into equal parts along its first axis,
// each part through its own replica in its own goroutine. The replicas'
// γ and β are replica 0's values; their gradients are summed into replica
// 0's, the gradient of the whole.
type syncedBN struct {
	reps   []*BatchNorm
	g      *group
	parts  int
	y, dx  *Tensor
	shapes []int
}

func newSyncedBN(parts int, build func() *BatchNorm) *syncedBN {
	s := &syncedBN{g: newGroup(parts), parts: parts}
	for r := range parts {
		l := build()
		SyncBatchNorm(l.Buffers(), member{s.g, r})
		s.reps = append(s.reps, l)
	}
	return s
}

func (s *syncedBN) each(f func(r int)) {
	var wg sync.WaitGroup
	for r := range s.parts {
		wg.Go(func() { f(r) })
	}
	wg.Wait()
}

func (s *syncedBN) slice(x *Tensor, r int) *Tensor {
	n := x.Shape[0] / s.parts
	per := x.Len() / x.Shape[0]
	shape := append([]int{n}, x.Shape[1:]...)
	return FromData(x.Data[r*n*per:(r+1)*n*per], shape...)
}

func (s *syncedBN) Forward(x *Tensor, train bool) *Tensor {
	s.y = NewTensor(x.Shape...)
	for _, l := range s.reps[1:] {
		copy(l.Weight.Value.Data, s.reps[0].Weight.Value.Data)
		copy(l.Bias.Value.Data, s.reps[0].Bias.Value.Data)
	}
	s.each(func(r int) {
		y := s.reps[r].Forward(s.slice(x, r), train)
		copy(s.slice(s.y, r).Data, y.Data)
	})
	return s.y
}

func (s *syncedBN) Backward(dy *Tensor) *Tensor {
	s.dx = NewTensor(dy.Shape...)
	for _, l := range s.reps[1:] {
		ZeroGrads(l.Params())
	}
	s.each(func(r int) {
		dx := s.reps[r].Backward(s.slice(dy, r))
		copy(s.slice(s.dx, r).Data, dx.Data)
	})
	for _, l := range s.reps[1:] {
		for i, p := range l.Params() {
			q := s.reps[0].Params()[i]
			for j, v := range p.Grad.Data {
				q.Grad.Data[j] += v
			}
		}
	}
	return s.dx
}

func (s *syncedBN) Params() []*Param { return s.reps[0].Params() }

// TestSyncBatchNormGradients checks a batch norm synchronised over two
// and three processes against finite differences of the whole.
func TestSyncBatchNormGradients(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts int
		build func() *BatchNorm
		shape []int
	}{
		{"2D/2", 2, func() *BatchNorm { return NewBatchNorm2D("bn", 3) }, []int{4, 3, 2, 3}},
		{"2D+ReLU/3", 3, func() *BatchNorm { return NewBatchNorm2D("bn", 3).WithReLU() }, []int{6, 2, 2, 3}},
		{"1D/2", 2, func() *BatchNorm { return NewBatchNorm1D("bn", 4) }, []int{8, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			s := newSyncedBN(tc.parts, tc.build)
			randomiseParams(s.reps[0], rng)
			x := awayFromZero(rng, tc.shape...)
			if s.reps[0].ReLU {
				// Keep the normalised values away from ReLU's kink.
				checkLayer(t, s, x, true, checkOpts{kinks: true})
				return
			}
			checkLayer(t, s, x, true, checkOpts{})
		})
	}
}

// TestSyncBatchNormMatchesWhole checks that the synchronised parts give
// what one batch norm gives on the whole batch: outputs, running
// statistics, input gradient and the summed γ, β gradients.
func TestSyncBatchNormMatchesWhole(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const c = 5
	whole := NewBatchNorm2D("bn", c).WithReLU()
	randomiseParams(whole, rng)
	s := newSyncedBN(2, func() *BatchNorm { return NewBatchNorm2D("bn", c).WithReLU() })
	for i, p := range whole.Params() {
		copy(s.reps[0].Params()[i].Value.Data, p.Value.Data)
	}
	for step := range 3 {
		x := randTensor(rng, 8, 3, 3, c)
		for i := range x.Data {
			x.Data[i] += 40 // a mean far from 0: the shared shift matters
		}
		dy := randTensor(rng, 8, 3, 3, c)
		ZeroGrads(whole.Params())
		ZeroGrads(s.Params())
		want := append([]float32(nil), whole.Forward(x, true).Data...)
		got := s.Forward(x, true).Data
		wantDx := append([]float32(nil), whole.Backward(dy).Data...)
		gotDx := s.Backward(dy).Data
		close := func(what string, a, b []float32, tol float64) {
			t.Helper()
			for i := range a {
				if d := math.Abs(float64(a[i]) - float64(b[i])); d > tol*(1+math.Abs(float64(a[i]))) {
					t.Fatalf("step %d: %s[%d] = %v, the whole batch's %v", step, what, i, b[i], a[i])
				}
			}
		}
		close("y", want, got, 1e-5)
		close("dx", wantDx, gotDx, 1e-4)
		close("γ gradient", whole.Weight.Grad.Data, s.reps[0].Weight.Grad.Data, 1e-4)
		close("β gradient", whole.Bias.Grad.Data, s.reps[0].Bias.Grad.Data, 1e-4)
		for _, l := range s.reps {
			close("running mean", whole.RunningMean.Value.Data, l.RunningMean.Value.Data, 1e-6)
			close("running var", whole.RunningVar.Value.Data, l.RunningVar.Value.Data, 1e-6)
		}
	}
	// A forward (shift, sums) and a backward (sums) per step.
	if want := 3 * 3; s.g.calls != want {
		t.Errorf("%d reductions, want %d", s.g.calls, want)
	}
	// Evaluation uses the running statistics and sums nothing.
	s.Forward(randTensor(rng, 4, 3, 3, c), false)
	if s.g.calls != 9 {
		t.Errorf("evaluation summed: %d reductions, want 9", s.g.calls)
	}
	SyncBatchNorm(whole.Buffers(), nil)
}

// TestSyncBatchNormOneValueEach checks that a synchronised batch norm
// trains on one value per channel per process, two in all.
func TestSyncBatchNormOneValueEach(t *testing.T) {
	s := newSyncedBN(2, func() *BatchNorm { return NewBatchNorm1D("bn", 3) })
	x := FromData([]float32{1, 2, 3, 3, 6, 9}, 2, 3)
	y := s.Forward(x, true)
	for i, want := range []float32{-1, -1, -1, 1, 1, 1} {
		if math.Abs(float64(y.Data[i]-want)) > 1e-3 {
			t.Fatalf("y = %v, want ±1", y.Data)
		}
	}
}
