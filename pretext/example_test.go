package pretext_test

import (
	"fmt"
	"log"

	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/pretext"
)

// ExampleLookup builds the tied-weight autoencoder for 30×30 grey images:
// its decoder undoes four poolings, so the input side is rounded up to 32.
// The decoder's transposed convolutions share the encoder's kernels, so
// Params lists each once.
func ExampleLookup() {
	spec, err := pretext.Lookup("ae-tied")
	if err != nil {
		log.Fatal(err)
	}
	cfg := pretext.Config{Encoder: pretext.EncoderConfig{Widths: []int{8, 16}}, Size: 30}
	if _, err := spec.Resolve(cfg, 30, 1); err != nil {
		fmt.Println(err)
	}
	cfg.Size = 0 // the default: the image side rounded up
	cfg, err = spec.Resolve(cfg, 30, 1)
	if err != nil {
		log.Fatal(err)
	}
	rng, _ := nn.NewRNG(1)
	m, err := spec.New(cfg, rng)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("input side:", cfg.Size)
	for _, p := range m.Params() {
		fmt.Println(p.Name, p.Value.Shape)
	}
	fmt.Println("encoder dim:", m.Encoder().Dim())
	// Output:
	// pretext: ae-tied reconstructs only sides that are multiples of 4 (2^2 blocks), got 30
	// input side: 32
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
