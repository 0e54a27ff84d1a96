package pretext

import (
	"fmt"

	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// StageFeatures returns the features of block stage (1-based) for probing
// an earlier stage: the block's output for x [N, H, W, C], computed in
// evaluation mode (running statistics), average-pooled to pooled×pooled
// (pooled = 1: the global average) and flattened channels-last to
// [N, pooled·pooled·W_stage], feature (i·pooled + j)·W_stage + c being
// channel c of bin (i, j). The bins follow PyTorch's AdaptiveAvgPool2d:
// bin i of a side L covers [⌊i·L/p⌋, ⌈(i+1)·L/p⌉), so uneven sides give
// bins of both sizes (overlapping ones when p does not divide L). The
// result is a new tensor. StageFeatures(x, Depth, 1) equals Features(x).
// It panics if stage is not in [1, blocks] or pooled < 1.
func (e *Encoder) StageFeatures(x *nn.Tensor, stage, pooled int) *nn.Tensor {
	if stage < 1 || stage > len(e.Blocks) {
		panic(fmt.Sprintf("pretext: StageFeatures: stage %d outside [1, %d]", stage, len(e.Blocks)))
	}
	if pooled < 1 {
		panic(fmt.Sprintf("pretext: StageFeatures: pooled size %d < 1", pooled))
	}
	for _, b := range e.Blocks[:stage] {
		x = b.Forward(x, false)
	}
	return adaptiveAvgPool(x, pooled)
}

// adaptiveAvgPool averages x [N, H, W, C] over p×p bins, bin (i, j)
// covering rows [⌊i·H/p⌋, ⌈(i+1)·H/p⌉) and the like columns, into a new
// [N, p·p·C], channels-last (kernel.AdaptiveAvgPool, sample by sample).
func adaptiveAvgPool(x *nn.Tensor, p int) *nn.Tensor {
	if len(x.Shape) != 4 {
		panic(fmt.Sprintf("pretext: adaptive pool: input %v is not [N, H, W, C]", x.Shape))
	}
	n, h, w, c := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	y := nn.NewTensor(n, p*p*c)
	for s := range n {
		kernel.AdaptiveAvgPool(y.Data[s*p*p*c:(s+1)*p*p*c], x.Data[s*h*w*c:(s+1)*h*w*c], h, w, c, p)
	}
	return y
}
