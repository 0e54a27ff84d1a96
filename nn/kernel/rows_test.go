package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The row kernels have a vector path for widths that are multiples of the
// vector width on CPUs that have it, and plain Go for everything else.
// Each test below runs every case on every path this CPU runs (see
// forPaths), so that all are checked against the same float64 reference
// on widths that are multiples of 8 or 16 as well as on widths that are
// not.

var (
	rowWidths = []int{1, 5, 8, 12, 16, 32, 33, 48, 112, 264}
	rowCounts = []int{0, 1, 2, 7}
)

// forRowPaths runs fn as one subtest per path.
func forRowPaths(t *testing.T, fn func(t *testing.T)) {
	t.Helper()
	forPaths(t, fn)
}

var negZero = float32(math.Copysign(0, -1))

// rowValues returns n values uniform in [−2, 2), one in eight of them +0
// and one in eight −0.
func rowValues(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		switch rng.IntN(8) {
		case 0:
			s[i] = 0
		case 1:
			s[i] = negZero
		default:
			s[i] = float32(4*rng.Float64() - 2)
		}
	}
	return s
}

const guardValue = 12345.5

// guarded returns a slice of n floats, all NaN (so an element a kernel
// fails to write shows), followed in the same array by guard floats of
// guardValue that the kernel must leave alone.
func guarded(n, guard int) []float32 {
	s := make([]float32, n+guard)
	for i := range s[:n] {
		s[i] = float32(math.NaN())
	}
	for i := n; i < len(s); i++ {
		s[i] = guardValue
	}
	return s[:n]
}

// checkGuard fails if any of the guard floats after s was written.
func checkGuard(t *testing.T, what string, s []float32, guard int) {
	t.Helper()
	for i, v := range s[len(s) : len(s)+guard] {
		if v != guardValue {
			t.Fatalf("%s: wrote %v past its end, at offset %d", what, v, i)
		}
	}
}

func TestScaleShiftRows(t *testing.T) {
	forRowPaths(t, func(t *testing.T) {
		for _, c := range rowWidths {
			for _, rows := range rowCounts {
				for _, relu := range []bool{false, true} {
					t.Run(fmt.Sprintf("c%d_rows%d_relu%v", c, rows, relu), func(t *testing.T) {
						rng := rand.New(rand.NewPCG(uint64(c), uint64(rows)))
						n := rows * c
						s, b := rowValues(rng, c), rowValues(rng, c)
						x := rowValues(rng, n)
						for j := 0; j < c; j += 2 {
							// Powers of two, so that x = −b/s is exact and
							// x·s + b is exactly zero, below.
							s[j] = float32(math.Ldexp(1, rng.IntN(3)-1))
							if rng.IntN(2) == 0 {
								s[j] = -s[j]
							}
						}
						for i := range x {
							if j := i % c; j%2 == 0 && rng.IntN(4) == 0 {
								x[i] = -b[j] / s[j]
							}
						}
						dst := guarded(n, c)
						ScaleShiftRows(dst, x, s, b, relu)
						checkGuard(t, "ScaleShiftRows", dst, c)
						checkScaleShift(t, dst, x, s, b, relu)

						// In place: the same bits.
						inPlace := guarded(n, c)
						copy(inPlace, x)
						ScaleShiftRows(inPlace, inPlace, s, b, relu)
						checkGuard(t, "ScaleShiftRows in place", inPlace, c)
						for i := range dst {
							if math.Float32bits(inPlace[i]) != math.Float32bits(dst[i]) {
								t.Fatalf("in place: [%d] = %v, want %v as with separate buffers", i, inPlace[i], dst[i])
							}
						}
					})
				}
			}
		}
	})
}

// checkScaleShift checks dst = x·s + b per row (then max(·, +0) with relu)
// against float64. The product of two float32 values is exact in float64,
// so the reference is zero exactly when x·s + b is, and then its sign is
// the one IEEE arithmetic gives, which dst must have too; with relu every
// result that is zero or clearly negative must be +0.
func checkScaleShift(t *testing.T, dst, x, s, b []float32, relu bool) {
	t.Helper()
	c := len(s)
	for i, v := range x {
		j := i % c
		want := float64(v)*float64(s[j]) + float64(b[j])
		tol := 1e-6 * (math.Abs(float64(v)*float64(s[j])) + math.Abs(float64(b[j])))
		got := dst[i]
		where := fmt.Sprintf("row %d col %d: %v·%v + %v", i/c, j, v, s[j], b[j])
		switch {
		case math.IsNaN(float64(got)):
			t.Fatalf("%s: got NaN (not written?)", where)
		case relu && math.Signbit(float64(got)):
			t.Fatalf("%s: with relu got %v (sign bit set), want ≥ +0", where, got)
		case relu && (want == 0 || want < -tol):
			if math.Float32bits(got) != 0 {
				t.Fatalf("%s: with relu got %v, want +0 exactly (reference %v)", where, got, want)
			}
		case relu:
			if math.Abs(float64(got)-max(want, 0)) > tol {
				t.Fatalf("%s: with relu got %v, want %v", where, got, max(want, 0))
			}
		case want == 0:
			if got != 0 || math.Signbit(float64(got)) != math.Signbit(want) {
				t.Fatalf("%s: got %v, want a zero with sign bit %v", where, got, math.Signbit(want))
			}
		default:
			if math.Abs(float64(got)-want) > tol {
				t.Fatalf("%s: got %v, want %v", where, got, want)
			}
		}
	}
}

func TestAffineGradRows(t *testing.T) {
	forRowPaths(t, func(t *testing.T) {
		for _, c := range rowWidths {
			for _, rows := range rowCounts {
				for _, gated := range []bool{false, true} {
					t.Run(fmt.Sprintf("c%d_rows%d_gate%v", c, rows, gated), func(t *testing.T) {
						rng := rand.New(rand.NewPCG(uint64(c), 100+uint64(rows)))
						n := rows * c
						a, k, b := rowValues(rng, c), rowValues(rng, c), rowValues(rng, c)
						dy, x := rowValues(rng, n), rowValues(rng, n)
						var gate Gate
						if gated {
							gate = gateValues(rng, c)
						}
						pass := gatePasses(gate, x, n, c)
						dst := guarded(n, c)
						AffineGradRows(dst, dy, gate, x, a, k, b)
						checkGuard(t, "AffineGradRows", dst, c)
						for i := range dy {
							j := i % c
							g := float64(dy[i])
							if !pass[i] {
								g = 0
							}
							ga, xk := g*float64(a[j]), float64(x[i])*float64(k[j])
							want := ga + xk + float64(b[j])
							tol := 1e-6 * (math.Abs(ga) + math.Abs(xk) + math.Abs(float64(b[j])))
							if got := float64(dst[i]); math.IsNaN(got) || math.Abs(got-want) > tol {
								t.Fatalf("row %d col %d (dy %v, passes %v, x %v): got %v, want %v", i/c, j, dy[i], pass[i], x[i], got, want)
							}
						}
					})
				}
			}
		}
	})
}

func TestColSums(t *testing.T) {
	forRowPaths(t, func(t *testing.T) {
		for _, c := range rowWidths {
			for _, rows := range rowCounts {
				for _, gated := range []bool{false, true} {
					for _, withV := range []bool{false, true} {
						if gated && !withV {
							continue // the gate reads v
						}
						t.Run(fmt.Sprintf("c%d_rows%d_gate%v_v%v", c, rows, gated, withV), func(t *testing.T) {
							rng := rand.New(rand.NewPCG(uint64(c), 200+uint64(rows)))
							n := rows * c
							u, su := rowValues(rng, n), rowValues(rng, c)
							var v, sv []float32
							var gate Gate
							if withV {
								v, sv = rowValues(rng, n), rowValues(rng, c)
							}
							if gated {
								gate = gateValues(rng, c)
							}
							pass := gatePasses(gate, v, n, c)
							// The sums add to what p1 and p2 hold.
							p1, p2 := guarded(c, c), guarded(c, c)
							copy(p1, rowValues(rng, c))
							copy(p2, rowValues(rng, c))
							want1, want2 := make([]float64, c), make([]float64, c)
							scale1, scale2 := make([]float64, c), make([]float64, c)
							for j := 0; j < c; j++ {
								want1[j], want2[j] = float64(p1[j]), float64(p2[j])
								scale1[j], scale2[j] = math.Abs(want1[j]), math.Abs(want2[j])
							}
							for i := range u {
								j := i % c
								d := float64(u[i])
								if !pass[i] {
									d = 0
								}
								d -= float64(su[j])
								w := d
								if v != nil {
									w = float64(v[i]) - float64(sv[j])
								}
								want1[j] += d
								want2[j] += d * w
								scale1[j] += math.Abs(d)
								scale2[j] += math.Abs(d * w)
							}

							ColSums(p1, p2, u, v, gate, su, sv)
							checkGuard(t, "ColSums p1", p1, c)
							checkGuard(t, "ColSums p2", p2, c)
							// float32 sums of rows+1 terms, each rounded
							// once or twice.
							rel := 1e-6 * float64(rows+1)
							for j := 0; j < c; j++ {
								if got := float64(p1[j]); math.IsNaN(got) || math.Abs(got-want1[j]) > rel*scale1[j] {
									t.Errorf("p1[%d] = %v, want %v", j, got, want1[j])
								}
								if got := float64(p2[j]); math.IsNaN(got) || math.Abs(got-want2[j]) > rel*scale2[j] {
									t.Errorf("p2[%d] = %v, want %v", j, got, want2[j])
								}
							}
						})
					}
				}
			}
		}
	})
}

// TestColSumsShifted checks what the shifts are for: columns of values
// near 1000 with a spread of 1, shifted by their first row, give the sum
// of squared deviations to float32 precision, not to that of 1000².
func TestColSumsShifted(t *testing.T) {
	forRowPaths(t, func(t *testing.T) {
		for _, c := range []int{5, 8, 16} {
			t.Run(fmt.Sprintf("c%d", c), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(7, uint64(c)))
				const rows = 512
				u := make([]float32, rows*c)
				for i := range u {
					u[i] = float32(1000 + 10*float64(i%c) + rng.NormFloat64())
				}
				su := u[:c]
				p1, p2 := make([]float32, c), make([]float32, c)
				ColSums(p1, p2, u, nil, nil, su, nil)
				for j := 0; j < c; j++ {
					var s1, s2 float64
					for r := 0; r < rows; r++ {
						d := float64(u[r*c+j]) - float64(su[j])
						s1 += d
						s2 += d * d
					}
					if math.Abs(float64(p1[j])-s1) > 1e-4*(1+math.Abs(s1)) || math.Abs(float64(p2[j])-s2) > 1e-5*s2 {
						t.Errorf("column %d: sums %v, %v, want %v, %v", j, p1[j], p2[j], s1, s2)
					}
				}
			})
		}
	})
}

// gateValues returns a gate for c columns whose scales and shifts are
// rowValues, except that column 0 passes exactly where x·0 + the smallest
// subnormal is > 0: everywhere, by the least positive margin.
func gateValues(rng *rand.Rand, c int) Gate {
	g := Gate(rowValues(rng, 2*c))
	g[0], g[c] = 0, math.SmallestNonzeroFloat32
	return g
}

// gatePasses returns, for each of the n elements of x (c columns),
// whether gate lets it through, by the contract: where ScaleShiftRows
// with the gate's scales and shifts gives a value > 0. A nil gate lets
// all through (x may then be nil).
func gatePasses(gate Gate, x []float32, n, c int) []bool {
	pass := make([]bool, n)
	if gate == nil {
		for i := range pass {
			pass[i] = true
		}
		return pass
	}
	y := make([]float32, len(x))
	ScaleShiftRows(y, x, gate[:c], gate[c:], false)
	for i, v := range y {
		pass[i] = v > 0
	}
	return pass
}
