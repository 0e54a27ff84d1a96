package pretext

import (
	"fmt"
	"math/rand/v2"

	"github.com/patchwise-ml/patchwise/nn"
)

// ReferenceModels names the reference models that speed is measured on,
// as in bench/torch_ref.py.
var ReferenceModels = []string{"classifier", "autoencoder", "relpos"}

// NewReference returns the named reference model ("classifier" over 10
// classes, "autoencoder" with the mirrored decoder, "relpos" with 256
// hidden units) and a random batch for it: n images (pairs for relpos) of
// size×size from N(0, 1), with uniformly drawn labels. It returns an error
// for an unknown name.
func NewReference(name string, cfg EncoderConfig, n, size int, rng *rand.Rand) (Model, Batch, error) {
	cfg = cfg.withDefaults()
	images := func() *nn.Tensor {
		t := nn.NewTensor(n, size, size, cfg.Channels)
		for i := range t.Data {
			t.Data[i] = float32(rng.NormFloat64())
		}
		return t
	}
	labels := func(k int) []int {
		l := make([]int, n)
		for i := range l {
			l[i] = rng.IntN(k)
		}
		return l
	}
	switch name {
	case "classifier":
		return NewClassifier(cfg, 10, rng), Batch{Views: []*nn.Tensor{images()}, Labels: labels(10)}, nil
	case "autoencoder":
		return NewMirroredAE(cfg, rng), Batch{Views: []*nn.Tensor{images()}}, nil
	case "relpos":
		return NewRelPos(cfg, 256, rng), Batch{Views: []*nn.Tensor{images(), images()}, Labels: labels(Positions)}, nil
	}
	return nil, Batch{}, fmt.Errorf("pretext: unknown reference model %q (known: %v)", name, ReferenceModels)
}
