package nn

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// basicBlock returns a residual basic block whose batch norms are steered
// away from the ReLUs' kinks (steer).
func basicBlock(in, out, stride int) func(*rand.Rand) Layer {
	return func(rng *rand.Rand) Layer {
		b := NewBasicBlock("layer1.0", in, out, stride, rng)
		for _, l := range append(slices.Clone(b.Main.Layers), shortcutLayers(b)...) {
			if bn, ok := l.(*BatchNorm); ok {
				steer(bn, rng)
			}
		}
		return b
	}
}

// steer gives bn a random γ in ±[0.3, 0.6] and a shift β of +4 on
// channels 0, 2, 3, 5, … and −4 on channels 1, 4, 7, …, so that its
// outputs (|x̂| < 3 at these batch sizes) stay more than 1 away from 0:
// a ReLU after it, or after its sum with an input in [−1, 1], is active
// throughout on the first channels and off throughout on the others, and
// no finite-difference step crosses a kink. Both sides of the ReLU
// gradient are exercised, and the check needs no tolerance for kinks,
// which a block's two ReLUs after batch norm, coupling every element of
// a channel in training, would cross too often.
func steer(bn *BatchNorm, rng *rand.Rand) {
	for ch := range bn.C {
		g := float32(0.3 + 0.3*rng.Float64())
		if rng.IntN(2) == 0 {
			g = -g
		}
		bn.Weight.Value.Data[ch] = g
		bn.Bias.Value.Data[ch] = 4
		if ch%3 == 1 {
			bn.Bias.Value.Data[ch] = -4
		}
	}
}

func shortcutLayers(b *Residual) []Layer {
	if b.Shortcut == nil {
		return nil
	}
	return b.Shortcut.Layers
}

// residualCases check the residual block and the padded max pool against
// finite differences, in nn's gradient-check style (gradcheck_test.go).
// The blocks' batch norms are steered away from the ReLUs' kinks (steer).
var residualCases = []gradCase{
	{name: "BasicBlock/identity_train", build: basicBlock(3, 3, 1), input: uniformIn(3, 4, 4, 3), train: true},
	{name: "BasicBlock/identity_eval", build: basicBlock(3, 3, 1), input: uniformIn(2, 4, 4, 3),
		prepare: trainFirst(3, 4, 4, 3)},
	{name: "BasicBlock/projection_stride2_train", build: basicBlock(2, 4, 2), input: uniformIn(2, 5, 4, 2), train: true},
	{name: "BasicBlock/projection_stride2_eval", build: basicBlock(2, 4, 2), input: uniformIn(2, 5, 4, 2),
		prepare: trainFirst(3, 5, 4, 2)},
	{name: "BasicBlock/projection_stride1_train", build: basicBlock(2, 3, 1), input: uniformIn(2, 3, 3, 2), train: true},
	{
		name:  "MaxPool2D/k3_s2_p1",
		build: func(*rand.Rand) Layer { return NewPaddedMaxPool2D(3, 2, 1) },
		input: func(rng *rand.Rand) *Tensor { return distinct(rng, 2, 7, 6, 2) },
	},
	{
		name:  "MaxPool2D/k3_s2_p1_even",
		build: func(*rand.Rand) Layer { return NewPaddedMaxPool2D(3, 2, 1) },
		input: func(rng *rand.Rand) *Tensor { return distinct(rng, 1, 8, 8, 3) },
	},
	{
		name:  "MaxPool2D/k2_s2_p1",
		build: func(*rand.Rand) Layer { return NewPaddedMaxPool2D(2, 2, 1) },
		input: func(rng *rand.Rand) *Tensor { return distinct(rng, 2, 5, 4, 2) },
	},
	// A stem and two blocks in a row, as in a ResNet: the blocks' input
	// gradients flow through one another and the pool.
	{name: "ResNetStem/train", build: tinyResNet, input: uniformIn(2, 16, 16, 2), train: true, opts: checkOpts{kinks: true}},
}

// tinyResNet is conv (stride 2) → BN+ReLU → padded max pool → basic block
// (identity) → basic block (projection, stride 2) → global average pool.
// The max pool's windows may switch within a step: it tolerates kinks.
func tinyResNet(rng *rand.Rand) Layer {
	bn := NewBatchNorm2D("bn1", 3).WithReLU()
	steer(bn, rng)
	return NewSequential(NewConv2D("conv1", 2, 3, 3, 2, 1, false, rng), bn, NewPaddedMaxPool2D(3, 2, 1),
		basicBlock(3, 3, 1)(rng), basicBlock(3, 4, 2)(rng), NewGlobalAvgPool())
}

func TestResidualGradients(t *testing.T) {
	for i, tc := range residualCases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 44))
			l := tc.build(rng)
			if tc.prepare != nil {
				tc.prepare(l, rng)
			}
			checkLayer(t, l, tc.input(rng), tc.train, tc.opts)
		})
	}
}

func TestBasicBlockShapesAndNames(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		in, out, stride int
		x, y            []int
		names           []string
	}{
		{4, 4, 1, []int{2, 6, 6, 4}, []int{2, 6, 6, 4}, []string{"b.conv1.weight", "b.bn1.weight", "b.bn1.bias",
			"b.conv2.weight", "b.bn2.weight", "b.bn2.bias"}},
		{4, 8, 2, []int{2, 7, 6, 4}, []int{2, 4, 3, 8}, []string{"b.conv1.weight", "b.bn1.weight", "b.bn1.bias",
			"b.conv2.weight", "b.bn2.weight", "b.bn2.bias", "b.downsample.0.weight", "b.downsample.1.weight", "b.downsample.1.bias"}},
	} {
		b := NewBasicBlock("b", tc.in, tc.out, tc.stride, rng)
		y := b.Forward(randTensor(rng, tc.x...), true)
		if !slices.Equal(y.Shape, tc.y) {
			t.Errorf("block %d→%d stride %d: output %v, want %v", tc.in, tc.out, tc.stride, y.Shape, tc.y)
		}
		var names []string
		for _, p := range b.Params() {
			names = append(names, p.Name)
		}
		if !slices.Equal(names, tc.names) {
			t.Errorf("block %d→%d stride %d: parameters %v, want %v", tc.in, tc.out, tc.stride, names, tc.names)
		}
		if got, want := len(b.Buffers()), len(tc.names)/3*2; got != want {
			t.Errorf("block %d→%d stride %d: %d buffers, want %d", tc.in, tc.out, tc.stride, got, want)
		}
		for _, v := range y.Data {
			if v < 0 {
				t.Fatalf("output %v < 0 after the ReLU", v)
			}
		}
	}
}

func TestPaddedMaxPoolShape(t *testing.T) {
	// ResNet's stem pool: 112 → 56, and odd sides round up.
	for _, tc := range []struct{ in, out int }{{112, 56}, {16, 8}, {7, 4}, {1, 1}} {
		y := NewPaddedMaxPool2D(3, 2, 1).Forward(NewTensor(1, tc.in, tc.in, 2), false)
		if y.Shape[1] != tc.out || y.Shape[2] != tc.out {
			t.Errorf("side %d: output %v, want side %d", tc.in, y.Shape, tc.out)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("NewPaddedMaxPool2D(3, 2, 2) did not panic")
		}
	}()
	NewPaddedMaxPool2D(3, 2, 2)
}

// TestResidualWorkerCountInvariance checks that a residual network's
// output and gradients are bitwise the same with one worker and with four.
func TestResidualWorkerCountInvariance(t *testing.T) {
	run := func(procs int) [][]float32 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		rng := rand.New(rand.NewPCG(71, 72))
		net := NewSequential(NewConv2D("conv1", 3, 16, 3, 1, 1, false, rng), NewBatchNorm2D("bn1", 16).WithReLU(),
			NewPaddedMaxPool2D(3, 2, 1), NewBasicBlock("layer1.0", 16, 16, 1, rng), NewBasicBlock("layer2.0", 16, 32, 2, rng))
		x := randTensor(rng, 9, 20, 20, 3)
		out := net.Forward(x, true)
		d := net.Backward(randTensor(rng, out.Shape...))
		res := [][]float32{slices.Clone(out.Data), slices.Clone(d.Data)}
		for _, p := range net.Params() {
			res = append(res, slices.Clone(p.Grad.Data))
		}
		return res
	}
	a, b := run(1), run(4)
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Errorf("result %d (0: output, 1: input gradient, then parameter gradients) differs between GOMAXPROCS 1 and 4", i)
		}
	}
}
