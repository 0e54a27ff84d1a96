package pipeline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/pretext"
)

// BenchmarkRelposDataWait trains the relative-position model on pairs
// from the pair loader (batch 128; on 64×64 images, the default 3×3 grid
// of 14-pixel patches, resized to 32×32 for the encoder; the Doersch
// transforms) and reports the share of each step spent waiting for the
// next batch: the loader's workers share the cores with training.
func BenchmarkRelposDataWait(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "ds")
	w, err := data.Create(dir, data.Preprocess{Size: 64, Channels: 3}, nil, data.Provenance{Format: "generated"})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pix := make([]uint8, 64*64*3)
	for i := 0; i < 1024; i++ {
		for j := range pix {
			pix[j] = uint8(rng.IntN(256))
		}
		if err := w.Add(data.Train, data.Record{Pixels: pix, Label: -1, Origin: fmt.Sprint("gen#", i)}); err != nil {
			b.Fatal(err)
		}
	}
	if _, _, err := w.Close(); err != nil {
		b.Fatal(err)
	}
	ds, err := data.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	sampler, err := augment.NewPairSampler(augment.PairConfig{Sampler: augment.SamplerGrid}, augment.DoerschDefaults(), 64, 3, 32)
	if err != nil {
		b.Fatal(err)
	}
	loader, err := augment.NewLoader(ds, data.Train, sampler, augment.LoaderConfig{Batch: 128, Shuffle: true})
	if err != nil {
		b.Fatal(err)
	}
	nrng, _ := nn.NewRNG(1)
	model := pretext.NewRelPos(pretext.EncoderConfig{Channels: 3}, 256, nrng)
	params := model.Params()
	opt := nn.NewSGD(params, 0.9, 0, false)
	stream := loader.Stream(context.Background(), 0, 0)
	defer stream.Close()
	step := func() (wait time.Duration) {
		t0 := time.Now()
		batch, err := stream.Next()
		if err != nil {
			b.Fatal(err)
		}
		wait = time.Since(t0)
		nn.ZeroGrads(params)
		model.Step(batchOf(batch, loader.Views()), true)
		opt.Step(0.01)
		batch.Release()
		return wait
	}
	for range 3 { // warm-up: fill the prefetch queue, size the buffers
		step()
	}
	var wait time.Duration
	b.ResetTimer()
	for b.Loop() {
		wait += step()
	}
	b.ReportMetric(100*wait.Seconds()/b.Elapsed().Seconds(), "%wait")
	b.ReportMetric(float64(128*b.N)/b.Elapsed().Seconds(), "pairs/s")
}
