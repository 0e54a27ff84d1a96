package nn

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// ntxentRef is the NT-Xent loss and top-1 of z [m, d] computed directly in
// float64, row by row, from the definition.
func ntxentRef(z []float32, m, d int, temp float64) (loss, top1 float64) {
	u := make([][]float64, m)
	for i := range m {
		var ss float64
		for _, v := range z[i*d : (i+1)*d] {
			ss += float64(v) * float64(v)
		}
		n := max(math.Sqrt(ss), 1e-12)
		for _, v := range z[i*d : (i+1)*d] {
			u[i] = append(u[i], float64(v)/n)
		}
	}
	sim := func(i, j int) float64 {
		var s float64
		for k := range d {
			s += u[i][k] * u[j][k]
		}
		return s / temp
	}
	for i := range m {
		pos := i ^ 1
		var den float64
		best, top := math.Inf(-1), -1
		for k := range m {
			if k == i {
				continue
			}
			den += math.Exp(sim(i, k))
			if sim(i, k) > best {
				best, top = sim(i, k), k
			}
		}
		loss += -sim(i, pos) + math.Log(den)
		if top == pos {
			top1++
		}
	}
	return loss / float64(m), top1 / float64(m)
}

func TestNTXentMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for _, tc := range []struct {
		m, d int
		temp float64
	}{{2, 3, 0.5}, {6, 4, 0.5}, {8, 5, 0.1}, {16, 3, 1}, {64, 32, 0.07}} {
		z := randTensor(rng, tc.m, tc.d)
		l := NTXent{Temperature: tc.temp}
		loss, top1 := l.Forward(z)
		wl, wt := ntxentRef(z.Data, tc.m, tc.d, tc.temp)
		if math.Abs(loss-wl) > 1e-5*max(1, math.Abs(wl)) || top1 != wt {
			t.Errorf("M %d D %d T %g: loss %.7g top-1 %g, want %.7g and %g", tc.m, tc.d, tc.temp, loss, top1, wl, wt)
		}
	}
}

// TestNTXentKnownValues checks the loss and top-1 on embeddings whose
// similarities are known: orthogonal pairs, each pair on its own axis.
func TestNTXentKnownValues(t *testing.T) {
	// Pairs on axes 0, 1, 2, each pair's rows identical but of different
	// lengths: s = 1/T with the positive, 0 with the 4 negatives.
	z := FromData([]float32{
		1, 0, 0, 3, 0, 0,
		0, 2, 0, 0, 0.5, 0,
		0, 0, 1, 0, 0, 7,
	}, 6, 3)
	l := NTXent{Temperature: 0.5}
	loss, top1 := l.Forward(z)
	want := -2 + math.Log(math.Exp(2)+4)
	if math.Abs(loss-want) > 1e-6 || top1 != 1 {
		t.Errorf("aligned pairs: loss %.7g top-1 %g, want %.7g and 1", loss, top1, want)
	}
	// Each row's positive points the other way, its negatives are
	// orthogonal: every row's nearest is a negative.
	z = FromData([]float32{
		1, 0, -1, 0,
		0, 1, 0, -1,
	}, 4, 2)
	loss, top1 = l.Forward(z)
	want = 2 + math.Log(math.Exp(-2)+2)
	if math.Abs(loss-want) > 1e-6 || top1 != 0 {
		t.Errorf("opposed pairs: loss %.7g top-1 %g, want %.7g and 0", loss, top1, want)
	}
	// One pair: the positive is the only other row, the loss is 0.
	z = FromData([]float32{1, 2, -3, 0.5}, 2, 2)
	if loss, top1 := l.Forward(z); math.Abs(loss) > 1e-7 || top1 != 1 {
		t.Errorf("one pair: loss %g top-1 %g, want 0 and 1", loss, top1)
	}
}

// TestNTXentGradient checks Backward against central differences of the
// loss, at several temperatures; the loss is smooth, so every element must
// match.
func TestNTXentGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, tc := range []struct {
		m, d int
		temp float64
	}{{2, 3, 0.5}, {6, 4, 0.5}, {8, 5, 0.2}, {12, 3, 1}} {
		z := randTensor(rng, tc.m, tc.d)
		l := NTXent{Temperature: tc.temp}
		l.Forward(z)
		dz := append([]float32(nil), l.Backward().Data...)
		eval := func() float64 {
			loss, _ := l.Forward(z)
			return loss
		}
		if tc.m == 2 {
			// One pair: the loss is 0 whatever z, and so is its gradient.
			for i, g := range dz {
				if g != 0 {
					t.Errorf("one pair: ∂L/∂z[%d] = %g, want 0", i, g)
				}
			}
			continue
		}
		fdCheck(t, "NTXent ∂L/∂z", z.Data, dz, 1e-3, defaultTol, eval)
	}
}

// TestNTXentScaleInvariant: the loss sees only directions, so scaling a row
// changes nothing and its gradient is orthogonal to it.
func TestNTXentScaleInvariant(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	z := randTensor(rng, 8, 6)
	l := NTXent{Temperature: 0.5}
	l0, _ := l.Forward(z)
	dz := l.Backward()
	for i := range 8 {
		var dot float64
		for k := range 6 {
			dot += float64(z.Data[i*6+k]) * float64(dz.Data[i*6+k])
		}
		if math.Abs(dot) > 1e-6 {
			t.Errorf("row %d: z·∂L/∂z = %g, want 0", i, dot)
		}
	}
	for k := range 6 {
		z.Data[2*6+k] *= 5
	}
	if l1, _ := l.Forward(z); math.Abs(l1-l0) > 1e-6 {
		t.Errorf("scaling a row changed the loss from %.7g to %.7g", l0, l1)
	}
}

func TestNTXentPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		z    *Tensor
		temp float64
		want string
	}{
		{"odd rows", NewTensor(3, 2), 0.5, "3 rows"},
		{"one row", NewTensor(1, 2), 0.5, "1 rows"},
		{"rank", NewTensor(2, 2, 2), 0.5, "rank-2"},
		{"temperature", NewTensor(4, 2), 0, "temperature 0"},
		{"negative temperature", NewTensor(4, 2), -1, "temperature -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tc.want) {
					t.Errorf("panic %v, want one mentioning %q", r, tc.want)
				}
			}()
			l := NTXent{Temperature: tc.temp}
			l.Forward(tc.z)
		})
	}
}
