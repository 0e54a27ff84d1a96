package pipeline

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/data/builtin"
	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/pretext"
)

// TestSeedsArePaired checks what the report's paired statistics assume
// (MethodPairing): seed s gives every registered pretext the same initial
// encoder as the random baseline of seed s — the same weights, or for a
// model that rescales its kernels the same function of the images — and
// the same order of training images; another seed gives others.
func TestSeedsArePaired(t *testing.T) {
	path, err := builtin.Materialize("mnist-small", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ds, err := data.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	enc := pretext.EncoderConfig{Widths: []int{4, 8}}
	ctx := context.Background()
	hashes := map[uint64]string{}
	for _, seed := range []uint64{1, 2} {
		random, err := RandomEncoder(pretext.EncoderConfig{Channels: 1, Widths: enc.Widths}, 28, 0, seed)
		if err != nil {
			t.Fatal(err)
		}
		hashes[seed] = random.Hash
		var order []int
		for _, name := range pretext.Names() {
			cfg := PretrainConfig{Dataset: path, Pretext: name, Seed: seed, Batch: 16, Workers: 2, Config: pretext.Config{Encoder: enc}}
			tr, err := newTrainer(ds, cfg, nil)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			tr.val = nil // no mean image: it does not touch the weights
			if err := tr.build(ctx); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if h := EncoderHash(tr.model.Encoder()); h != random.Hash {
				if d := functionGap(t, ds, tr.model.Encoder(), random.Encoder); d > 1e-3 { // batch norm's ε sees the scaled variance
					t.Errorf("seed %d: %s's initial encoder differs from the random baseline's (weights, and outputs by up to %.3g of their scale)", seed, name, d)
				}
			}
			s := tr.train.Stream(ctx, 0, 0)
			var images []int
			for range 3 {
				b, err := s.Next()
				if err != nil {
					t.Fatal(err)
				}
				images = append(images, b.Images...)
				b.Release()
			}
			s.Close()
			if order == nil {
				order = images
			} else if !slices.Equal(images, order) {
				t.Errorf("seed %d: %s draws its first batches from images %v…, %s from %v…", seed, name, images[:5], pretext.Names()[0], order[:5])
			}
		}
	}
	if hashes[1] == hashes[2] {
		t.Error("seeds 1 and 2 give the same random encoder")
	}
}

// functionGap returns the largest difference between the outputs of a and
// b in training mode on the first 64 images of ds, relative to the largest
// output.
func functionGap(t *testing.T, ds *data.Dataset, a, b *pretext.Encoder) float64 {
	t.Helper()
	x := probeImages(t, ds.Dir(), 64)
	side := a.Config.InputSize(x.Shape[1])
	in := nn.NewTensor(x.Shape[0], side, side, x.Shape[3])
	for i := range x.Shape[0] {
		c, h := x.Shape[3], x.Shape[1]
		augment.Resize(augment.Patch{Pix: in.Data[i*side*side*c : (i+1)*side*side*c], W: side, H: side, C: c},
			augment.Patch{Pix: x.Data[i*h*h*c : (i+1)*h*h*c], W: h, H: h, C: c})
	}
	ya := slices.Clone(a.Forward(in, true).Data)
	yb := b.Forward(in, true).Data
	var gap, scale float64
	for i, v := range ya {
		gap = max(gap, math.Abs(float64(v-yb[i])))
		scale = max(scale, math.Abs(float64(yb[i])))
	}
	return gap / scale
}
