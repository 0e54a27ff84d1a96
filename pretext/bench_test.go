package pretext

import (
	"testing"

	"github.com/patchwise-ml/patchwise/nn"
)

// BenchmarkTrainStep times one training step (forward, loss, backward, SGD
// with momentum) of each reference model at batch 128 on 32×32×3 random
// images, the setting of `patchwise bench` and the PyTorch reference.
func BenchmarkTrainStep(b *testing.B) {
	const batch, size = 128, 32
	for _, name := range ReferenceModels {
		b.Run(name+"_B128_32x32x3", func(b *testing.B) {
			rng, _ := nn.NewRNG(1)
			m, bt, err := NewReference(name, EncoderConfig{Channels: 3}, batch, size, rng)
			if err != nil {
				b.Fatal(err)
			}
			params := m.Params()
			opt := nn.NewSGD(params, 0.9, 0, false)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				nn.ZeroGrads(params)
				m.Step(bt, true)
				opt.Step(0.01)
			}
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
