package pretext_test

import (
	"fmt"
	"log"

	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/pretext"
)

// ExampleNew builds the tied-weight autoencoder: the decoder's transposed
// convolutions share the encoder's kernels, so Params lists each once.
func ExampleNew() {
	rng, _ := nn.NewRNG(1)
	cfg := pretext.Config{Encoder: pretext.EncoderConfig{Channels: 1, Widths: []int{8, 16}}, Size: 30}
	if _, err := pretext.New("ae-tied", cfg, rng); err != nil {
		fmt.Println(err)
	}
	cfg.Size = 32
	m, err := pretext.New("ae-tied", cfg, rng)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range m.Params() {
		fmt.Println(p.Name, p.Value.Shape)
	}
	fmt.Println("encoder dim:", pretext.EncoderOf(m).Dim())
	// Output:
	// pretext: ae-tied reconstructs only sides that are multiples of 4 (2^2 blocks), got 30
	// encoder.block1.conv.weight [8 3 3 1]
	// encoder.block1.bn.weight [8]
	// encoder.block1.bn.bias [8]
	// encoder.block2.conv.weight [16 3 3 8]
	// encoder.block2.bn.weight [16]
	// encoder.block2.bn.bias [16]
	// decoder.block1.bn.weight [8]
	// decoder.block1.bn.bias [8]
	// decoder.out.bias [1]
	// encoder dim: 16
}
