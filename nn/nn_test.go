package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// TestBatchNormRunningStats checks the running statistics after one
// training step against the formula: with momentum 0.1 from (0, 1),
// mean ← 0.1·batch mean, var ← 0.9 + 0.1·unbiased batch variance; and that
// evaluation then normalises with them.
func TestBatchNormRunningStats(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bn    *BatchNorm
		shape []int
	}{
		{"2D", NewBatchNorm2D("bn", 3), []int{2, 2, 4, 3}},
		{"1D", NewBatchNorm1D("bn", 3), []int{5, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(41, 42))
			bn := tc.bn
			randomiseParams(bn, rng)
			x := randTensor(rng, tc.shape...)
			c := tc.shape[len(tc.shape)-1]
			for i := range x.Data {
				// Channels are the last axis: element i is in channel
				// i mod c. Each has its own mean.
				x.Data[i] = 2*x.Data[i] + 1 + float32(i%c)
			}
			bn.Forward(x, true)

			m := float64(x.Len() / c)
			for ch := 0; ch < c; ch++ {
				var vals []float64
				for i := ch; i < x.Len(); i += c {
					vals = append(vals, float64(x.Data[i]))
				}
				var mean, ss float64
				for _, v := range vals {
					mean += v
				}
				mean /= m
				for _, v := range vals {
					ss += (v - mean) * (v - mean)
				}
				wantMean, wantVar := 0.1*mean, 0.9+0.1*ss/(m-1)
				if got := float64(bn.RunningMean.Value.Data[ch]); math.Abs(got-wantMean) > 1e-6 {
					t.Errorf("running mean[%d] = %v, want %v", ch, got, wantMean)
				}
				if got := float64(bn.RunningVar.Value.Data[ch]); math.Abs(got-wantVar) > 1e-6 {
					t.Errorf("running var[%d] = %v, want %v", ch, got, wantVar)
				}
			}

			// Evaluation uses the running statistics and leaves them alone.
			rm, rv := bn.RunningMean.Value.Clone(), bn.RunningVar.Value.Clone()
			x2 := randTensor(rng, tc.shape...)
			y := bn.Forward(x2, false)
			for i, v := range x2.Data {
				ch := i % c
				g, b := float64(bn.Weight.Value.Data[ch]), float64(bn.Bias.Value.Data[ch])
				want := g*(float64(v)-float64(rm.Data[ch]))/math.Sqrt(float64(rv.Data[ch])+1e-5) + b
				if math.Abs(float64(y.Data[i])-want) > 1e-5*(1+math.Abs(want)) {
					t.Fatalf("eval y[%d] = %v, want %v", i, y.Data[i], want)
				}
			}
			if !slices.Equal(rm.Data, bn.RunningMean.Value.Data) || !slices.Equal(rv.Data, bn.RunningVar.Value.Data) {
				t.Error("an evaluation forward pass changed the running statistics")
			}
		})
	}
}

// TestBatchNormTrainOutput checks that training normalises each channel
// (the last axis) to mean β and standard deviation |γ| (biased).
func TestBatchNormTrainOutput(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	bn := NewBatchNorm2D("bn", 2)
	randomiseParams(bn, rng)
	x := randTensor(rng, 3, 4, 4, 2)
	for i := range x.Data {
		x.Data[i] = 5*x.Data[i] - 3 + 4*float32(i%2)
	}
	y := bn.Forward(x, true)
	for ch := 0; ch < 2; ch++ {
		var sum, sq float64
		for i := ch; i < y.Len(); i += 2 {
			v := y.Data[i]
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		mean := sum / 48
		std := math.Sqrt(sq/48 - mean*mean)
		g, b := float64(bn.Weight.Value.Data[ch]), float64(bn.Bias.Value.Data[ch])
		if math.Abs(mean-b) > 1e-5 || math.Abs(std-math.Abs(g)) > 1e-4 {
			t.Errorf("channel %d: mean %v std %v, want %v and %v", ch, mean, std, b, math.Abs(g))
		}
	}
}

// TestForwardValues checks the parameter-free layers and Linear on small
// cases worked by hand.
func TestForwardValues(t *testing.T) {
	lin := NewLinear("fc", 2, 3, rand.New(rand.NewPCG(1, 1)))
	copy(lin.Weight.Value.Data, []float32{1, 2, 0, -1, 3, 0.5})
	copy(lin.Bias.Value.Data, []float32{0.5, 0, -1})
	for _, tc := range []struct {
		name  string
		l     Layer
		x     *Tensor
		want  []float32
		shape []int
	}{
		{
			name: "ReLU", l: NewReLU(),
			x:    FromData([]float32{-1, 0, 2, -0.5}, 2, 2),
			want: []float32{0, 0, 2, 0}, shape: []int{2, 2},
		},
		{
			name: "MaxPool2D/k2_s2", l: NewMaxPool2D(2, 2),
			x: FromData([]float32{
				1, 5, 2, 0, 9,
				3, 4, 8, 1, 9,
				7, 0, 6, 6, 9,
			}, 1, 3, 5, 1),
			want: []float32{5, 8}, shape: []int{1, 1, 2, 1},
		},
		{
			name: "MaxPool2D/k3_s2", l: NewMaxPool2D(3, 2),
			x: FromData([]float32{
				1, 5, 2, 0, 9,
				3, 4, 8, 1, 9,
				7, 0, 6, 6, 2,
			}, 1, 3, 5, 1),
			want: []float32{8, 9}, shape: []int{1, 1, 2, 1},
		},
		{
			// Two channels, each pooled on its own: channel 1 is 10 − channel 0.
			name: "MaxPool2D/k2_s2_channels", l: NewMaxPool2D(2, 2),
			x: FromData(nhwc(1, 3, 5,
				[]float32{
					1, 5, 2, 0, 9,
					3, 4, 8, 1, 9,
					7, 0, 6, 6, 9,
				}, []float32{
					9, 5, 8, 10, 1,
					7, 6, 2, 9, 1,
					3, 10, 4, 4, 1,
				}), 1, 3, 5, 2),
			want: []float32{5, 9, 8, 10}, shape: []int{1, 1, 2, 2},
		},
		{
			name: "MaxPool2D/k3_s2_channels", l: NewMaxPool2D(3, 2),
			x: FromData(nhwc(1, 3, 5,
				[]float32{
					1, 5, 2, 0, 9,
					3, 4, 8, 1, 9,
					7, 0, 6, 6, 2,
				}, []float32{
					9, 5, 8, 10, 1,
					7, 6, 2, 9, 1,
					3, 10, 4, 4, 8,
				}), 1, 3, 5, 2),
			want: []float32{8, 10, 9, 10}, shape: []int{1, 1, 2, 2},
		},
		{
			// Channel 0 is 1, 2, 3, 6; channel 1 is −1, −3, 0, 0.
			name: "GlobalAvgPool", l: NewGlobalAvgPool(),
			x:    FromData([]float32{1, -1, 2, -3, 3, 0, 6, 0}, 1, 2, 2, 2),
			want: []float32{3, -1}, shape: []int{1, 2},
		},
		{
			name: "Upsample2D/x2", l: NewUpsample2D(2),
			x: FromData([]float32{1, 2, 3, 4, 5, 6}, 1, 2, 3, 1),
			want: []float32{
				1, 1, 2, 2, 3, 3,
				1, 1, 2, 2, 3, 3,
				4, 4, 5, 5, 6, 6,
				4, 4, 5, 5, 6, 6,
			},
			shape: []int{1, 4, 6, 1},
		},
		{
			// Each pixel's channels travel together.
			name: "Upsample2D/x2_channels", l: NewUpsample2D(2),
			x: FromData([]float32{1, -1, 2, -2}, 1, 1, 2, 2),
			want: []float32{
				1, -1, 1, -1, 2, -2, 2, -2,
				1, -1, 1, -1, 2, -2, 2, -2,
			},
			shape: []int{1, 2, 4, 2},
		},
		{
			name: "Upsample2D/x3", l: NewUpsample2D(3),
			x:    FromData([]float32{1, 2}, 2, 1, 1, 1),
			want: []float32{1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2}, shape: []int{2, 3, 3, 1},
		},
		{
			name: "Linear", l: lin,
			x:    FromData([]float32{1, 1, 2, -1}, 2, 2),
			want: []float32{3.5, -1, 2.5, 0.5, 1, 4.5}, shape: []int{2, 3},
		},
		{
			name: "Flatten", l: NewFlatten(),
			x:    FromData([]float32{1, 2, 3, 4, 5, 6, 7, 8}, 2, 2, 2, 1),
			want: []float32{1, 2, 3, 4, 5, 6, 7, 8}, shape: []int{2, 4},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := tc.l.Forward(tc.x, true)
			if !slices.Equal(y.Shape, tc.shape) || !slices.Equal(y.Data, tc.want) {
				t.Errorf("got %v %v, want %v %v", y.Shape, y.Data, tc.shape, tc.want)
			}
		})
	}
}

// nhwc lays out planes given in [N, C, H, W] order (sample by sample, each
// sample's channels in order, each an h×w plane) as channels-last data
// [N, H, W, C].
func nhwc(n, h, w int, planes ...[]float32) []float32 {
	c := len(planes) / n
	out := make([]float32, n*h*w*c)
	for i, pl := range planes {
		b, ch := i/c, i%c
		for p, v := range pl[:h*w] {
			out[(b*h*w+p)*c+ch] = v
		}
	}
	return out
}

// TestMaxPoolTies checks that a tied window sends its gradient to the first
// maximum in row-major window order, and only there, channel by channel
// and sample by sample, on both the 2×2 and the general path.
func TestMaxPoolTies(t *testing.T) {
	for _, tc := range []struct {
		name          string
		k, stride     int
		n, h, w       int
		x, dy, wantDx [][]float32 // planes in [N, C, H, W] order
	}{
		{
			name: "k2_s2", k: 2, stride: 2, n: 1, h: 2, w: 4,
			x:      [][]float32{{0, 3, 1, 1, 3, 3, 1, 1}},
			dy:     [][]float32{{10, 20}},
			wantDx: [][]float32{{0, 10, 20, 0, 0, 0, 0, 0}},
		},
		{
			// Two samples of two channels; the tie in sample 0, channel 1's
			// second window is first in its lower row.
			name: "k2_s2_channels", k: 2, stride: 2, n: 2, h: 2, w: 4,
			x: [][]float32{
				{0, 3, 1, 1, 3, 3, 1, 1}, {2, 2, 0, 1, 2, 1, 5, 5},
				{7, 7, 7, 7, 7, 7, 7, 7}, {0, 0, 0, 0, 0, 9, 0, 9},
			},
			dy: [][]float32{{10, 20}, {30, 40}, {1, 2}, {3, 4}},
			wantDx: [][]float32{
				{0, 10, 20, 0, 0, 0, 0, 0}, {30, 0, 0, 0, 0, 0, 40, 0},
				{1, 0, 2, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 3, 0, 4},
			},
		},
		{
			// Overlapping 2×2 windows: all tied, each picks its top-left.
			name: "k2_s1", k: 2, stride: 1, n: 1, h: 2, w: 3,
			x:      [][]float32{{3, 3, 3, 3, 3, 3}},
			dy:     [][]float32{{10, 20}},
			wantDx: [][]float32{{10, 20, 0, 0, 0, 0}},
		},
		{
			// Overlapping 3×3 windows (the general path): in channel 0 both
			// windows' first maximum is the shared pixel (0, 2), which
			// collects both gradients; in channel 1 they are (2, 1) and (2, 2).
			name: "k3_s2_channels", k: 3, stride: 2, n: 1, h: 3, w: 5,
			x: [][]float32{
				{
					1, 2, 4, 4, 4,
					4, 4, 0, 4, 4,
					4, 4, 4, 4, 4,
				}, {
					0, 0, 0, 0, 0,
					0, 0, 0, 0, 0,
					0, 5, 5, 5, 5,
				},
			},
			dy: [][]float32{{10, 20}, {30, 40}},
			wantDx: [][]float32{
				{
					0, 0, 30, 0, 0,
					0, 0, 0, 0, 0,
					0, 0, 0, 0, 0,
				}, {
					0, 0, 0, 0, 0,
					0, 0, 0, 0, 0,
					0, 30, 40, 0, 0,
				},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := len(tc.x) / tc.n
			oh, ow := (tc.h-tc.k)/tc.stride+1, (tc.w-tc.k)/tc.stride+1
			l := NewMaxPool2D(tc.k, tc.stride)
			l.Forward(FromData(nhwc(tc.n, tc.h, tc.w, tc.x...), tc.n, tc.h, tc.w, c), true)
			dx := l.Backward(FromData(nhwc(tc.n, oh, ow, tc.dy...), tc.n, oh, ow, c))
			if want := nhwc(tc.n, tc.h, tc.w, tc.wantDx...); !slices.Equal(dx.Data, want) {
				t.Errorf("dx = %v, want %v", dx.Data, want)
			}
		})
	}
}

func TestConcatForward(t *testing.T) {
	var c Concat
	a := FromData([]float32{1, 2, 3, 4}, 2, 2)
	b := FromData([]float32{5, 6}, 2, 1)
	y := c.Forward(a, b)
	if want := []float32{1, 2, 5, 3, 4, 6}; !slices.Equal(y.Shape, []int{2, 3}) || !slices.Equal(y.Data, want) {
		t.Errorf("Concat 2-D = %v %v, want [2 3] %v", y.Shape, y.Data, want)
	}
	// Channels of [N, H, W, C]: each pixel's channels from a, then b's.
	a4 := FromData([]float32{1, 2, 3, 4}, 2, 1, 2, 1)
	b4 := FromData([]float32{5, 6, 7, 8, 9, 10, 11, 12}, 2, 1, 2, 2)
	y = c.Forward(a4, b4)
	if want := []float32{1, 5, 6, 2, 7, 8, 3, 9, 10, 4, 11, 12}; !slices.Equal(y.Shape, []int{2, 1, 2, 3}) || !slices.Equal(y.Data, want) {
		t.Errorf("Concat 4-D = %v %v, want [2 1 2 3] %v", y.Shape, y.Data, want)
	}
}

func TestTensorViews(t *testing.T) {
	x := NewTensor(4, 2, 3)
	for i := range x.Data {
		x.Data[i] = float32(i)
	}
	r := x.Rows(1, 3)
	if !slices.Equal(r.Shape, []int{2, 2, 3}) || r.Data[0] != 6 || r.Len() != 12 {
		t.Errorf("Rows(1, 3) = %v starting at %v", r.Shape, r.Data[0])
	}
	r.Data[0] = -1
	if x.Data[6] != -1 {
		t.Error("Rows does not share data")
	}
	v := x.Reshape(8, 3)
	if !slices.Equal(v.Shape, []int{8, 3}) {
		t.Errorf("Reshape shape %v", v.Shape)
	}
	v.Data[1] = -2
	if x.Data[1] != -2 {
		t.Error("Reshape does not share data")
	}
	// A view's shape is its own.
	v.Shape[0] = 99
	if x.Shape[0] != 4 {
		t.Error("Reshape shares the shape slice")
	}
	c := x.Clone()
	c.Data[2] = 42
	if x.Data[2] == 42 {
		t.Error("Clone shares data")
	}
	x.Zero()
	for _, d := range x.Data {
		if d != 0 {
			t.Fatal("Zero left a non-zero")
		}
	}
	if s := x.String(); s != "Tensor[4 2 3]" {
		t.Errorf("String = %q", s)
	}
}

func TestPanics(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"NewTensor negative", func() { NewTensor(2, -1) }},
		{"FromData size", func() { FromData(make([]float32, 5), 2, 3) }},
		{"Reshape size", func() { NewTensor(2, 3).Reshape(4, 2) }},
		{"Conv2D channels", func() { NewConv2D("c", 3, 2, 3, 1, 1, false, rng).Forward(NewTensor(1, 5, 5, 2), true) }},
		{"Conv2D channels-first", func() { NewConv2D("c", 3, 2, 3, 1, 1, false, rng).Forward(NewTensor(1, 3, 5, 5), true) }},
		{"Conv2D rank", func() { NewConv2D("c", 3, 2, 3, 1, 1, false, rng).Forward(NewTensor(5, 5, 3), true) }},
		{"Conv2D kernel too big", func() { NewConv2D("c", 1, 1, 5, 1, 0, false, rng).Forward(NewTensor(1, 4, 4, 1), true) }},
		{"ConvTranspose2D channels", func() { NewConvTranspose2D("c", 3, 2, 3, 1, 1, 0, false, rng).Forward(NewTensor(1, 5, 5, 2), true) }},
		{"NewConv2D stride 0", func() { NewConv2D("c", 1, 1, 3, 0, 0, false, rng) }},
		{"ConvTranspose2D outPad ≥ stride", func() { NewConvTranspose2D("c", 1, 1, 3, 2, 1, 2, false, rng) }},
		{"BatchNorm one value", func() { NewBatchNorm1D("bn", 2).Forward(NewTensor(1, 2), true) }},
		{"BatchNorm channels", func() { NewBatchNorm2D("bn", 2).Forward(NewTensor(2, 2, 2, 3), true) }},
		{"BatchNorm channels-first", func() { NewBatchNorm2D("bn", 3).Forward(NewTensor(2, 3, 2, 2), true) }},
		{"BatchNorm1D channels", func() { NewBatchNorm1D("bn", 3).Forward(NewTensor(4, 2), true) }},
		{"Linear features", func() { NewLinear("fc", 3, 2, rng).Forward(NewTensor(2, 4), true) }},
		{"MaxPool2D geometry", func() { NewMaxPool2D(0, 1) }},
		{"MaxPool2D window", func() { NewMaxPool2D(3, 1).Forward(NewTensor(1, 2, 2, 1), true) }},
		{"Upsample2D scale", func() { NewUpsample2D(0) }},
		{"Concat shapes", func() { new(Concat).Forward(NewTensor(2, 3), NewTensor(3, 3)) }},
		{"Concat 4-D shapes", func() { new(Concat).Forward(NewTensor(1, 2, 2, 3), NewTensor(1, 2, 3, 3)) }},
		{"Concat ranks", func() { new(Concat).Forward(NewTensor(2, 3), NewTensor(2, 1, 1, 3)) }},
		{"Concat empty", func() { new(Concat).Forward() }},
		{"SoftmaxCrossEntropy label", func() { new(SoftmaxCrossEntropy).Forward(NewTensor(2, 3), []int{0, 3}) }},
		{"SoftmaxCrossEntropy count", func() { new(SoftmaxCrossEntropy).Forward(NewTensor(2, 3), []int{0}) }},
		{"MSE size", func() { new(MSE).Forward(NewTensor(2, 3), NewTensor(5)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("did not panic")
				}
			}()
			tc.f()
		})
	}
}

// block returns conv → BN → ReLU, the encoder's building block.
func block(rng *rand.Rand) *Sequential {
	return NewSequential(NewConv2D("conv", 3, 8, 3, 1, 1, false, rng), NewBatchNorm2D("bn", 8), NewReLU())
}

// TestBuffersReused checks that layers keep their output and gradient
// buffers from one step to the next at the same shape.
func TestBuffersReused(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	layers := []struct {
		l  Layer
		in []int
	}{
		{NewConv2D("c", 3, 4, 3, 1, 1, true, rng), []int{2, 6, 6, 3}},
		{NewConvTranspose2D("ct", 3, 4, 3, 2, 1, 1, true, rng), []int{2, 3, 3, 3}},
		{NewBatchNorm2D("bn", 3), []int{2, 4, 4, 3}},
		{NewBatchNorm1D("bn", 3), []int{4, 3}},
		{NewReLU(), []int{2, 4, 4, 3}},
		{NewMaxPool2D(2, 2), []int{2, 4, 4, 3}},
		{NewGlobalAvgPool(), []int{2, 4, 4, 3}},
		{NewUpsample2D(2), []int{2, 4, 4, 3}},
		{NewLinear("fc", 5, 3, rng), []int{4, 5}},
	}
	for _, tc := range layers {
		t.Run(fmt.Sprintf("%T%v", tc.l, tc.in), func(t *testing.T) {
			x := randTensor(rng, tc.in...)
			y1 := tc.l.Forward(x, true)
			dy := randTensor(rng, y1.Shape...)
			dx1 := tc.l.Backward(dy)
			p1, q1 := &y1.Data[0], &dx1.Data[0]
			y2 := tc.l.Forward(x, true)
			dx2 := tc.l.Backward(dy)
			if &y2.Data[0] != p1 {
				t.Error("Forward allocated a new output")
			}
			if &dx2.Data[0] != q1 {
				t.Error("Backward allocated a new input gradient")
			}
			// A smaller batch fits in the same storage.
			y3 := tc.l.Forward(x.Rows(0, tc.in[0]/2), true)
			if &y3.Data[0] != p1 {
				t.Error("Forward on a smaller batch allocated a new output")
			}
		})
	}

	var mse MSE
	var ce SoftmaxCrossEntropy
	p, q := randTensor(rng, 4, 3), randTensor(rng, 4, 3)
	mse.Forward(p, q)
	g1 := &mse.Backward().Data[0]
	mse.Forward(p, q)
	if &mse.Backward().Data[0] != g1 {
		t.Error("MSE.Backward allocated a new gradient")
	}
	ce.Forward(p, []int{0, 1, 2, 0})
	g2 := &ce.Backward().Data[0]
	ce.Forward(p, []int{0, 1, 2, 0})
	if &ce.Backward().Data[0] != g2 {
		t.Error("SoftmaxCrossEntropy.Backward allocated a new gradient")
	}
}

// TestStepAllocations checks that a training step of conv → BN → ReLU makes
// only a few small allocations (the goroutines of the parallel loops), not
// one per buffer.
func TestStepAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own account")
	}
	rng := rand.New(rand.NewPCG(53, 54))
	net := block(rng)
	x := randTensor(rng, 8, 8, 8, 3)
	dy := randTensor(rng, net.Forward(x, true).Shape...)
	ps := net.Params()
	opt := NewSGD(ps, 0.9, 1e-4, false)
	step := func() {
		ZeroGrads(ps)
		net.Forward(x, true)
		net.Backward(dy)
		opt.Step(0.01)
	}
	step()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	allocs := testing.AllocsPerRun(10, step)
	runtime.ReadMemStats(&after)
	perStep := float64(after.TotalAlloc-before.TotalAlloc) / 11
	t.Logf("%.0f allocations, %.0f bytes per step", allocs, perStep)
	if allocs >= 50 {
		t.Errorf("%.0f allocations per step, want < 50", allocs)
	}
	// The step's buffers total about 100 kB; what is allocated per step
	// must be far less.
	if perStep > 16<<10 {
		t.Errorf("%.0f bytes allocated per step, want < 16 KiB", perStep)
	}
}

// TestWorkerCountInvariance checks that results are bitwise the same with
// one worker and with four.
func TestWorkerCountInvariance(t *testing.T) {
	run := func(procs int) (y, dx, dw, dbn []float32) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		rng := rand.New(rand.NewPCG(61, 62))
		conv := NewConv2D("conv", 3, 8, 3, 1, 1, true, rng)
		dec := NewConvTranspose2D("dec", 8, 3, 4, 2, 1, 0, true, rng)
		bn := NewBatchNorm2D("bn", 8)
		net := NewSequential(conv, bn, NewReLU(), NewMaxPool2D(2, 2), dec)
		x := randTensor(rng, 13, 10, 10, 3)
		out := net.Forward(x, true)
		g := randTensor(rng, out.Shape...)
		d := net.Backward(g)
		return slices.Clone(out.Data), slices.Clone(d.Data), slices.Clone(conv.Weight.Grad.Data), slices.Clone(bn.Weight.Grad.Data)
	}
	y1, dx1, dw1, dbn1 := run(1)
	y4, dx4, dw4, dbn4 := run(4)
	for _, c := range []struct {
		name string
		a, b []float32
	}{{"output", y1, y4}, {"input gradient", dx1, dx4}, {"conv weight gradient", dw1, dw4}, {"bn weight gradient", dbn1, dbn4}} {
		if !slices.Equal(c.a, c.b) {
			t.Errorf("%s differs between GOMAXPROCS 1 and 4", c.name)
		}
	}
}

// Example trains a linear classifier on four points with softmax
// cross-entropy and SGD.
func Example() {
	rng, _ := NewRNG(1)
	fc := NewLinear("fc", 2, 2, rng)
	x := FromData([]float32{
		1, 1,
		2, 0.5,
		-1, -1,
		-0.5, -2,
	}, 4, 2)
	labels := []int{0, 0, 1, 1}
	var loss SoftmaxCrossEntropy
	opt := NewSGD(fc.Params(), 0.9, 0, false)
	for step := 0; step < 30; step++ {
		ZeroGrads(fc.Params())
		l, acc := loss.Forward(fc.Forward(x, true), labels)
		fc.Backward(loss.Backward())
		opt.Step(0.01)
		if step%10 == 0 {
			fmt.Printf("step %2d: loss %.3f, accuracy %.2f\n", step, l, acc)
		}
	}
	l, acc := loss.Forward(fc.Forward(x, false), labels)
	fmt.Printf("final:   loss %.3f, accuracy %.2f\n", l, acc)
	// Output:
	// step  0: loss 4.352, accuracy 0.00
	// step 10: loss 2.523, accuracy 0.00
	// step 20: loss 0.509, accuracy 0.75
	// final:   loss 0.065, accuracy 1.00
}

func BenchmarkBlock(b *testing.B) {
	for _, n := range []int{8, 32} {
		b.Run(fmt.Sprintf("N%d_C3_O8_16x16", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			net := block(rng)
			x := randTensor(rng, n, 16, 16, 3)
			dy := randTensor(rng, net.Forward(x, true).Shape...)
			for b.Loop() {
				net.Forward(x, true)
				net.Backward(dy)
			}
		})
	}
}
