package pretext

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/patchwise-ml/patchwise/nn"
)

func TestDenoisingDeterministic(t *testing.T) {
	for _, name := range []string{"dae-mirrored", "dae-linear", "dae-tied"} {
		for _, c := range []Corruption{{}, {Kind: CorruptNoise, Std: 0.2}, {Kind: CorruptMask}, {Kind: CorruptMask, MaskFraction: 0.5, MaskSize: 3}} {
			t.Run(name+"/"+c.Kind, func(t *testing.T) {
				cfg := tinyConfig()
				cfg.Corruption = c
				a := mustNew(t, name, cfg, 1).(*Denoising)
				b := mustNew(t, name, cfg, 1).(*Denoising)
				batch := tinyBatch(name, cfg, 4, rand.New(rand.NewPCG(9, 10)))
				clean := slices.Clone(batch.Views[0].Data)

				x1 := slices.Clone(a.Corrupt(batch.Views[0], 42).Data)
				a.Corrupt(batch.Views[0], 43)
				if x2 := a.Corrupt(batch.Views[0], 42).Data; !slices.Equal(x1, x2) {
					t.Error("the same seed corrupts differently the second time")
				}
				if x2 := b.Corrupt(batch.Views[0], 42).Data; !slices.Equal(x1, x2) {
					t.Error("two models corrupt differently for the same seed")
				}
				if x3 := a.Corrupt(batch.Views[0], 43).Data; slices.Equal(x1, x3) {
					t.Error("seeds 42 and 43 corrupt alike")
				}
				if slices.Equal(x1, clean) {
					t.Error("the corrupted input equals the clean one")
				}
				if !slices.Equal(batch.Views[0].Data, clean) {
					t.Error("Corrupt changed its input")
				}

				// Steps: the same for the same seed; the target is clean.
				la, lb := a.Step(batch, true).Loss, b.Step(batch, true).Loss
				if la != lb {
					t.Errorf("losses %v and %v for the same seed", la, lb)
				}
				if !slices.Equal(batch.Views[0].Data, clean) {
					t.Error("Step changed the batch")
				}
				ev := a.Step(batch, false)
				plain := a.Clean().Step(batch, false).Loss
				if plain == ev.Loss {
					t.Errorf("denoising and plain reconstruction losses are both %v", plain)
				}
				if ev.Values["mse"] != plain {
					t.Errorf("evaluation reports a reconstruction error of %v, the clean model's is %v", ev.Values["mse"], plain)
				}
				// No allocation per step for the corrupted copy.
				if n := testing.AllocsPerRun(5, func() { a.Corrupt(batch.Views[0], 44) }); n != 0 {
					t.Errorf("Corrupt allocates %v times per call", n)
				}
			})
		}
	}
}

func TestCorruptionAmounts(t *testing.T) {
	x := randImages(rand.New(rand.NewPCG(1, 1)), 8, 10, 3)
	t.Run("noise", func(t *testing.T) {
		d := NewDenoising(NewLinearAE(EncoderConfig{Widths: []int{4}}, 10, rand.New(rand.NewPCG(1, 2))), Corruption{Std: 0.3})
		y := d.Corrupt(x, 5)
		var s, s2 float64
		for i, v := range y.Data {
			e := float64(v - x.Data[i])
			s += e
			s2 += e * e
		}
		n := float64(len(y.Data))
		if mean, std := s/n, math.Sqrt(s2/n-(s/n)*(s/n)); math.Abs(mean) > 0.03 || math.Abs(std-0.3) > 0.03 {
			t.Errorf("noise mean %.4f std %.4f, want about 0 and 0.3", mean, std)
		}
	})
	t.Run("mask", func(t *testing.T) {
		// 10×10 in squares of 3: a 4×4 grid, the last row and column cut
		// to 1 pixel; 0.5 of 16 squares are masked per sample.
		d := NewDenoising(NewLinearAE(EncoderConfig{Widths: []int{4}}, 10, rand.New(rand.NewPCG(1, 2))), Corruption{Kind: CorruptMask, MaskFraction: 0.5, MaskSize: 3})
		y := d.Corrupt(x, 5)
		for s := 0; s < 8; s++ {
			masked := 0
			for cy := 0; cy < 4; cy++ {
				for cx := 0; cx < 4; cx++ {
					zero, kept := 0, 0
					for py := cy * 3; py < min(cy*3+3, 10); py++ {
						for px := cx * 3; px < min(cx*3+3, 10); px++ {
							for c := 0; c < 3; c++ {
								i := ((s*10+py)*10+px)*3 + c
								switch y.Data[i] {
								case 0:
									zero++
								case x.Data[i]:
									kept++
								}
							}
						}
					}
					switch {
					case kept == 0 && zero > 0:
						masked++
					case zero != 0:
						t.Fatalf("sample %d square (%d, %d) partly masked", s, cy, cx)
					}
				}
			}
			if masked != 8 {
				t.Errorf("sample %d: %d of 16 squares masked, want 8", s, masked)
			}
		}
	})
}

func TestNewDenoisingPanics(t *testing.T) {
	rng, _ := nn.NewRNG(1)
	for _, tc := range []struct {
		desc string
		m    Model
		c    Corruption
	}{
		{"not an autoencoder", NewClassifier(EncoderConfig{Widths: []int{4}}, 2, rng), Corruption{}},
		{"bad corruption", NewTiedAE(EncoderConfig{Widths: []int{4}}, rng), Corruption{Kind: "blur"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			NewDenoising(tc.m, tc.c)
		})
	}
}

func TestBatchSeed(t *testing.T) {
	seen := map[uint64]bool{}
	for run := uint64(0); run < 4; run++ {
		for step := int64(0); step < 100; step++ {
			s := BatchSeed(run, step)
			if seen[s] {
				t.Fatalf("BatchSeed(%d, %d) repeats an earlier seed", run, step)
			}
			seen[s] = true
		}
	}
}

// TestDenoisingStatistics checks the two sets of running statistics: a
// training step leaves in the model's buffers what a training-mode pass of
// the clean batch through the wrapped model gathers, and in the
// "corrupted." ones what the corrupted batch gathers; an evaluation step
// uses the latter, the wrapped model (Clean) the former.
func TestDenoisingStatistics(t *testing.T) {
	for _, name := range []string{"mirrored", "linear", "tied"} {
		for _, c := range []Corruption{{}, {Kind: CorruptMask}} {
			t.Run(name+"/"+c.Kind, func(t *testing.T) {
				cfg := tinyConfig()
				cfg.Corruption = c
				d := mustNew(t, "dae-"+name, cfg, 1).(*Denoising)
				onClean := mustNew(t, "ae-"+name, cfg, 1).(autoencoder)
				onNoisy := mustNew(t, "ae-"+name, cfg, 1).(autoencoder)
				b := tinyBatch("dae-"+name, cfg, 6, rand.New(rand.NewPCG(3, 4)))
				x := b.Views[0]
				noisy := d.Corrupt(x, b.Seed).Clone()

				got := d.Step(b, true).Loss
				onClean.Reconstruct(x, true)
				want := onNoisy.fit(noisy, x, true)
				if got != want {
					t.Errorf("training loss %v, want %v (the wrapped model's on the corrupted batch)", got, want)
				}
				clean, corrupted := d.Buffers()[:len(d.clean)], d.Buffers()[len(d.clean):]
				for i, p := range onClean.Buffers() {
					if !slices.Equal(clean[i].Value.Data, p.Value.Data) {
						t.Errorf("%s: %v, want the clean batch's %v", clean[i].Name, clean[i].Value.Data, p.Value.Data)
					}
				}
				for i, p := range onNoisy.Buffers() {
					if corrupted[i].Name != "corrupted."+p.Name || !slices.Equal(corrupted[i].Value.Data, p.Value.Data) {
						t.Errorf("%s: %v, want the corrupted batch's %s %v", corrupted[i].Name, corrupted[i].Value.Data, p.Name, p.Value.Data)
					}
				}
				if slices.Equal(clean[0].Value.Data, corrupted[0].Value.Data) {
					t.Errorf("clean and corrupted inputs gathered the same %s", clean[0].Name)
				}

				// Evaluation: the denoising loss with the corrupted
				// statistics, plain reconstruction with the clean ones.
				ev := d.Step(b, false)
				if got, want := ev.Loss, onNoisy.fit(noisy, x, false); got != want {
					t.Errorf("evaluation loss %v, want %v", got, want)
				}
				clean1 := Batch{Views: []*nn.Tensor{x}}
				if got, want := d.Clean().Step(clean1, false).Loss, onClean.Step(clean1, false).Loss; got != want || ev.Values["mse"] != want {
					t.Errorf("clean evaluation loss %v (reported by the denoising step: %v), want %v", got, ev.Values["mse"], want)
				}
			})
		}
	}
}
