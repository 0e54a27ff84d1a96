package pretext

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/nn"
)

func TestRotationSpec(t *testing.T) {
	spec, err := Lookup("rotation")
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.Index(Names(), "rotation"); i != 1 {
		t.Errorf("rotation is pretext %d of %v, want the second, after relpos", i, Names())
	}
	if len(spec.Metrics) != 1 || spec.Metrics[0].Key != "acc" || spec.Metrics[0].Chance(Config{}) != 0.25 {
		t.Errorf("metrics %+v", spec.Metrics)
	}
	cfg := tinyConfig()
	cfg.Crop, cfg.Flip = 12, true
	cfg, err = spec.Resolve(cfg, tinySide, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, train := range []bool{true, false} {
		s, err := spec.Sampler(cfg, tinySide, 1, train)
		if err != nil {
			t.Fatal(err)
		}
		if v := s.Views(); len(v) != 1 || v[0].Count != 4 || v[0].Side != cfg.Size || s.Labels() != 4 {
			t.Errorf("train %v: views %+v, %d labels", train, v, s.Labels())
		}
	}
	bad := cfg
	bad.Crop = 40
	if _, err := spec.Resolve(bad, tinySide, 1); err == nil {
		t.Error("a crop larger than the image: no error")
	}
	m := mustNew(t, "rotation", tinyConfig(), 1)
	if got := names(m.Params()); !slices.Equal(got[len(got)-2:], []string{"head.weight", "head.bias"}) {
		t.Errorf("params %v", got)
	}
	if w := m.(*Classifier).head.Weight.Value.Shape; !slices.Contains(w, 4) {
		t.Errorf("head weight %v: not 4 outputs", w)
	}
}

// TestRotationLearns trains the tiny model on images that are upright in
// a way rotation reveals (a bright bar along the top, noise elsewhere)
// and requires it to tell the turns of fresh images apart.
func TestRotationLearns(t *testing.T) {
	spec, _ := Lookup("rotation")
	cfg, err := spec.Resolve(tinyConfig(), tinySide, 1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Sampler(cfg, tinySide, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	d := s.NewDrawer()
	rng := rand.New(rand.NewPCG(1, 2))
	batch := func(n int) Batch {
		per := augment.Rotations * cfg.Size * cfg.Size
		x := make([]float32, n*per)
		labels := make([]int, n*augment.Rotations)
		for i := range n {
			pix := make([]uint8, tinySide*tinySide)
			for k := range pix {
				pix[k] = uint8(rng.IntN(128))
			}
			for k := range 2 * tinySide {
				pix[k] = 255
			}
			smp := augment.Sample{Views: [][]float32{x[i*per : (i+1)*per]}, Labels: labels[i*augment.Rotations : (i+1)*augment.Rotations]}
			if err := d.Draw(augment.Image{Pix: pix, Side: tinySide, C: 1, Label: -1}, rng, smp); err != nil {
				t.Fatal(err)
			}
		}
		return Batch{Views: []*nn.Tensor{nn.FromData(x, n*augment.Rotations, cfg.Size, cfg.Size, 1)}, Labels: labels}
	}
	nrng, _ := nn.NewRNG(3)
	m, err := spec.New(cfg, nrng)
	if err != nil {
		t.Fatal(err)
	}
	opt := nn.NewSGD(m.Params(), 0.9, 0, false)
	for range 40 {
		nn.ZeroGrads(m.Params())
		m.Step(batch(8), true)
		opt.Step(0.05)
	}
	if acc := m.Step(batch(32), false).Values["acc"]; acc < 0.9 {
		t.Errorf("accuracy %.3f on fresh images after 40 steps, want ≥ 0.9", acc)
	}
}
