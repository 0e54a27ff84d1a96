package pretext

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/patchwise-ml/patchwise/nn"
)

// unfusedDecoder returns dec with every fused upsampling
// convolution replaced by Upsample2D(2) then a Conv2D that shares its
// weight: the decoder as it reads in the design.
func unfusedDecoder(dec *nn.Sequential) *nn.Sequential {
	out := nn.NewSequential()
	for _, l := range dec.Layers {
		up, ok := l.(*nn.UpsampleConv2D)
		if !ok {
			out.Layers = append(out.Layers, l)
			continue
		}
		rng, _ := nn.NewRNG(0)
		conv := nn.NewConv2D("unused", up.InC, up.OutC, 3, 1, 1, false, rng)
		conv.Weight = up.Weight
		out.Layers = append(out.Layers, nn.NewUpsample2D(2), conv)
	}
	return out
}

// TestMirroredAEIsUpsampleThenConv checks that the mirrored autoencoder's
// fused decoder computes the function of [upsample ×2 → conv3×3] blocks:
// the same reconstructions, loss and gradients as the unfused decoder
// with the same parameters, in training and evaluation steps, and
// parameters of the same names and shapes.
func TestMirroredAEIsUpsampleThenConv(t *testing.T) {
	for _, cfg := range []EncoderConfig{
		{Channels: 3, Widths: []int{4}},
		{Channels: 3, Widths: []int{8, 16}},
		{Channels: 3, Widths: []int{16, 32, 24}},
		{Channels: 1, Arch: ArchResNet18, Stem: StemImageNet, Width: 1.0 / 16}, // ×4 for the stem
	} {
		widths := cfg.Widths
		t.Run(fmt.Sprint(cfg.Arch, widths), func(t *testing.T) {
			rng, _ := nn.NewRNG(5)
			m := NewMirroredAE(cfg, rng)
			var names []string
			for _, p := range m.Params() {
				names = append(names, fmt.Sprint(p.Name, p.Value.Shape))
			}
			for i := range widths {
				in, out := widths[len(widths)-1-i], widths[0]
				if j := len(widths) - 2 - i; j >= 0 {
					out = widths[j]
				}
				want := fmt.Sprint(fmt.Sprintf("decoder.block%d.conv.weight", i+1), []int{out, 3, 3, in})
				if !slices.Contains(names, want) {
					t.Errorf("no parameter %s in %v", want, names)
				}
			}
			side := 2 * m.enc.Config.MinSize()
			x := nn.NewTensor(3, side, side, cfg.Channels)
			nn.Uniform(x, 1, rng)
			fused := m.Decoder
			unfused := unfusedDecoder(fused)
			for _, train := range []bool{true, false} {
				run := func(dec *nn.Sequential) (y []float32, grads [][]float32) {
					m.Decoder = dec
					nn.ZeroGrads(m.Params())
					out := m.Reconstruct(x, train)
					y = slices.Clone(out.Data)
					if train {
						m.loss.Forward(out, x)
						m.enc.Backward(m.Decoder.Backward(m.loss.Backward()))
						for _, p := range m.Params() {
							grads = append(grads, slices.Clone(p.Grad.Data))
						}
					}
					return y, grads
				}
				y1, g1 := run(fused)
				y2, g2 := run(unfused)
				closeAll(t, "reconstruction", y1, y2)
				for i := range g1 {
					closeAll(t, "gradient of "+m.Params()[i].Name, g1[i], g2[i])
				}
			}
			m.Decoder = fused
		})
	}
}

func closeAll(t *testing.T, what string, got, want []float32) {
	t.Helper()
	var scale float64
	for _, v := range want {
		scale = max(scale, math.Abs(float64(v)))
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); !(d <= 1e-4*(scale+1e-3)) {
			t.Fatalf("%s[%d] = %v, want %v (largest %v)", what, i, got[i], want[i], scale)
		}
	}
}
