package augment

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchwise-ml/patchwise/data"
)

// testDataset writes n random size×size images of ch channels as a
// dataset's train split in a temporary directory and opens it.
func testDataset(tb testing.TB, n, size, ch int) *data.Dataset {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "ds")
	w, err := data.Create(dir, data.Preprocess{Size: size, Channels: ch}, nil, data.Provenance{Format: "test"})
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(n), uint64(size)))
	for i := range n {
		pix := make([]uint8, size*size*ch)
		for k := range pix {
			pix[k] = uint8(rng.IntN(256))
		}
		if err := w.Add(data.Train, data.Record{Pixels: pix, Label: -1, Origin: fmt.Sprint(i)}); err != nil {
			tb.Fatal(err)
		}
	}
	if _, _, err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	ds, err := data.Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return ds
}

type batchCopy struct {
	a, b         []float32
	labels, imgs []int
	epoch, index int
}

// pairLoaderConfig is shorthand for a PairSampler on a shuffled Loader.
type pairLoaderConfig struct {
	Pairs                              PairConfig
	Transform                          Transform
	Size                               int
	Batch, PerImage, Workers, Prefetch int
	Seed                               uint64
}

// openPairLoader returns the shuffled Loader of pairs of split of ds that
// cfg describes, and its sampler.
func openPairLoader(ds *data.Dataset, split string, cfg pairLoaderConfig) (*Loader, *PairSampler, error) {
	m := ds.Manifest()
	s, err := NewPairSampler(cfg.Pairs, cfg.Transform, m.Size, m.Channels, cfg.Size)
	if err != nil {
		return nil, nil, err
	}
	l, err := NewLoader(ds, split, s, LoaderConfig{Batch: cfg.Batch, PerImage: cfg.PerImage, Workers: cfg.Workers,
		Prefetch: cfg.Prefetch, Seed: cfg.Seed, Shuffle: true})
	return l, s, err
}

// collect reads k batches from a stream of l, copying them.
func collect(t *testing.T, l *Loader, epoch, index, k int) []batchCopy {
	t.Helper()
	s := l.Stream(context.Background(), epoch, index)
	defer s.Close()
	var out []batchCopy
	for range k {
		b, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, batchCopy{slices.Clone(b.Views[0]), slices.Clone(b.Views[1]), slices.Clone(b.Labels), slices.Clone(b.Images), b.Epoch, b.Index})
		b.Release()
	}
	return out
}

func TestPairSamplerDeterministic(t *testing.T) {
	ds := testDataset(t, 37, 32, 3)
	for _, pc := range []PairConfig{{}, {Sampler: SamplerFree, Patch: 10}} {
		var ref []batchCopy
		for _, workers := range []int{1, 2, 8} {
			l, _, err := openPairLoader(ds, data.Train, pairLoaderConfig{
				Pairs: pc, Transform: DoerschDefaults(), Size: 12, Batch: 8, PerImage: 2,
				Workers: workers, Prefetch: 3, Seed: 99,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := l.BatchesPerEpoch(); got != 37*2/8 {
				t.Fatalf("BatchesPerEpoch = %d", got)
			}
			got := collect(t, l, 0, 0, 20) // more than two epochs
			if ref == nil {
				ref = got
				continue
			}
			for i := range got {
				if !slices.Equal(got[i].a, ref[i].a) || !slices.Equal(got[i].b, ref[i].b) ||
					!slices.Equal(got[i].labels, ref[i].labels) || !slices.Equal(got[i].imgs, ref[i].imgs) {
					t.Fatalf("%+v: %d workers: batch %d differs from 1 worker's", pc, workers, i)
				}
			}
		}
		// Epochs and indices run on; each epoch uses each image PerImage
		// times, except the leftovers.
		for i, b := range ref {
			if b.epoch != i/9 || b.index != i%9 {
				t.Fatalf("batch %d is (%d, %d)", i, b.epoch, b.index)
			}
		}
		count := map[int]int{}
		for _, b := range ref[:9] {
			for _, im := range b.imgs {
				count[im]++
			}
		}
		for im, c := range count {
			if c > 2 {
				t.Errorf("image %d used %d times in epoch 0", im, c)
			}
		}
		if len(count) < 36 {
			t.Errorf("epoch 0 used %d distinct images", len(count))
		}
		// A resumed stream gives the same batches.
		l, _, _ := openPairLoader(ds, data.Train, pairLoaderConfig{Pairs: pc, Transform: DoerschDefaults(), Size: 12, Batch: 8, PerImage: 2, Seed: 99})
		res := collect(t, l, 1, 4, 3)
		for i, b := range res {
			if !slices.Equal(b.a, ref[13+i].a) || !slices.Equal(b.labels, ref[13+i].labels) {
				t.Errorf("resumed batch %d differs", i)
			}
		}
	}
}

// TestPairSamplerContent checks one batch against the pairs drawn directly.
func TestPairSamplerContent(t *testing.T) {
	ds := testDataset(t, 10, 32, 3)
	recs, _ := ds.Load(data.Train)
	l, ps, err := openPairLoader(ds, data.Train, pairLoaderConfig{Batch: 4, Workers: 2, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	g := ps.Geometry()
	got := collect(t, l, 0, 0, 1)[0]
	perm := epochOrder(t, l, 0)
	s := g.Patch
	for j := range 4 {
		p, _ := g.Sample(NewRand(5, 0, j))
		if got.labels[j] != p.Label || got.imgs[j] != perm[j] {
			t.Fatalf("sample %d: label %d image %d, want %d %d", j, got.labels[j], got.imgs[j], p.Label, perm[j])
		}
		want := NewPatch(s, s, 3)
		CropPatch(want, recs[perm[j]].Pixels, 32, 32, 3, p.B)
		if !slices.Equal(got.b[j*s*s*3:(j+1)*s*s*3], want.Pix) {
			t.Fatalf("sample %d: crop B differs", j)
		}
	}
}

func TestPairSamplerErrors(t *testing.T) {
	ds := testDataset(t, 5, 32, 1)
	_, _, err := openPairLoader(ds, data.Train, pairLoaderConfig{Pairs: PairConfig{Patch: 20}, Size: -1, Transform: Transform{Color: "x"}})
	var ge *GeometryError
	if !errors.As(err, &ge) || err == nil {
		t.Fatalf("want a *GeometryError, got %v", err)
	}
	for _, w := range []string{"size -1", `color "x"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	if _, _, err := openPairLoader(ds, data.Train, pairLoaderConfig{Batch: 6}); err == nil {
		t.Error("5 images made a batch of 6")
	}
	if _, _, err := openPairLoader(ds, data.Test, pairLoaderConfig{}); err == nil {
		t.Error("no error for a missing split")
	}
}

func TestPairStreamCancel(t *testing.T) {
	ds := testDataset(t, 16, 32, 3)
	l, _, err := openPairLoader(ds, data.Train, pairLoaderConfig{Batch: 4, Workers: 3, Prefetch: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := l.Stream(ctx, 0, 0)
	b, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	b.Release()
	cancel()
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after cancel")
	}
	if _, err := s.Next(); !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel: %v", err)
	}
	// Buffers are reused: after a release, the next batch reuses memory.
	s = l.Stream(context.Background(), 0, 0)
	defer s.Close()
	seen := map[*float32]bool{}
	for range 50 {
		b, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		seen[&b.Views[0][0]] = true
		b.Release()
	}
	if len(seen) > 2+3+2+1 {
		t.Errorf("%d distinct buffers for 50 batches", len(seen))
	}
}

// BenchmarkPairs measures pair generation on one worker: 32×32 crops from
// 64×64 RGB images, reported as pairs/s.
func BenchmarkPairs(b *testing.B) {
	ds := testDataset(b, 512, 64, 3)
	for _, bc := range []struct {
		name string
		cfg  pairLoaderConfig
	}{
		{"free32_doersch", pairLoaderConfig{Pairs: PairConfig{Sampler: SamplerFree, Patch: 32, MinDist: 32, MaxDist: 46}, Transform: DoerschDefaults()}},
		{"free32_modern", pairLoaderConfig{Pairs: PairConfig{Sampler: SamplerFree, Patch: 32, MinDist: 32, MaxDist: 46}, Transform: ModernDefaults()}},
		{"free32_none", pairLoaderConfig{Pairs: PairConfig{Sampler: SamplerFree, Patch: 32, MinDist: 32, MaxDist: 46}}},
		{"grid14to32_modern", pairLoaderConfig{Size: 32, Transform: ModernDefaults()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := bc.cfg
			cfg.Batch, cfg.Workers, cfg.Prefetch = 128, 1, 2
			l, _, err := openPairLoader(ds, data.Train, cfg)
			if err != nil {
				b.Fatal(err)
			}
			s := l.Stream(context.Background(), 0, 0)
			defer s.Close()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				bt, err := s.Next()
				if err != nil {
					b.Fatal(err)
				}
				bt.Release()
			}
			b.ReportMetric(float64(b.N*cfg.Batch)/time.Since(start).Seconds(), "pairs/s")
		})
	}
}
