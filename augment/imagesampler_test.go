package augment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchwise-ml/patchwise/data"
)

// imageDataset writes n random size×size images of ch channels, labelled
// i mod 3 among three classes, as a dataset's train split in a temporary
// directory and opens it.
func imageDataset(tb testing.TB, n, size, ch int) *data.Dataset {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "ds")
	w, err := data.Create(dir, data.Preprocess{Size: size, Channels: ch}, []string{"a", "b", "c"}, data.Provenance{Format: "test"})
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(n), uint64(size*ch)))
	for i := range n {
		pix := make([]uint8, size*size*ch)
		for k := range pix {
			pix[k] = uint8(rng.IntN(256))
		}
		if err := w.Add(data.Train, data.Record{Pixels: pix, Label: i % 3, Origin: fmt.Sprint(i)}); err != nil {
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

type imageCopy struct {
	x            []float32
	labels, imgs []int
	n, s, c      int
	epoch, index int
}

func (a imageCopy) equal(b imageCopy) bool {
	return slices.Equal(a.x, b.x) && slices.Equal(a.labels, b.labels) && slices.Equal(a.imgs, b.imgs) &&
		a.n == b.n && a.s == b.s && a.c == b.c && a.epoch == b.epoch && a.index == b.index
}

// collectImages reads up to k batches from a stream of l starting at
// (epoch, index), copying them; it stops early at io.EOF.
func collectImages(t *testing.T, l *Loader, epoch, index, k int) []imageCopy {
	t.Helper()
	s := l.Stream(context.Background(), epoch, index)
	defer s.Close()
	var out []imageCopy
	for range k {
		b, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, imageCopy{slices.Clone(b.Views[0]), slices.Clone(b.Labels), slices.Clone(b.Images), b.N, l.Views()[0].Side, b.C, b.Epoch, b.Index})
		b.Release()
	}
	return out
}

// imageLoaderConfig is shorthand for an ImageSampler on a Loader: Train
// means a random sampler on a shuffled loader.
type imageLoaderConfig struct {
	Size                     int
	Crop                     Length
	Flip                     bool
	Batch, Workers, Prefetch int
	Seed                     uint64
	Train                    bool
}

// openImageLoader returns the Loader of split of ds that cfg describes.
func openImageLoader(ds *data.Dataset, split string, cfg imageLoaderConfig) (*Loader, error) {
	m := ds.Manifest()
	s, err := NewImageSampler(ImageSamplerConfig{Size: cfg.Size, Crop: cfg.Crop, Flip: cfg.Flip, Random: cfg.Train}, m.Size, m.Channels)
	if err != nil {
		return nil, err
	}
	return NewLoader(ds, split, s, LoaderConfig{Batch: cfg.Batch, Workers: cfg.Workers, Prefetch: cfg.Prefetch, Seed: cfg.Seed, Shuffle: cfg.Train})
}

func newImageLoaderT(t *testing.T, ds *data.Dataset, cfg imageLoaderConfig) *Loader {
	t.Helper()
	l, err := openImageLoader(ds, data.Train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestImageSamplerDeterministic(t *testing.T) {
	const n = 37
	ds := imageDataset(t, n, 32, 3)
	for _, tc := range []struct {
		name string
		cfg  imageLoaderConfig
		per  int // batches per epoch
		k    int // batches to read from (0, 0)
	}{
		{"train_crop_flip_resize", imageLoaderConfig{Crop: 0.75, Flip: true, Size: 20, Batch: 8, Seed: 7, Train: true}, 4, 14},
		{"train_whole_flip", imageLoaderConfig{Flip: true, Batch: 8, Seed: 7, Train: true}, 4, 9},
		{"eval_centre_resize", imageLoaderConfig{Crop: 24, Size: 16, Batch: 8, Seed: 7}, 5, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ref []imageCopy
			for _, workers := range []int{1, 2, 8} {
				cfg := tc.cfg
				cfg.Workers, cfg.Prefetch = workers, 3
				l := newImageLoaderT(t, ds, cfg)
				if got := l.BatchesPerEpoch(); got != tc.per {
					t.Fatalf("BatchesPerEpoch = %d, want %d", got, tc.per)
				}
				got := collectImages(t, l, 0, 0, tc.k)
				if ref == nil {
					ref = got
					continue
				}
				if len(got) != len(ref) {
					t.Fatalf("%d workers: %d batches, 1 worker %d", workers, len(got), len(ref))
				}
				for i := range got {
					if !got[i].equal(ref[i]) {
						t.Fatalf("%d workers: batch %d differs from 1 worker's", workers, i)
					}
				}
			}
			if !tc.cfg.Train && len(ref) != tc.per {
				t.Fatalf("a pass gave %d batches, want %d", len(ref), tc.per)
			}
			for i, b := range ref {
				if b.epoch != i/tc.per || b.index != i%tc.per {
					t.Fatalf("batch %d is (%d, %d)", i, b.epoch, b.index)
				}
			}
			if tc.cfg.Train {
				// Each epoch takes the first ⌊n/N⌋·N images of its permutation.
				for e := range len(ref) / tc.per {
					perm := epochOrder(t, newImageLoaderT(t, ds, tc.cfg), e)
					var imgs []int
					for _, b := range ref[e*tc.per : (e+1)*tc.per] {
						imgs = append(imgs, b.imgs...)
					}
					if !slices.Equal(imgs, perm[:len(imgs)]) {
						t.Fatalf("epoch %d: images %v, want %v", e, imgs, perm[:len(imgs)])
					}
				}
				if slices.Equal(ref[0].imgs, ref[tc.per].imgs) {
					t.Error("epochs 0 and 1 start with the same images")
				}
			}
			// A resumed stream gives the same batches as one run from the start.
			cfg := tc.cfg
			cfg.Workers = 3
			l := newImageLoaderT(t, ds, cfg)
			e, k := 0, 2
			if tc.cfg.Train {
				e, k = 1, 2
			}
			start := e*tc.per + k
			res := collectImages(t, l, e, k, len(ref)-start)
			if len(res) != len(ref)-start {
				t.Fatalf("resumed stream gave %d batches, want %d", len(res), len(ref)-start)
			}
			for i, b := range res {
				if !b.equal(ref[start+i]) {
					t.Fatalf("resumed batch %d (%d, %d) differs", i, b.epoch, b.index)
				}
			}
		})
	}
}

// TestImageSamplerValues checks that whole images at the dataset's size are
// pixel/255, in file order without Train and in the epoch's order with it,
// with their labels.
func TestImageSamplerValues(t *testing.T) {
	const n, side, ch = 10, 8, 3
	ds := imageDataset(t, n, side, ch)
	recs, err := ds.Load(data.Train)
	if err != nil {
		t.Fatal(err)
	}
	for _, train := range []bool{false, true} {
		l := newImageLoaderT(t, ds, imageLoaderConfig{Batch: 5, Workers: 2, Seed: 3, Train: train})
		if l.Len() != n {
			t.Fatalf("Len = %d", l.Len())
		}
		got := collectImages(t, l, 0, 0, 2)
		perm := epochOrder(t, l, 0)
		for bi, b := range got {
			if b.n != 5 || b.s != side || b.c != ch || len(b.x) != 5*side*side*ch || len(b.labels) != 5 || len(b.imgs) != 5 {
				t.Fatalf("train %v: batch %d: N %d S %d C %d, %d values", train, bi, b.n, b.s, b.c, len(b.x))
			}
			for j := range b.n {
				want := bi*5 + j
				if train {
					want = perm[want]
				}
				if b.imgs[j] != want {
					t.Fatalf("train %v: batch %d image %d is %d, want %d", train, bi, j, b.imgs[j], want)
				}
				r := recs[want]
				if b.labels[j] != r.Label || r.Label != want%3 {
					t.Fatalf("train %v: image %d: label %d, want %d", train, want, b.labels[j], r.Label)
				}
				x := b.x[j*side*side*ch : (j+1)*side*side*ch]
				for k, v := range r.Pixels {
					if x[k] < 0 || x[k] > 1 || math.Abs(float64(x[k])-float64(v)/255) > 1e-6 {
						t.Fatalf("train %v: image %d value %d: %v, want %v/255", train, want, k, x[k], v)
					}
				}
			}
		}
	}
}

// TestImageSamplerCropFlip checks training crops and flips against the
// documented draws from NewRand(seed, epoch, sample).
func TestImageSamplerCropFlip(t *testing.T) {
	const n, side, ch, cs = 12, 16, 1, 10
	ds := imageDataset(t, n, side, ch)
	recs, _ := ds.Load(data.Train)
	l := newImageLoaderT(t, ds, imageLoaderConfig{Crop: cs, Flip: true, Batch: 4, Workers: 2, Seed: 11, Train: true})
	if got := l.Views()[0].Side; got != side {
		t.Fatalf("default Size %d, want the image side %d", got, side)
	}
	// Size defaults to the image side: crops are enlarged back to it.
	l = newImageLoaderT(t, ds, imageLoaderConfig{Crop: cs, Size: cs, Flip: true, Batch: 4, Workers: 2, Seed: 11, Train: true})
	got := collectImages(t, l, 1, 0, 3) // epoch 1
	perm := epochOrder(t, l, 1)
	flips := 0
	for bi, b := range got {
		for j := range b.n {
			i := bi*4 + j
			rng := NewRand(11, 1, i)
			cr := RandomCrop(side, side, cs, rng)
			want := NewPatch(cs, cs, ch)
			CropPatch(want, recs[perm[i]].Pixels, side, side, ch, cr)
			if rng.IntN(2) == 1 {
				FlipH(want)
				flips++
			}
			if !slices.Equal(b.x[j*cs*cs*ch:(j+1)*cs*cs*ch], want.Pix) {
				t.Fatalf("sample %d: image differs from crop %+v", i, cr)
			}
		}
	}
	if flips == 0 || flips == n {
		t.Errorf("%d of %d samples flipped", flips, n)
	}
}

// TestImageSamplerEval checks a pass without Train: centre crops, no flips,
// the short last batch and io.EOF.
func TestImageSamplerEval(t *testing.T) {
	const n, side, ch = 10, 32, 3
	ds := imageDataset(t, n, side, ch)
	recs, _ := ds.Load(data.Train)
	for _, size := range []int{16, 8} {
		l := newImageLoaderT(t, ds, imageLoaderConfig{Crop: 0.5, Size: size, Flip: true, Batch: 4, Workers: 3, Seed: 1})
		if got := l.BatchesPerEpoch(); got != 3 {
			t.Fatalf("BatchesPerEpoch = %d, want 3", got)
		}
		s := l.Stream(context.Background(), 2, 0)
		for k := range 3 {
			b, err := s.Next()
			if err != nil {
				t.Fatalf("batch %d: %v", k, err)
			}
			wantN := 4
			if k == 2 {
				wantN = 2
			}
			if b.N != wantN || len(b.Views[0]) != wantN*size*size*ch || len(b.Labels) != wantN || len(b.Images) != wantN || b.Epoch != 2 || b.Index != k {
				t.Fatalf("batch %d: N %d, %d values, %d labels, (%d, %d)", k, b.N, len(b.Views[0]), len(b.Labels), b.Epoch, b.Index)
			}
			for j := range b.N {
				img := k*4 + j
				crop := NewPatch(16, 16, ch)
				CropPatch(crop, recs[img].Pixels, side, side, ch, Crop{X: 8, Y: 8, Size: 16})
				want := NewPatch(size, size, ch)
				Resize(want, crop)
				if b.Images[j] != img || b.Labels[j] != recs[img].Label {
					t.Fatalf("batch %d: image %d label %d, want %d %d", k, b.Images[j], b.Labels[j], img, recs[img].Label)
				}
				if !slices.Equal(b.Views[0][j*size*size*ch:(j+1)*size*size*ch], want.Pix) {
					t.Fatalf("size %d: image %d is not its resized centre crop", size, img)
				}
			}
			b.Release()
		}
		for range 2 {
			if b, err := s.Next(); err != io.EOF || b != nil {
				t.Fatalf("after the pass: %v, %v; want io.EOF", b, err)
			}
		}
		s.Close()
		if _, err := s.Next(); err != io.EOF {
			t.Errorf("Next after EOF and Close: %v", err)
		}
		// Past the end, a stream is empty.
		s = l.Stream(context.Background(), 0, 3)
		if _, err := s.Next(); err != io.EOF {
			t.Errorf("stream from batch 3 of 3: %v", err)
		}
		s.Close()
	}
}

func TestImageSamplerBatchesPerEpoch(t *testing.T) {
	ds := imageDataset(t, 10, 8, 1)
	for _, tc := range []struct {
		batch       int
		train, eval int
	}{{1, 10, 10}, {3, 3, 4}, {4, 2, 3}, {5, 2, 2}, {10, 1, 1}, {16, -1, 1}, {0, -1, 1}} {
		for _, train := range []bool{true, false} {
			want := tc.eval
			if train {
				want = tc.train
			}
			l, err := openImageLoader(ds, data.Train, imageLoaderConfig{Batch: tc.batch, Train: train})
			if want < 0 {
				if err == nil {
					t.Errorf("batch %d, train: no error for a split smaller than a batch", tc.batch)
				}
				continue
			}
			if err != nil {
				t.Fatalf("batch %d, train %v: %v", tc.batch, train, err)
			}
			if got := l.BatchesPerEpoch(); got != want {
				t.Errorf("batch %d, train %v: BatchesPerEpoch = %d, want %d", tc.batch, train, got, want)
			}
			if !train {
				got := collectImages(t, l, 0, 0, 100)
				total := 0
				for _, b := range got {
					total += b.n
				}
				if len(got) != want || total != 10 {
					t.Errorf("batch %d: a pass gave %d batches of %d images in all", tc.batch, len(got), total)
				}
			}
		}
	}
}

func TestLoaderConfig(t *testing.T) {
	ds := imageDataset(t, 4, 8, 3)
	l := newImageLoaderT(t, ds, imageLoaderConfig{Seed: 9})
	want := LoaderConfig{Batch: DefaultBatch, PerImage: 1, Workers: runtime.GOMAXPROCS(0), Prefetch: 2 * runtime.GOMAXPROCS(0), Seed: 9, ShuffleBuffer: data.DefaultShuffleBuffer}
	if got := l.Config(); got != want {
		t.Errorf("Config = %+v, want %+v", got, want)
	}
	if v := l.Views(); len(v) != 1 || v[0].Side != 8 || v[0].Count != 1 {
		t.Errorf("Views = %+v", v)
	}
	l = newImageLoaderT(t, ds, imageLoaderConfig{Crop: None, Workers: 3, Batch: 2, Train: true})
	if got := l.Config(); got.Prefetch != 6 || !got.Shuffle {
		t.Errorf("Config = %+v", got)
	}
	s, err := NewImageSampler(ImageSamplerConfig{Crop: None}, 8, 3)
	if err != nil {
		t.Fatal(err)
	}
	if s.Config().Size != 8 || s.crop != 8 {
		t.Errorf("sampler config %+v, crop %d", s.Config(), s.crop)
	}
}

func TestImageSamplerErrors(t *testing.T) {
	ds := imageDataset(t, 5, 32, 1)
	_, err := openImageLoader(ds, data.Test, imageLoaderConfig{Size: -1, Crop: 40})
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"size -1", "crop 40"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("sampler error lacks %q: %v", w, err)
		}
	}
	_, err = openImageLoader(ds, data.Test, imageLoaderConfig{Batch: -2, Workers: -3, Prefetch: -4})
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{`no split "test"`, "batch -2", "workers -3", "prefetch -4"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("loader error lacks %q: %v", w, err)
		}
	}
	for _, cfg := range []imageLoaderConfig{
		{Crop: -2},
		{Crop: Length(math.NaN())},
		{Crop: Length(math.Inf(1))},
		{Crop: 0.01}, // rounds to 0 px
		{Crop: 33},
		{Batch: 6, Train: true},
	} {
		if _, err := openImageLoader(ds, data.Train, cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
	for _, cfg := range []imageLoaderConfig{{Crop: 32}, {Crop: 1}, {Crop: 0.99}, {Batch: 6}, {Batch: 5, Train: true}} {
		if _, err := openImageLoader(ds, data.Train, cfg); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

func TestStreamCancel(t *testing.T) {
	ds := imageDataset(t, 16, 32, 3)
	l := newImageLoaderT(t, ds, imageLoaderConfig{Batch: 4, Workers: 3, Prefetch: 2, Crop: 0.5, Flip: true, Train: true})
	within := func(what string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { f(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not return", what)
		}
	}

	// Cancelling the context.
	ctx, cancel := context.WithCancel(context.Background())
	s := l.Stream(ctx, 0, 0)
	b, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	b.Release()
	cancel()
	within("Close after cancel", s.Close)
	if _, err := s.Next(); !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel: %v", err)
	}

	// Close alone, with the prefetch queue full and nobody reading.
	s = l.Stream(context.Background(), 0, 0)
	time.Sleep(20 * time.Millisecond)
	within("Close", s.Close)
	within("Close again", s.Close)
	if _, err := s.Next(); !errors.Is(err, context.Canceled) {
		t.Errorf("Next after Close: %v", err)
	}

	// A context already done, and a pass without Train closed midway:
	// Next gives the context's error, not io.EOF.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	s = l.Stream(ctx, 0, 0)
	if _, err := s.Next(); !errors.Is(err, context.Canceled) {
		t.Errorf("Next with a done context: %v", err)
	}
	s.Close()
	ev := newImageLoaderT(t, ds, imageLoaderConfig{Batch: 1, Workers: 2, Prefetch: 1})
	s = ev.Stream(context.Background(), 0, 0)
	if _, err := s.Next(); err != nil {
		t.Fatal(err)
	}
	within("Close of a pass", s.Close)
	if _, err := s.Next(); !errors.Is(err, context.Canceled) {
		t.Errorf("Next after closing a pass: %v", err)
	}

	// A Next waiting on a slow batch returns when the context is cancelled.
	ctx, cancel = context.WithCancel(context.Background())
	s = l.Stream(ctx, 0, 0)
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	within("Next across cancel", func() {
		for {
			b, err := s.Next()
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Next: %v", err)
				}
				return
			}
			b.Release()
		}
	})
	within("Close", s.Close)

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

// TestBatchReuseShort checks that a buffer reused after a short last
// batch grows back to a full one.
func TestBatchReuseShort(t *testing.T) {
	ds := imageDataset(t, 5, 8, 1)
	l := newImageLoaderT(t, ds, imageLoaderConfig{Batch: 3, Workers: 1, Prefetch: 1})
	for pass := range 3 {
		got := collectImages(t, l, pass, 0, 10)
		if len(got) != 2 || got[0].n != 3 || got[1].n != 2 || len(got[0].x) != 3*64 || len(got[1].x) != 2*64 {
			t.Fatalf("pass %d: %d batches", pass, len(got))
		}
		if !slices.Equal(got[0].imgs, []int{0, 1, 2}) || !slices.Equal(got[1].imgs, []int{3, 4}) {
			t.Fatalf("pass %d: images %v %v", pass, got[0].imgs, got[1].imgs)
		}
	}
}

// BenchmarkImages measures batches of 32×32 RGB training images with
// random crops and flips, on one worker, reported as images/s.
func BenchmarkImages(b *testing.B) {
	ds := imageDataset(b, 512, 32, 3)
	for _, bc := range []struct {
		name string
		cfg  imageLoaderConfig
	}{
		{"whole32", imageLoaderConfig{}},
		{"crop24_flip_to32", imageLoaderConfig{Crop: 24, Flip: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := bc.cfg
			cfg.Batch, cfg.Workers, cfg.Prefetch, cfg.Train = 128, 1, 2, true
			l, err := openImageLoader(ds, data.Train, cfg)
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
			b.ReportMetric(float64(b.N*cfg.Batch)/time.Since(start).Seconds(), "images/s")
		})
	}
}
